package push

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/mpaas"

	"github.com/mpaas-push/pushworker/job"
)

// The recall actions; those that results name are the job package's.
const (
	APIRevokeMessage   = job.APIRevokeMessage
	APIRevokeTask      = job.APIRevokeTask
	APICancelScheduler = job.APICancelScheduler
	APIQueryScheduler  = "QueryPushSchedulerList"
)

// The SDK's typed requests of these four carry every parameter the APIs take
// (unlike PushTemplate's and PushMultiple's), so they are used as they are; a
// fresh one per call, since the SDK writes into a request.

// RevokeMessage takes back one PushTemplate message: the msgKey sent to target
// (mPaaS: only pushes of the last 7 days).
func (c *Client) RevokeMessage(ctx context.Context, app, workspace, target, msgKey string) CallResult {
	req := mpaas.CreateRevokePushMessageRequest()
	req.AppId, req.WorkspaceId, req.TargetId, req.MessageId = app, workspace, target, msgKey
	resp := mpaas.CreateRevokePushMessageResponse()
	return c.do(ctx, APIRevokeMessage, req, resp, func() answer { return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, &resp.PushResult} })
}

// RevokeTask takes back a whole PushMultiple push task (mPaaS: of the last 7 days).
func (c *Client) RevokeTask(ctx context.Context, app, workspace, taskID string) CallResult {
	req := mpaas.CreateRevokePushTaskRequest()
	req.AppId, req.WorkspaceId, req.TaskId = app, workspace, taskID
	resp := mpaas.CreateRevokePushTaskResponse()
	return c.do(ctx, APIRevokeTask, req, resp, func() answer { return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, &resp.PushResult} })
}

// CancelScheduled cancels scheduled tasks that have not run, by their unique ids
// (a scheduled chunk's data). The ids go comma-separated: the API does not say.
func (c *Client) CancelScheduled(ctx context.Context, app, workspace string, uniqueIDs []string) CallResult {
	if len(uniqueIDs) == 0 {
		return CallResult{API: APICancelScheduler, Class: JobFault, Err: errors.New("no scheduled task id")}
	}
	req := mpaas.CreateCancelPushSchedulerRequest()
	req.AppId, req.WorkspaceId, req.UniqueIds = app, workspace, strings.Join(uniqueIDs, ",")
	resp := mpaas.CreateCancelPushSchedulerResponse()
	return c.do(ctx, APICancelScheduler, req, resp, func() answer { return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, nil} })
}

// ScheduledTask is one pending scheduled task as QueryPushSchedulerList lists it.
type ScheduledTask = job.ScheduledTask

// QueryScheduled lists one page of the app's pending scheduled tasks whose run
// time falls in [from, to]; total is how many match over all pages.
func (c *Client) QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]ScheduledTask, int, CallResult) {
	req := mpaas.CreateQueryPushSchedulerListRequest()
	req.AppId, req.WorkspaceId = app, workspace
	req.StartTime, req.EndTime = requests.NewInteger64(from.UnixMilli()), requests.NewInteger64(to.UnixMilli())
	req.PageNumber, req.PageSize = requests.NewInteger(page), requests.NewInteger(size)
	resp := mpaas.CreateQueryPushSchedulerListResponse()
	out := c.do(ctx, APIQueryScheduler, req, resp, func() answer { return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, nil} })
	if out.Class != Success {
		return nil, 0, out
	}
	data := resp.ResultContent.Data // the v1 SDK decodes the items here; its dedicated list type is unused
	tasks := make([]ScheduledTask, 0, len(data.List))
	for _, it := range data.List {
		tasks = append(tasks, ScheduledTask{UniqueID: it.UniqueId, Type: it.Type, StrategyType: it.StrategyType,
			PushTime: time.UnixMilli(it.PushTime).UTC(), Created: time.UnixMilli(it.GmtCreate).UTC(), Status: it.ExecutedStatus})
	}
	return tasks, data.TotalCount, out
}
