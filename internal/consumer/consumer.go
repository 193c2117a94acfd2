// Package consumer is the worker's JetStream side: the streams and durable
// consumers, the fetch loops of both lanes, heartbeats while a job runs, and the
// dead letter, result and acknowledgement that end every delivery. What a job
// means is the Handler's business; the queue only carries it, and Mux routes it
// by its subject alone, push jobs to one handler and recall jobs to another.
//
// It imports, of this project, only clock, pause, retry, taskpool, tracing, wire, job and topology:
// never the pipeline, recall, the stores or the mPaaS client.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/taskpool"
	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// Defaults of Config.
const (
	DefaultJobsPerLane = 8
	DefaultFetchWait   = 2 * time.Second
	DefaultGrace       = 20 * time.Second
)

// Config of a Consumer. Every zero field takes its default.
type Config struct {
	Topology    topology.Topology // default topology.Default()
	Limits      Limits            // each zero field: its Default* constant
	JobsPerLane int               // jobs handled at once per lane; default DefaultJobsPerLane
	FetchWait   time.Duration     // how long one fetch waits for jobs; default DefaultFetchWait
	Grace       time.Duration     // how long jobs in flight may finish after a stop; default DefaultGrace
	Publish     retry.Policy      // between publishes of a result or dead letter; default retry.Publish
	Fetch       retry.Policy      // after a failed fetch; default retry.Fetch
	// OnResult is told of each result newly stored (not a re-run's duplicate),
	// with the subject of its job; nil: nobody.
	OnResult func(jobSubject string, r *job.Result)
	// OnParked is told of each job parked (stored in the parking stream and
	// acked), with its campaign; nil: nobody. The campaign's unparker uses it to
	// bring back a job this worker parked after the campaign was resumed.
	OnParked func(campaign string)
	// Tracer makes each job's span and its result publish's; default the no-op one.
	Tracer trace.Tracer
}

func (c Config) withDefaults() Config {
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer(tracing.Scope)
	}
	c.Topology = c.Topology.OrDefault()
	c.Limits = c.Limits.withDefaults()
	if c.JobsPerLane <= 0 {
		c.JobsPerLane = DefaultJobsPerLane
	}
	if c.FetchWait <= 0 {
		c.FetchWait = DefaultFetchWait
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.Publish == nil {
		c.Publish = retry.Publish
	}
	if c.Fetch == nil {
		c.Fetch = retry.Fetch
	}
	return c
}

// Observer is told how deliveries end, for metrics. Every method must be cheap.
type Observer interface {
	Job(lane, status string)
	Redelivered(lane string)
	DeadLetter(lane, reason string)
	Parked(lane string)
	// AckFailed counts an Ack, Term, Nak or InProgress that the server did not take.
	AckFailed(op string)
	// ResultFailed counts a result the result stream did not take (the job is
	// then handed back).
	ResultFailed()
}

type noObserver struct{}

func (noObserver) Job(string, string)        {}
func (noObserver) Redelivered(string)        {}
func (noObserver) DeadLetter(string, string) {}
func (noObserver) Parked(string)             {}
func (noObserver) AckFailed(string)          {}
func (noObserver) ResultFailed()             {}

// Consumer pulls jobs from both lanes and hands each delivery to a Handler.
type Consumer struct {
	cfg     Config
	js      jetstream.JetStream
	handler Handler
	gate    *pause.Gate
	log     *zap.Logger
	obs     Observer

	pool *taskpool.Pool // the goroutines that run the jobs

	mu    sync.Mutex
	lanes map[string]jetstream.Consumer
}

// New sets up the streams and consumers (Ensure) and returns a Consumer ready to
// Run. obs may be nil.
func New(ctx context.Context, cfg Config, js jetstream.JetStream, h Handler, gate *pause.Gate, log *zap.Logger, obs Observer) (*Consumer, error) {
	if obs == nil {
		obs = noObserver{}
	}
	q := &Consumer{cfg: cfg.withDefaults(), js: js, handler: h, gate: gate, log: log, obs: obs, pool: taskpool.New()}
	if err := q.ensure(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// Topology is the names the queue uses.
func (q *Consumer) Topology() topology.Topology { return q.cfg.Topology }

func (q *Consumer) ensure(ctx context.Context) error {
	def, bulk, err := Ensure(ctx, q.js, q.cfg.Topology, q.cfg.Limits)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.lanes = map[string]jetstream.Consumer{topology.LaneDefault: def, topology.LaneBulk: bulk}
	q.mu.Unlock()
	return nil
}

func (q *Consumer) lane(name string) jetstream.Consumer {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lanes[name]
}

// Run fetches and handles jobs until ctx ends, then stops fetching, lets the
// jobs in flight finish for up to Grace, hands back the rest (their context
// ends) and returns.
func (q *Consumer) Run(ctx context.Context) {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var fetchers, jobs sync.WaitGroup
	for _, name := range []string{topology.LaneDefault, topology.LaneBulk} {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			q.fetchLoop(ctx, work, name, &jobs)
		}()
	}
	fetchers.Wait() // they return when ctx ends
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(q.cfg.Grace):
		q.log.Warn("jobs still running after the grace period: handing them back", zap.Duration("grace", q.cfg.Grace))
		stopWork()
		<-done
	}
	q.pool.Close()
}

// fetchLoop pulls only as many jobs as the lane has free slots, so no job waits
// in a client buffer while its AckWait runs, and pulls nothing while the gate is shut.
func (q *Consumer) fetchLoop(ctx, work context.Context, lane string, jobs *sync.WaitGroup) {
	slots := make(chan struct{}, q.cfg.JobsPerLane)
	failures := 0
	for ctx.Err() == nil {
		if err := q.gate.Wait(ctx); err != nil {
			return
		}
		n := takeSlots(ctx, slots)
		if n == 0 {
			return
		}
		if lane == topology.LaneBulk {
			n += gatherSlots(ctx, slots, n)
		}
		fetchCtx, cancel := context.WithTimeout(ctx, q.cfg.FetchWait)
		batch, err := q.lane(lane).Fetch(n, jetstream.FetchContext(fetchCtx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				jobs.Add(1)
				q.pool.Go(func() {
					defer jobs.Done()
					defer func() { <-slots }()
					q.deliver(work, lane, msg)
				})
			}
			err = batch.Error()
		}
		cancel()
		for range n - got {
			<-slots
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil {
			if failures > 0 {
				failures = 0
				q.gate.Clear(pause.CauseNATS)
			}
			continue
		}
		failures++
		q.log.Warn("fetching jobs", zap.String("lane", lane), zap.Error(err))
		if missing(err) {
			q.recreate(ctx, err)
		} else if failures >= 3 {
			q.gate.Set(pause.CauseNATS, err)
		}
		clock.Sleep(ctx, q.cfg.Fetch.NextRetry(failures))
	}
}

// takeSlots blocks for one free slot, then takes every other free one.
func takeSlots(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < cap(slots) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// missing reports an error that says a stream or consumer of the topology is gone.
// gatherFor is how long a bulk fetch waits for more of its lane's slots to free
// up: one fetch for several jobs instead of one each (every fetch is a pull
// request and a subscription of its own at the server). Campaign jobs can wait
// that long; events are never held.
const gatherFor = 2 * time.Millisecond

// gatherSlots takes more free slots, up to half of them with the n held, for
// at most gatherFor, and returns how many it took.
func gatherSlots(ctx context.Context, slots chan struct{}, n int) int {
	want := cap(slots)/2 - n
	if want <= 0 {
		return 0
	}
	t := time.NewTimer(gatherFor)
	defer t.Stop()
	got := 0
	for got < want {
		select {
		case slots <- struct{}{}:
			got++
		case <-t.C:
			return got
		case <-ctx.Done():
			return got
		}
	}
	return got
}

func missing(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted)
}

// recreate puts the topology back after a stream or consumer was deleted under
// the worker; when it cannot, the gate stays shut with a cause that says why.
func (q *Consumer) recreate(ctx context.Context, cause error) {
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := q.ensure(ectx); err != nil {
		q.gate.Set(pause.CauseStreams, fmt.Errorf("a stream or consumer is gone (%w) and re-creating it failed: %w", cause, err))
		return
	}
	q.log.Warn("a stream or consumer was gone: re-created the topology", zap.Error(cause))
	q.gate.Clear(pause.CauseStreams)
}

// deliver runs one delivery through the handler and carries out its outcome.
func (q *Consumer) deliver(ctx context.Context, lane string, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		q.log.Error("job message without metadata", zap.Error(err))
		q.settle(ctx, msg, Release, 0)
		return
	}
	d := Delivery{Lane: lane, Subject: msg.Subject(), Data: msg.Data(), MsgID: msg.Headers().Get(jetstream.MsgIDHeader),
		ParkedAs: wire.ParkedAs(msg.Headers()), Sequence: meta.Sequence.Stream, Number: int(meta.NumDelivered)}
	d.Last = d.Number >= q.cfg.Limits.MaxDeliver
	if d.Number > 1 {
		q.obs.Redelivered(lane)
	}
	// The job continues the trace its producer put in the headers (or begins one).
	ctx, span := q.cfg.Tracer.Start(tracing.Extract(ctx, msg.Headers()), "push job", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() { // attributes cost allocations: none when tracing is off
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("pushworker.lane", lane), attribute.Int("pushworker.deliveries", d.Number))
	}
	stop := q.heartbeat(msg)
	out := q.handler.Handle(ctx, d)
	var pending chan struct{}
	if wait := out.Pending; wait != nil {
		// The beats go on until Pending returned (the marks of what went out are
		// stored: a Redis that does not answer holds the job here, as it does in
		// Handle), beside the result's publish, which has no beats of its own.
		pending = make(chan struct{})
		q.pool.Go(func() { wait(); stop(); close(pending) })
	} else {
		stop()
	}
	q.finish(ctx, lane, msg, out, pending)
	if r := out.Result; r != nil && span.IsRecording() {
		span.SetAttributes(attribute.String("pushworker.job_id", r.JobID), attribute.String("pushworker.status", string(r.Status)))
		if r.Status == job.StatusFailed || r.Status == job.StatusRejected {
			span.SetStatus(codes.Error, string(r.Status))
		}
	}
}

// finish stores the dead letter and the result, waits for pending (the
// outcome's Pending) when there is one, then acks, terms or hands back.
func (q *Consumer) finish(ctx context.Context, lane string, msg jetstream.Msg, out Outcome, pending <-chan struct{}) {
	if dl := out.DeadLetter; dl != nil {
		if err := q.publishDeadLetter(ctx, msg.Subject(), dl, msg); err != nil {
			q.log.Error("dead letter not stored", zap.String("job", job.Clip(dl.JobID)), zap.Error(err))
		} else {
			q.obs.DeadLetter(lane, dl.Reason)
		}
	}
	action := out.Action
	if action == Park {
		action = Ack
		if err := q.publishParked(ctx, msg, out); err != nil {
			q.log.Warn("job not parked: handed back", zap.String("job", job.Clip(out.JobID)), zap.Error(err))
			action = Release
		} else {
			q.obs.Parked(lane)
			if q.cfg.OnParked != nil {
				defer q.cfg.OnParked(q.cfg.Topology.Campaign(msg.Subject()))
			}
		}
	}
	if out.Result != nil {
		out.Result.TraceID = tracing.TraceID(ctx)
		pctx, span := q.cfg.Tracer.Start(ctx, "publish result", trace.WithSpanKind(trace.SpanKindProducer))
		if span.IsRecording() {
			span.SetAttributes(attribute.String("messaging.destination.name", out.ResultSubject))
		}
		fresh, err := q.publishResult(pctx, out.ResultSubject, out.Result)
		if err != nil && span.IsRecording() {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if fresh && q.cfg.OnResult != nil {
			q.cfg.OnResult(msg.Subject(), out.Result)
		}
		if err != nil {
			q.log.Warn("result not published", zap.String("job", job.Clip(out.Result.JobID)), zap.String("subject", job.Clip(out.ResultSubject)), zap.Error(err))
			q.obs.ResultFailed()
			if action == Ack {
				action = Release // never ack a job whose result is not stored
			}
			if action == Release && q.last(msg) {
				// No delivery comes after this one: a work-queue stream would keep
				// the job for ever. It leaves with a dead letter instead.
				action = q.deadLetterWhole(ctx, lane, msg, out.Result.JobID, fmt.Errorf("its result was not stored: %w", err))
			}
		} else {
			q.obs.Job(lane, string(out.Result.Status))
		}
	}
	if pending != nil {
		<-pending
	}
	q.settle(ctx, msg, action, out.Delay)
}

// last reports the job's last allowed delivery.
func (q *Consumer) last(msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	return err == nil && int(meta.NumDelivered) >= q.cfg.Limits.MaxDeliver
}

// deadLetterWhole stores the job as received as a dead letter (ReasonStopped)
// and answers Term, or Release when even that is not stored.
func (q *Consumer) deadLetterWhole(ctx context.Context, lane string, msg jetstream.Msg, jobID string, cause error) Action {
	dl := &DeadLetter{JobID: jobID, Body: msg.Data(), Reason: ReasonStopped, Error: cause.Error()}
	if err := q.publishDeadLetter(ctx, msg.Subject(), dl, msg); err != nil {
		q.log.Error("job kept in the stream: neither its result nor its dead letter was stored", zap.String("job", job.Clip(jobID)), zap.Error(err))
		return Release
	}
	q.obs.DeadLetter(lane, dl.Reason)
	q.log.Warn("job dead-lettered on its last delivery: its result was not stored", zap.String("job", job.Clip(jobID)), zap.Error(cause))
	return Term
}

// settle carries out the action. Its errors are not the job's: the message then
// comes back after its AckWait, and the dedupe store makes the re-run send nothing
// twice. They are logged at debug and counted.
func (q *Consumer) settle(ctx context.Context, msg jetstream.Msg, a Action, delay time.Duration) {
	var err error
	switch a {
	case Ack:
		// A plain ack, not one the server confirms: the confirmation is a message
		// and a wakeup more per job, and a lost ack costs nothing twice (the
		// redelivery finds every pair sent by this job and stores the same
		// result, which the result stream's Nats-Msg-Id window drops).
		err = msg.Ack()
	case Term:
		err = msg.Term()
	case Retry:
		err = msg.NakWithDelay(delay)
	case Release:
		err = msg.Nak()
	case Leave: // a later delivery answers for the message
	}
	if err != nil {
		q.obs.AckFailed(a.String())
		q.log.Debug("acknowledgement not taken", zap.Stringer("action", a), zap.String("subject", job.Clip(msg.Subject())), zap.Error(err))
	}
}

// heartbeat keeps the job's AckWait from running out while it runs.
func (q *Consumer) heartbeat(msg jetstream.Msg) (stop func()) {
	every := max(q.cfg.Limits.AckWait/3, 500*time.Millisecond)
	// A timer, not a goroutine: most jobs end before the first beat. The lock
	// keeps a beat from going out after stop returned (after the ack).
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if err := msg.InProgress(); err != nil {
			q.obs.AckFailed("in_progress")
			q.log.Debug("InProgress not taken", zap.String("subject", job.Clip(msg.Subject())), zap.Error(err))
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
