package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/push"
)

// ScheduledWindow is how far ahead `enqueue scheduled list` looks: a recurring
// push's window ends at most 180 days after it was made.
const ScheduledWindow = 181 * 24 * time.Hour

// scheduledLister lists an app's pending scheduled tasks (the mPaaS client).
type scheduledLister interface {
	QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]push.ScheduledTask, int, push.Outcome)
}

// scheduledList answers `enqueue scheduled list`: an app's pending scheduled
// tasks, from mPaaS, so that operators need no mPaaS credentials.
type scheduledList struct {
	lister scheduledLister
}

func (l *scheduledList) handle(ctx context.Context, req micro.Request) {
	var q struct {
		AppID       string `json:"appId"`
		WorkspaceID string `json:"workspaceId"`
	}
	if err := json.Unmarshal(req.Data(), &q); err != nil || q.AppID == "" || q.WorkspaceID == "" {
		_ = req.Error("400", "want {\"appId\":…,\"workspaceId\":…}", nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	var all []push.ScheduledTask
	for page := 1; ; page++ {
		tasks, total, out := l.lister.QueryScheduled(ctx, q.AppID, q.WorkspaceID, now.Add(-24*time.Hour), now.Add(ScheduledWindow), page, 500)
		if out.Class != push.Success {
			code := out.ResultCode
			if code == "" {
				code = "500"
			}
			_ = req.Error(code, "QueryPushSchedulerList: "+out.Err.Error(), nil)
			return
		}
		all = append(all, tasks...)
		if len(tasks) == 0 || len(all) >= total {
			break
		}
	}
	_ = req.RespondJSON(map[string]any{"appId": q.AppID, "workspaceId": q.WorkspaceID, "tasks": all})
}
