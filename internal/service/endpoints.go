package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/topology"
)

// answerStatus answers `enqueue campaign status` and the console: every worker
// replies with its jobs in flight, the totals and the state, for one campaign or
// (All) for every campaign it knows.
func (s *Service) answerStatus(topo topology.Topology, pipe *pipeline.Pipeline, totals campaignTotals) error {
	report := func(ctx context.Context, name string) (campaign.Report, error) {
		rep := campaign.Report{Campaign: name, Worker: s.worker, InFlight: pipe.InFlight(name), State: s.control.Get(name),
			Invalid: s.control.Invalid(name)}
		var err error
		rep.Totals, err = totals.Get(ctx, name)
		return rep, err
	}
	sub, err := s.nc.Subscribe(topo.CampaignStatusSubject(), func(m *nats.Msg) {
		var req campaign.StatusRequest
		if json.Unmarshal(m.Data, &req) != nil || !req.All && campaign.ValidName(req.Campaign) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var body []byte
		if req.All {
			all, err := s.allReports(ctx, pipe, totals, report)
			if err != nil {
				s.log.Warn("campaign totals not read", zap.Error(err))
				return
			}
			body, _ = json.Marshal(campaign.Reports{Worker: s.worker, Campaigns: all})
		} else {
			rep, err := report(ctx, req.Campaign)
			if err != nil {
				s.log.Warn("campaign totals not read", zap.String("campaign", req.Campaign), zap.Error(err))
				return
			}
			body, _ = json.Marshal(rep)
		}
		_ = m.Respond(body)
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = sub.Unsubscribe() })
	return nil
}

// allReports are the reports of every campaign this worker knows: with totals,
// a state in the bucket, or jobs in its hands.
func (s *Service) allReports(ctx context.Context, pipe *pipeline.Pipeline, totals campaignTotals,
	report func(context.Context, string) (campaign.Report, error)) ([]campaign.Report, error) {
	names, err := totals.Names(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for n := range s.control.Known() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	for _, n := range pipe.Campaigns() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	out := make([]campaign.Report, 0, len(names))
	for _, n := range names {
		rep, err := report(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// scheduledLister lists an app's pending scheduled tasks (the mPaaS client).
type scheduledLister interface {
	QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]push.ScheduledTask, int, push.Outcome)
}

// ScheduledWindow is how far ahead `enqueue scheduled list` looks: a recurring
// push's window ends at most 180 days after it was made.
const ScheduledWindow = 181 * 24 * time.Hour

// serveAdmin is the workers' NATS service (nats.go/micro, so that `nats micro
// ls` and `nats micro stats pushworker` show the fleet): every worker answers
// stats on <root>.admin.workers.stats (no queue group: one answer per worker),
// and one of them the scheduled-task list, when the worker has an mPaaS client.
func (s *Service) serveAdmin(topo topology.Topology, lister scheduledLister) error {
	svc, err := micro.AddService(s.nc, micro.Config{Name: "pushworker", Version: "1.0.0",
		Description:  "pushworker: each worker's state, and mPaaS scheduled tasks asked of a worker so that operators need no mPaaS credentials",
		StatsHandler: func(*micro.Endpoint) any { return s.Stats() }})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = svc.Stop() })
	s.serviceID.Store(svc.Info().ID)
	err = svc.AddEndpoint("stats", micro.HandlerFunc(func(req micro.Request) { _ = req.RespondJSON(s.Stats()) }),
		micro.WithEndpointSubject(topo.WorkersStatsSubject()), micro.WithEndpointQueueGroupDisabled())
	if err != nil || lister == nil {
		return err
	}
	return svc.AddEndpoint("scheduled-list", micro.HandlerFunc(func(req micro.Request) {
		var q struct {
			AppID       string `json:"appId"`
			WorkspaceID string `json:"workspaceId"`
		}
		if err := json.Unmarshal(req.Data(), &q); err != nil || q.AppID == "" || q.WorkspaceID == "" {
			_ = req.Error("400", "want {\"appId\":…,\"workspaceId\":…}", nil)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		now := time.Now()
		var all []push.ScheduledTask
		for page := 1; ; page++ {
			tasks, total, out := lister.QueryScheduled(ctx, q.AppID, q.WorkspaceID, now.Add(-24*time.Hour), now.Add(ScheduledWindow), page, 500)
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
	}), micro.WithEndpointSubject(topo.ScheduledListSubject()))
}
