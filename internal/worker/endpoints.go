package worker

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/topology"
)

// endpoints is the worker's NATS service (nats.go/micro, so that `nats micro
// ls` and `nats micro stats pushworker` show the fleet): every request the
// worker answers comes through it.
//
//	stats            <root>.admin.workers.stats     every worker answers (no queue group)
//	campaign-status  <root>.campaigns.status        every worker answers (no queue group)
//	scheduled-list   <root>.admin.scheduled.list    one worker answers (the service's queue group)
//	report           <root>.admin.campaigns.report  one worker answers (the service's queue group)
//
// It answers from newEndpoints on, so that a starting worker can be asked what
// it waits for; Run stops it once its context ends (the worker's owner runs it
// until the consumer has stopped, so that a stopping worker still tells what it
// holds), and Close stops it when Run never ran.
type endpoints struct {
	svc micro.Service
	// ctx is every request's parent: it ends when the service stops, and with
	// it what a handler still waits for.
	ctx  context.Context
	stop context.CancelFunc
}

// endpointsHandlers are what the endpoints answer; scheduled is nil when the
// worker has no mPaaS client that lists scheduled tasks (a given Pusher).
type endpointsHandlers struct {
	stats     func() WorkerStats
	status    *campaignStatus
	scheduled *scheduledList
	report    *reports
}

// openEndpoints adds the worker's NATS service; Close stops it.
// Its mPaaS calls go through pusher, with the limiter of st and the retry
// policy of the pipeline's pc.
func (s *Worker) openEndpoints(topo topology.Topology, st stores, pusher pipeline.Pusher, pc pipeline.Config) (*endpoints, error) {
	h := endpointsHandlers{stats: s.Stats,
		status: &campaignStatus{worker: s.worker, pipe: s.pipe, control: s.control, totals: st.totals, log: s.log}}
	calls := newAdminCalls(st.limiter, pc, s.metrics)
	if lister, ok := pusher.(scheduledLister); ok {
		h.scheduled = newScheduledList(lister, calls, s.log)
	}
	if a, ok := pusher.(analyst); ok {
		h.report = newReports(a, calls, s.reports(st), s.log)
	}
	e, err := newEndpoints(s.nc, topo, h)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, e.Close)
	s.serviceID.Store(e.ID())
	return e, nil
}

// newEndpoints adds the service and its endpoints on nc.
func newEndpoints(nc *nats.Conn, topo topology.Topology, h endpointsHandlers) (*endpoints, error) {
	svc, err := micro.AddService(nc, micro.Config{Name: "pushworker", Version: "1.0.0",
		Description: "pushworker: each worker's state and its view of the campaigns, and mPaaS scheduled tasks and delivery figures asked of a worker " +
			"so that operators need no mPaaS credentials",
		StatsHandler: func(*micro.Endpoint) any { return h.stats() }})
	if err != nil {
		return nil, err
	}
	e := &endpoints{svc: svc}
	e.ctx, e.stop = context.WithCancel(context.Background())
	err = e.add("stats", func(_ context.Context, req micro.Request) { _ = req.RespondJSON(h.stats()) },
		micro.WithEndpointSubject(topo.WorkersStatsSubject()), micro.WithEndpointQueueGroupDisabled())
	if err == nil {
		err = e.add("campaign-status", h.status.handle,
			micro.WithEndpointSubject(topo.CampaignStatusSubject()), micro.WithEndpointQueueGroupDisabled())
	}
	if err == nil && h.scheduled != nil {
		err = e.add("scheduled-list", h.scheduled.handle, micro.WithEndpointSubject(topo.ScheduledListSubject()))
	}
	if err == nil && h.report != nil {
		err = e.add("report", h.report.handle, micro.WithEndpointSubject(topo.ReportSubject()))
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// add adds one endpoint, whose handler gets a context that ends when the
// service stops.
func (e *endpoints) add(name string, handle func(context.Context, micro.Request), opts ...micro.EndpointOpt) error {
	return e.svc.AddEndpoint(name, micro.HandlerFunc(func(req micro.Request) { handle(e.ctx, req) }), opts...)
}

// ID is the service instance's id.
func (e *endpoints) ID() string { return e.svc.Info().ID }

// Run answers until ctx ends, then stops the service.
func (e *endpoints) Run(ctx context.Context) {
	<-ctx.Done()
	e.Close()
}

// Close stops the service and ends its requests; it may be called more than once.
func (e *endpoints) Close() {
	e.stop()
	_ = e.svc.Stop()
}
