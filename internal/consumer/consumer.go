package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/ctxsleep"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

// Lanes.
const (
	LaneDefault = "default"
	LaneBulk    = "bulk"
)

// CauseNATS is the gate's cause while JetStream cannot be reached.
const CauseNATS = "nats"

// Config of a Consumer.
type Config struct {
	Topology    Topology
	Limits      Limits
	JobsPerLane int           // jobs run at once per lane; default 8
	Rules       job.Rules     // validation (targets cap, scheduled chunks cap, zone)
	RetryDelay  time.Duration // first redelivery delay of a handed-back job; doubles each time, at most 5 min; default 5 s
	FetchWait   time.Duration // how long one fetch waits for jobs; default 2 s
	Grace       time.Duration // how long jobs in flight may finish after a stop; default 20 s
}

func (c Config) withDefaults() Config {
	if c.Topology.Root == "" {
		c.Topology = DefaultTopology()
	}
	if c.Limits.MaxDeliver == 0 {
		c.Limits = DefaultLimits()
	}
	if c.JobsPerLane <= 0 {
		c.JobsPerLane = 8
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 5 * time.Second
	}
	if c.FetchWait <= 0 {
		c.FetchWait = 2 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 20 * time.Second
	}
	return c
}

// Consumer pulls jobs from both lanes and runs them through a Processor.
type Consumer struct {
	cfg   Config
	js    jetstream.JetStream
	lanes []lane
	proc  *worker.Processor
	gate  *worker.Gate
	log   *zap.Logger
	obs   Observer
}

type lane struct {
	name string
	cons jetstream.Consumer
}

// Observer is told how jobs end, for metrics.
type Observer interface {
	Job(lane, status string)
	Redelivered(lane string)
	DeadLetter(lane, reason string)
}

type noObserver struct{}

func (noObserver) Job(string, string)        {}
func (noObserver) Redelivered(string)        {}
func (noObserver) DeadLetter(string, string) {}

// New makes a Consumer on the two lanes' consumers (from Ensure). obs may be nil.
func New(cfg Config, js jetstream.JetStream, defaultLane, bulkLane jetstream.Consumer, proc *worker.Processor, gate *worker.Gate, log *zap.Logger, obs Observer) *Consumer {
	if obs == nil {
		obs = noObserver{}
	}
	return &Consumer{cfg: cfg.withDefaults(), js: js, proc: proc, gate: gate, log: log, obs: obs,
		lanes: []lane{{LaneDefault, defaultLane}, {LaneBulk, bulkLane}}}
}

// Run fetches and runs jobs until ctx ends, then stops fetching, lets the jobs in
// flight finish for up to Grace, hands back the rest and returns.
func (c *Consumer) Run(ctx context.Context) {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var fetchers, jobs sync.WaitGroup
	for _, ln := range c.lanes {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			c.fetchLoop(ctx, work, ln, &jobs)
		}()
	}
	fetchers.Wait() // they return when ctx ends
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.Grace):
		c.log.Warn("jobs still running after the grace period: handing them back", zap.Duration("grace", c.cfg.Grace))
		stopWork()
		<-done
	}
}

// fetchLoop pulls only as many jobs as the lane has free slots, so no job waits
// in a client buffer while its AckWait runs, and pulls nothing while the gate is shut.
func (c *Consumer) fetchLoop(ctx, work context.Context, ln lane, jobs *sync.WaitGroup) {
	slots := make(chan struct{}, c.cfg.JobsPerLane)
	var failures int
	for ctx.Err() == nil {
		if err := c.gate.Wait(ctx); err != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		fetchCtx, cancel := context.WithTimeout(ctx, c.cfg.FetchWait)
		batch, err := ln.cons.Fetch(n, jetstream.FetchContext(fetchCtx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				jobs.Add(1)
				go func() {
					defer jobs.Done()
					defer func() { <-slots }()
					c.handle(work, ln, msg)
				}()
			}
			err = batch.Error()
		}
		cancel()
		for range n - got {
			<-slots
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			failures++
			c.log.Warn("fetching jobs", zap.String("lane", ln.name), zap.Error(err))
			if failures >= 3 {
				c.gate.Set(CauseNATS, err)
			}
			ctxsleep.Sleep(ctx, time.Duration(min(failures, 10))*500*time.Millisecond)
			continue
		}
		if failures > 0 {
			failures = 0
			c.gate.Clear(CauseNATS)
		}
	}
}

// handle runs one delivery of one job to its end.
func (c *Consumer) handle(ctx context.Context, ln lane, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("job message without metadata", zap.Error(err))
		_ = msg.Nak()
		return
	}
	deliveries := int(meta.NumDelivered)
	if deliveries > 1 {
		c.obs.Redelivered(ln.name)
	}
	stop := c.heartbeat(msg)
	defer stop()

	fallback := fallbackID(msg.Headers().Get(jetstream.MsgIDHeader), meta.Sequence.Stream)
	j, err := job.Decode(msg.Data())
	if err == nil {
		if j.JobID == "" {
			j.JobID = fallback
		}
		rules := c.cfg.Rules
		rules.SkipTimeRules = deliveries > 1
		err = j.Validate(rules)
	}
	if err != nil {
		c.reject(ctx, ln, msg, j, fallback, err, deliveries)
		return
	}
	log := c.log.With(zap.String("job", j.JobID), zap.String("lane", ln.name))
	log.Debug("job received", zap.String("subject", msg.Subject()), zap.Int("targets", len(j.TargetMsgkey)), zap.Int("delivery", deliveries))
	last := deliveries >= c.cfg.Limits.MaxDeliver
	out := c.proc.Process(ctx, j, worker.Delivery{Number: deliveries, Last: last,
		Message: strconv.FormatUint(meta.Sequence.Stream, 10), Token: newToken(), Lane: ln.name, Event: ln.name == LaneDefault})
	if out.Result == nil {
		c.handBack(ctx, ln, msg, j, deliveries, last, log)
		return
	}
	if len(out.Failed) > 0 {
		failed := *j
		failed.TargetMsgkey = out.Failed
		body, _ := failed.Encode()
		c.deadLetter(ctx, ln, msg, j.JobID, body, "failed", out.LastError, deliveries)
	}
	if err := c.publishResult(ctx, c.resultSubject(j), out.Result); err != nil {
		log.Warn("result not published: the job is handed back", zap.Error(err))
		_ = msg.Nak()
		return
	}
	c.ack(ctx, msg, log)
	c.obs.Job(ln.name, string(out.Result.Status))
	log.Info("job done", zap.String("status", string(out.Result.Status)), zap.Int("sent", out.Result.Sent),
		zap.Int("duplicates", out.Result.Duplicates), zap.Int("failed", out.Result.Failed), zap.Int("delivery", deliveries))
}

func (c *Consumer) handBack(ctx context.Context, ln lane, msg jetstream.Msg, j *job.Job, deliveries int, last bool, log *zap.Logger) {
	if last {
		// No delivery comes after this one: a work-queue stream would keep the job for
		// ever. Dead-letter it whole; what it already sent is in the dedupe store, so a
		// replay sends only the rest.
		c.deadLetter(ctx, ln, msg, j.JobID, msg.Data(), "stopped", "the worker stopped during the last delivery", deliveries)
		_ = msg.Term()
		return
	}
	if ctx.Err() != nil {
		_ = msg.Nak() // the worker is stopping: another may take it at once
		return
	}
	delay := c.cfg.RetryDelay << min(deliveries-1, 10)
	delay = min(delay, 5*time.Minute)
	log.Info("job handed back", zap.Duration("delay", delay), zap.Int("delivery", deliveries))
	_ = msg.NakWithDelay(delay)
}

// reject answers an invalid job: a rejected result, a dead letter with the bytes as
// received, and Term, since no retry can fix it.
func (c *Consumer) reject(ctx context.Context, ln lane, msg jetstream.Msg, j *job.Job, fallback string, cause error, deliveries int) {
	id := fallback
	if j != nil && job.ValidJobID(j.JobID) {
		id = j.JobID
	}
	subject := c.cfg.Topology.ResultPrefix() + id
	if j != nil && j.ReplyTo != "" && job.ValidReplyTo(j.ReplyTo) {
		subject = j.ReplyTo
	}
	res := job.Rejected(id, j, cause, deliveries, time.Now())
	c.log.Info("job rejected", zap.String("job", id), zap.String("lane", ln.name), zap.String("error", res.Error))
	c.deadLetter(ctx, ln, msg, id, msg.Data(), "rejected", res.Error, deliveries)
	if err := c.publishResult(ctx, subject, res); err != nil {
		c.log.Warn("rejected result not published", zap.String("job", id), zap.Error(err))
	}
	_ = msg.Term()
	c.obs.Job(ln.name, string(job.StatusRejected))
}

func (c *Consumer) resultSubject(j *job.Job) string {
	if j.ReplyTo != "" {
		return j.ReplyTo
	}
	return c.cfg.Topology.ResultPrefix() + j.JobID
}

// publishResult stores the result in the result stream, retrying while JetStream
// is unreachable. Nats-Msg-Id = job id: a re-run's result is dropped as a duplicate.
func (c *Consumer) publishResult(ctx context.Context, subject string, r *job.Result) error {
	body, err := r.Encode()
	if err != nil {
		return err
	}
	return c.publish(ctx, &nats.Msg{Subject: subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{r.JobID}}})
}

// Headers of a dead letter.
const (
	HeaderReason     = "Pushworker-Reason"     // rejected, failed or stopped
	HeaderError      = "Pushworker-Error"      // the last error, one line
	HeaderJobID      = "Pushworker-Job-Id"     // the job's id (or its fallback id)
	HeaderSubject    = "Pushworker-Subject"    // the subject the job came on
	HeaderDeliveries = "Pushworker-Deliveries" // how many times it was delivered
)

// deadLetter keeps a job, or the part of it that failed, for inspection and replay.
func (c *Consumer) deadLetter(ctx context.Context, ln lane, msg jetstream.Msg, jobID string, body []byte, reason, errText string, deliveries int) {
	m := &nats.Msg{Subject: c.cfg.Topology.DLQPrefix() + jobID, Data: body, Header: nats.Header{}}
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderError, errText)
	m.Header.Set(HeaderJobID, jobID)
	m.Header.Set(HeaderSubject, msg.Subject())
	m.Header.Set(HeaderDeliveries, strconv.Itoa(deliveries))
	m.Header.Set(jetstream.MsgIDHeader, "dlq-"+jobID)
	if err := c.publish(ctx, m); err != nil {
		c.log.Error("dead letter not stored", zap.String("job", jobID), zap.Error(err))
		return
	}
	c.obs.DeadLetter(ln.name, reason)
}

// publish retries while JetStream cannot be reached, until ctx ends.
func (c *Consumer) publish(ctx context.Context, m *nats.Msg) error {
	delay := 200 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			c.gate.Clear(CauseNATS)
			return nil
		}
		// The server refused this message (too big, no stream for the subject, …):
		// trying again changes nothing. Anything else is the connection: wait for it.
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("publishing to %s: %w", m.Subject, err)
		}
		c.gate.Set(CauseNATS, err)
		if !ctxsleep.Sleep(ctx, delay) {
			return fmt.Errorf("publishing to %s: %w", m.Subject, err)
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// The result is stored; a redelivery will find every target sent and publish
		// a result the stream drops as a duplicate.
		log.Warn("ack not confirmed", zap.Error(err))
	}
}

// heartbeat keeps the job's AckWait from running out while it runs.
func (c *Consumer) heartbeat(msg jetstream.Msg) (stop func()) {
	every := max(c.cfg.Limits.AckWait/3, 500*time.Millisecond)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// fallbackID is the job id of a job without one: its Nats-Msg-Id when that is a
// valid job id, else seq-<stream sequence>.
func fallbackID(msgID string, seq uint64) string {
	if msgID != "" && job.ValidJobID(msgID) {
		return msgID
	}
	return "seq-" + strconv.FormatUint(seq, 10)
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
