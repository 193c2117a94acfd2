package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/push"
)

// ReportWait bounds one report request: every call, the slots it waits for
// and its retries.
const ReportWait = 45 * time.Second

// MaxReportTasks caps the task ids and windows one report asks about: each is
// an mPaaS call under the shared limit, and the request is bound by ReportWait.
const MaxReportTasks = 1000

// analyst asks mPaaS what it counted of pushes (the mPaaS client).
type analyst interface {
	TaskDetail(ctx context.Context, app, workspace, taskID string) (push.Analysis, push.CallResult)
	CoreIndex(ctx context.Context, app, workspace, pushType string, from, to time.Time) (push.Analysis, push.CallResult)
}

// reports answers `enqueue campaign report` and the console's report: the
// figures mPaaS counted of a campaign's tasks (QueryPushAnalysisTaskDetail
// each, summed) and of its apps' windows (QueryPushAnalysisCoreIndex each),
// every call an adminCalls call. A finished campaign's figures, once every
// task and window has some, are kept (campaign.KeptDeliveries) and answered from
// there afterwards.
type reports struct {
	*adminCalls
	mpaas analyst
	kept  campaign.KeptDeliveries
	log   *zap.Logger
}

func newReports(a analyst, calls *adminCalls, kept campaign.KeptDeliveries, log *zap.Logger) *reports {
	return &reports{adminCalls: calls, mpaas: a, kept: kept, log: log}
}

// reports are where the worker keeps finished campaigns' figures: beside the
// totals, in Redis, or in memory in dev mode.
func (s *Worker) reports(st stores) campaign.KeptDeliveries {
	if st.rdb == nil {
		return campaign.NewMemoryDeliveries()
	}
	return campaign.NewRedisDeliveries(st.rdb, s.cfg.RedisKeys().Reports)
}

// reportRequest reads and checks a campaign.ReportRequest.
func reportRequest(data []byte) (campaign.ReportRequest, error) {
	var q campaign.ReportRequest
	if err := json.Unmarshal(data, &q); err != nil {
		return q, fmt.Errorf(`report request: want {"campaign":…,"finished":…,"sources":[…]}: %v`, err)
	}
	if err := campaign.ValidName(q.Campaign); err != nil {
		return q, fmt.Errorf("report request: campaign: %v", err)
	}
	n := 0
	for i, s := range q.Sources {
		if s.AppID == "" || s.WorkspaceID == "" {
			return q, fmt.Errorf("report request: sources[%d]: appId and workspaceId are required", i)
		}
		for j, w := range s.Windows {
			if w.Type != push.TypeTemplate && w.Type != push.TypeSimple {
				return q, fmt.Errorf("report request: sources[%d].windows[%d].type %q: want TEMPLATE or SIMPLE", i, j, reportClip(w.Type))
			}
		}
		n += len(s.TaskIDs) + len(s.Windows)
	}
	if n > MaxReportTasks {
		return q, fmt.Errorf("report request: %d task ids and windows, more than the %d one report asks mPaaS about", n, MaxReportTasks)
	}
	return q, nil
}

func reportClip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (r *reports) handle(ctx context.Context, req micro.Request) {
	q, err := reportRequest(req.Data())
	if err != nil {
		_ = req.Error("400", err.Error(), nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ReportWait)
	defer cancel()
	rep, err := r.report(ctx, q)
	if err != nil {
		r.log.Warn("delivery report not fetched", zap.String("campaign", q.Campaign), zap.Error(err))
		_ = req.Error(errorCode(err, "502"), err.Error(), nil)
		return
	}
	_ = req.RespondJSON(rep)
}

// report is the campaign's kept report, or one fetched now (and kept when the
// campaign is finished and every task and window has figures).
func (r *reports) report(ctx context.Context, q campaign.ReportRequest) (*campaign.Delivery, error) {
	kept, err := r.kept.Get(ctx, q.Campaign)
	if err != nil {
		r.log.Warn("kept delivery report not read", zap.String("campaign", q.Campaign), zap.Error(err))
	}
	if kept != nil {
		kept.Cached = true
		return kept, nil
	}
	rep := &campaign.Delivery{Campaign: q.Campaign}
	for _, s := range q.Sources {
		for _, id := range s.TaskIDs {
			rep.TaskIDs++
			a, err := r.ask(ctx, s.AppID, func(ctx context.Context) (push.Analysis, push.CallResult) {
				return r.mpaas.TaskDetail(ctx, s.AppID, s.WorkspaceID, id)
			})
			if err != nil {
				return nil, fmt.Errorf("task %s of app %s: %w", reportClip(id), s.AppID, err)
			}
			if a.Ready {
				rep.TasksCounted++
				rep.Tasks.Add(a.Figures)
			}
		}
		for _, w := range s.Windows {
			a, err := r.ask(ctx, s.AppID, func(ctx context.Context) (push.Analysis, push.CallResult) {
				return r.mpaas.CoreIndex(ctx, s.AppID, s.WorkspaceID, w.Type, w.From, w.To)
			})
			if err != nil {
				return nil, fmt.Errorf("%s pushes of app %s: %w", w.Type, s.AppID, err)
			}
			rep.Windows = append(rep.Windows, campaign.WindowFigures{AppID: s.AppID, WorkspaceID: s.WorkspaceID, ReportWindow: w,
				Ready: a.Ready, Figures: a.Figures})
			rep.Total.Add(a.Figures)
		}
	}
	rep.Total.Add(rep.Tasks)
	rep.Ready = rep.TasksCounted > 0 || !rep.Total.Zero()
	rep.FetchedAt = time.Now().UTC()
	if q.Finished && rep.Complete() {
		if err := r.kept.Put(ctx, rep); err != nil {
			r.log.Warn("delivery report not kept", zap.String("campaign", q.Campaign), zap.Error(err))
		}
	}
	return rep, nil
}

// ask makes one analytics call as an adminCalls call.
func (r *reports) ask(ctx context.Context, app string, call func(context.Context) (push.Analysis, push.CallResult)) (push.Analysis, error) {
	var a push.Analysis
	err := r.try(ctx, app, func(ctx context.Context) push.CallResult {
		var out push.CallResult
		a, out = call(ctx)
		return out
	})
	return a, err
}
