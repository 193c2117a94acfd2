package push

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/mpaas"

	"github.com/mpaas-push/pushworker/job"
)

// The analytics actions: what mPaaS counted after pushes, with a delay.
const (
	APITaskDetail = "QueryPushAnalysisTaskDetail"
	APICoreIndex  = "QueryPushAnalysisCoreIndex"
)

// The push types QueryPushAnalysisCoreIndex counts apart.
const (
	TypeSimple    = "SIMPLE"
	TypeTemplate  = "TEMPLATE"
	TypeMultiple  = "MULTIPLE"
	TypeBroadcast = "BROADCAST"
)

// MaxAnalysisWindow is the longest window QueryPushAnalysisCoreIndex takes.
const MaxAnalysisWindow = 90 * 24 * time.Hour

// Analysis is one analytics answer: the figures, or none yet (Ready false).
type Analysis struct {
	Ready   bool
	Figures job.Figures
}

// analysisResponse reads only the answer's envelope through the SDK. The
// v1 SDK's typed answers decode ResultContent case-sensitively into a shared
// Data struct (a lower-case key reads as a silent zero, a hex TaskId or a
// ResultContent sent as a string fails the whole answer), so decodeAnalysis
// reads ResultContent from the body itself.
type analysisResponse struct {
	*responses.BaseResponse
	RequestId     string `json:"RequestId"`
	ResultCode    string `json:"ResultCode"`
	ResultMessage string `json:"ResultMessage"`
}

// TaskDetail asks what mPaaS counted of one push task (a PushMultiple or
// broadcast call's task id).
func (c *Client) TaskDetail(ctx context.Context, app, workspace, taskID string) (Analysis, CallResult) {
	if taskID == "" {
		return Analysis{}, CallResult{API: APITaskDetail, Class: JobFault, Err: fmt.Errorf("%s: no task id", APITaskDetail)}
	}
	req := mpaas.CreateQueryPushAnalysisTaskDetailRequest()
	req.AppId, req.WorkspaceId, req.TaskId = app, workspace, taskID
	return c.analysis(ctx, APITaskDetail, req)
}

// CoreIndex asks what mPaaS counted of the app's pushes of pushType (one of
// the Type constants) made in [from, to], at most MaxAnalysisWindow long.
func (c *Client) CoreIndex(ctx context.Context, app, workspace, pushType string, from, to time.Time) (Analysis, CallResult) {
	switch {
	case to.Before(from) || to.Sub(from) > MaxAnalysisWindow:
		return Analysis{}, CallResult{API: APICoreIndex, Class: JobFault,
			Err: fmt.Errorf("%s: window %s to %s: want an end after its start, at most 90 days later", APICoreIndex, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))}
	case pushType != TypeSimple && pushType != TypeTemplate && pushType != TypeMultiple && pushType != TypeBroadcast:
		return Analysis{}, CallResult{API: APICoreIndex, Class: JobFault, Err: fmt.Errorf("%s: push type %q: want SIMPLE, TEMPLATE, MULTIPLE or BROADCAST", APICoreIndex, clipTo(pushType, 40))}
	}
	req := mpaas.CreateQueryPushAnalysisCoreIndexRequest()
	req.AppId, req.WorkspaceId, req.Type = app, workspace, pushType
	req.StartTime, req.EndTime = requests.NewInteger64(from.UnixMilli()), requests.NewInteger64(to.UnixMilli())
	return c.analysis(ctx, APICoreIndex, req)
}

// analysis makes one analytics call and reads its figures. An answer whose
// figures cannot be read is the request's fault (JobFault: asking again
// cannot help), never zeros.
func (c *Client) analysis(ctx context.Context, api string, req requests.AcsRequest) (Analysis, CallResult) {
	resp := &analysisResponse{BaseResponse: &responses.BaseResponse{}}
	out := c.do(ctx, api, req, resp, func() answer { return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, nil} })
	if out.Class != Success {
		return Analysis{}, out
	}
	a, err := decodeAnalysis(resp.GetHttpContentBytes())
	if err != nil {
		out.Class, out.Err = JobFault, fmt.Errorf("%s answer unreadable: %w", api, err)
		return Analysis{}, out
	}
	return a, out
}

// figureNames are the keys of each figure in ResultContent.Data, in the order
// tried: the v1 SDK's Data struct carries both namings.
var figureNames = []struct {
	keys []string
	at   func(*job.Figures) *int64
}{
	{[]string{"PushTotalNum", "PushNum"}, func(f *job.Figures) *int64 { return &f.Pushed }},
	{[]string{"PushSuccessNum"}, func(f *job.Figures) *int64 { return &f.Succeeded }},
	{[]string{"PushArrivalNum", "ArrivalNum"}, func(f *job.Figures) *int64 { return &f.Arrived }},
	{[]string{"OpenNum"}, func(f *job.Figures) *int64 { return &f.Opened }},
	{[]string{"IgnoreNum"}, func(f *job.Figures) *int64 { return &f.Ignored }},
}

// decodeAnalysis reads ResultContent.Data's figures from an analytics answer,
// whatever the case of its keys, with ResultContent (or Data) as an object or
// as a JSON string holding one, and whatever else Data carries (a TaskId of
// any form is not read). No ResultContent or Data, or figures all zero, is
// "no figures yet"; a Data with none of the figures' keys, or a figure that is
// not a count, is an error.
func decodeAnalysis(body []byte) (Analysis, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Analysis{}, fmt.Errorf("not a JSON object: %v", err)
	}
	content, err := object(lookup(top, "ResultContent"), "ResultContent")
	if err != nil || content == nil {
		return Analysis{}, err
	}
	data, err := object(lookup(content, "Data"), "ResultContent.Data")
	if err != nil || data == nil {
		return Analysis{}, err
	}
	var f job.Figures
	found := false
	for _, fig := range figureNames {
		for _, k := range fig.keys {
			raw := lookup(data, k)
			if raw == nil {
				continue
			}
			n, err := count(raw)
			if err != nil {
				return Analysis{}, fmt.Errorf("ResultContent.Data.%s: %v", k, err)
			}
			*fig.at(&f), found = n, true
			break
		}
	}
	if !found {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return Analysis{}, fmt.Errorf("ResultContent.Data has none of PushTotalNum, PushNum, PushSuccessNum, PushArrivalNum, ArrivalNum, OpenNum, IgnoreNum (keys: %s)",
			clipTo(strings.Join(keys, ", "), 200))
	}
	return Analysis{Ready: !f.Zero(), Figures: f}, nil
}

// lookup is m's value under key in any case (mPaaS's pages and answers
// disagree on it).
func lookup(m map[string]json.RawMessage, key string) json.RawMessage {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// object reads raw as a JSON object, or as a string that holds one; absent,
// null or an empty string is nil.
func object(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" || s == `""` {
		return nil, nil
	}
	if s[0] == '"' {
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		if strings.TrimSpace(inner) == "" {
			return nil, nil
		}
		raw = json.RawMessage(inner)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is not an object: %s", what, clipTo(string(raw), 120))
	}
	return m, nil
}

// count reads a figure: a number or a string holding one (a float64 in the v1
// SDK), whole and not negative.
func count(raw json.RawMessage) (int64, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || v != math.Trunc(v) || v > 1e15 {
		return 0, fmt.Errorf("%s is not a count", clipTo(s, 40))
	}
	return int64(v), nil
}

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
