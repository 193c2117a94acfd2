// Package pipeline is the path of one job inside a worker, from the bytes the
// queue delivered to the outcome it hands back: decode and validate, claim each
// pair in the dedupe store, chunk the claimed targets into calls (at most ten for
// PushTemplate and PushSimple, a hundred for PushMultiple, one for a broadcast,
// whose one pair is its msgKey: the action follows the job),
// take a slot from the shared rate limit, call mPaaS, retry what is transient,
// mark what was sent and release what was not. It knows nothing of JetStream: it
// implements consumer.Handler, and the queue carries out what it decides.
//
// One job's walk goes down its files and back up once: pipeline.go takes the
// delivery in and answers it (Handle); run.go is the run and its state (process,
// wrapUp, finish); call.go is one call (its slot and chunk, then per attempt:
// wait for its turn, the fence, the call, the decision); claim.go claims the
// pairs ahead of the calls; gate.go is the probe and every wait on Redis under
// it (claims, pace and limiter, sent marks, claims again), and the gate;
// apps.go is what several credentials change: a call's limiter is its app's
// credential's, and each credential's calls hold at most its share of the slots.
//
// It holds push work only: recall (admin) jobs are internal/recall's, which
// consumer.Mux hands their deliveries to, and which shares this package's call
// machinery (Config, Slots, UntilOK, Reject). It may not import internal/recall,
// nor NATS or JetStream (internal/consumer's handler types only).
package pipeline

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/taskpool"
	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// Pusher makes one mPaaS call for some of a job's targets (at most its CallSize),
// with the action the job's kind calls for.
type Pusher interface {
	Push(ctx context.Context, j *job.Job, targets job.Targets) push.CallResult
}

// Pacer holds a paced campaign's targets per second over every worker.
type Pacer interface {
	Wait(ctx context.Context, campaign string, perSecond float64, n int) error
}

// Limiter hands out call slots, event calls first, and slows down when mPaaS throttles.
type Limiter interface {
	Wait(ctx context.Context, event bool) error
	Throttled()
}

// Defaults of Config.
const (
	DefaultMaxInFlight = 32
	DefaultAttempts    = 4
	DefaultRecheck     = consumer.DefaultAckWait / 2
)

// Config of a Pipeline. Every zero field takes its default.
type Config struct {
	MaxInFlight int       // mPaaS calls in flight at once, over all jobs; default DefaultMaxInFlight
	Attempts    int       // calls per chunk per delivery for transient failures; default DefaultAttempts
	Rules       job.Rules // validation (target cap, scheduled chunks cap, zone, topology)

	Campaigns campaign.States // the control of campaigns; nil: every campaign runs, at no pace of its own
	Pace      Pacer           // with Campaigns: the campaigns' paces; nil: none

	Call  retry.Policy // between calls of a chunk within a delivery; default retry.Call
	Probe retry.Policy // between probes of a worker problem; default retry.Probe
	// StoreProbe is between retries of a Redis operation while Redis is
	// unavailable; default retry.StoreProbe, or Probe when that is set.
	StoreProbe retry.Policy
	HandBack   retry.Policy // the redelivery delay of a job handed back, by delivery; default retry.HandBack
	// Recheck is how long a delivery runs before it claims each chunk's pairs
	// again just before the call: past half the consumer's AckWait, JetStream
	// may have given the job to a later delivery (this worker frozen or starved,
	// its InProgress lost), which took the claims over. Default DefaultRecheck.
	Recheck time.Duration
	Clock   clock.Clock  // default clock.Real
	Tracer  trace.Tracer // the spans of claims, limiter waits and calls; default the no-op one
}

// WithDefaults is c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer(tracing.Scope)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Call == nil {
		c.Call = retry.Call
	}
	if c.StoreProbe == nil {
		c.StoreProbe = c.Probe
	}
	if c.StoreProbe == nil {
		c.StoreProbe = retry.StoreProbe
	}
	if c.Probe == nil {
		c.Probe = retry.Probe
	}
	if c.HandBack == nil {
		c.HandBack = retry.HandBack
	}
	if c.Recheck <= 0 {
		c.Recheck = DefaultRecheck
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Campaigns == nil {
		c.Campaigns = allRunning{}
	}
	if c.Pace == nil {
		c.Pace = noPace{}
	}
	c.Rules.Topology = c.Rules.Topology.OrDefault()
	return c
}

// Observer is told what happens, for metrics. Every method must be cheap.
type Observer interface {
	Call(lane string, out push.CallResult)
	Chunk(lane, status string)
	Duplicates(lane string, n int)
	LimiterWait(lane string, d time.Duration)
	InFlight(delta int)
	JobInHand(lane string, delta int)
}

type allRunning struct{}

func (allRunning) Get(string) campaign.State { return campaign.State{State: campaign.Running} }

type noPace struct{}

func (noPace) Wait(context.Context, string, float64, int) error { return nil }

type noObserver struct{}

func (noObserver) Call(string, push.CallResult)      {}
func (noObserver) JobInHand(string, int)             {}
func (noObserver) Chunk(string, string)              {}
func (noObserver) Duplicates(string, int)            {}
func (noObserver) LimiterWait(string, time.Duration) {}
func (noObserver) InFlight(int)                      {}

// Pipeline runs deliveries. It is safe for concurrent use: every job it runs
// shares one cap on calls in flight.
type Pipeline struct {
	cfg     Config
	store   dedupe.Store
	limiter Limiter
	pusher  Pusher
	gate    *pause.Gate
	log     *zap.Logger
	obs     Observer
	slots   *Slots           // every call in flight, shared with the recall handler's
	creds   *credentialSlots // with several credentials, each one's share of the slots (apps.go)
	senders *taskpool.Pool   // the goroutines that make the calls

	mu       sync.Mutex
	inFlight map[string]int // campaign → its jobs in this worker's hands
}

// New makes a Pipeline. log and obs may be nil.
func New(cfg Config, store dedupe.Store, limiter Limiter, pusher Pusher, gate *pause.Gate, log *zap.Logger, obs Observer) *Pipeline {
	cfg = cfg.WithDefaults()
	if obs == nil {
		obs = noObserver{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Pipeline{cfg: cfg, store: store, limiter: limiter, pusher: pusher, gate: gate, log: log, obs: obs,
		senders: taskpool.New(), slots: newSlots(cfg.MaxInFlight, obs), creds: newCredentialSlots(limiter, cfg.MaxInFlight),
		inFlight: map[string]int{}}
}

// Slots is the pipeline's cap on calls in flight, which the recall handler's
// calls share.
func (p *Pipeline) Slots() *Slots { return p.slots }

var _ consumer.Handler = (*Pipeline)(nil)

// Close ends the goroutines that make the calls, once the calls in flight are
// done. Call it after the last Handle returned.
func (p *Pipeline) Close() { p.senders.Close() }

// Handle runs one delivery of a job to its outcome: a rejected job is answered
// at once; a valid one is processed, and either ends with its result or is handed
// back. On the last delivery nothing is handed back: what still fails is failed
// (and dead-lettered), and a job stopped midway is dead-lettered whole.
func (p *Pipeline) Handle(ctx context.Context, d consumer.Delivery) consumer.Outcome {
	p.obs.JobInHand(d.Lane, 1)
	defer p.obs.JobInHand(d.Lane, -1)
	name := p.cfg.Rules.Topology.Campaign(d.Subject)
	p.track(name, 1)
	defer p.track(name, -1)
	fallback := FallbackID(d)
	j, err := job.Decode(d.Data)
	if err == nil {
		if j.JobID == "" {
			j.JobID = fallback
		}
		rules := p.cfg.Rules
		// A half-sent job is never rejected because time moved on; a job back from
		// parking may have been half sent.
		rules.SkipTimeRules = d.Number > 1 || d.ParkedAs != ""
		err = j.Validate(rules)
	}
	if err != nil {
		return Reject(d, j, fallback, err, p.cfg.Rules.Topology, p.cfg.Clock.Now(), p.log)
	}
	if name != "" && p.cfg.Campaigns.Get(name).State == campaign.Paused {
		return p.park(d, j, name) // before any claim: nothing to release
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("pushworker.job_id", j.JobID), attribute.String("pushworker.campaign", name),
			attribute.Int("pushworker.targets", j.TargetCount()), attribute.String("pushworker.action", j.API()))
	}
	log := p.log.With(zap.String("job", j.JobID), zap.String("lane", d.Lane), zap.Int("delivery", d.Number))
	log.Debug("job received", zap.String("subject", job.Clip(d.Subject)), zap.Int("targets", j.TargetCount()), zap.String("api", j.API()))
	run := p.process(ctx, j, d, log)
	if run.result == nil {
		// Handed back, parked or superseded: the message is settled at once, so
		// the marks of what went out are stored first. A result is published
		// while they are stored (Outcome.Pending).
		run.marks.Wait()
	}
	subject := p.cfg.Rules.Topology.ResultSubject(j.ReplyTo, j.JobID)
	switch {
	case run.superseded.Load():
		// JetStream gave the job to a later delivery, which holds its claims now
		// and answers for it: this one neither publishes nor acknowledges.
		log.Warn("job superseded: a later delivery of its message took its claims over", zap.Int("sent", run.sent))
		return consumer.Outcome{Action: consumer.Leave}
	case run.result != nil:
		out := consumer.Outcome{Result: run.result, ResultSubject: subject, Action: consumer.Ack, Pending: run.marks.Wait}
		if len(run.failed) > 0 {
			// Only the failed targets, each with its values: a replay sends them alone.
			body, _ := j.Only(run.failed).Encode()
			out.DeadLetter = &consumer.DeadLetter{JobID: j.JobID, Body: body, Reason: consumer.ReasonFailed, Error: run.lastError}
		}
		log.Info("job done", zap.String("status", string(run.result.Status)), zap.Int("sent", run.result.Sent),
			zap.Int("duplicates", run.result.Duplicates), zap.Int("failed", run.result.Failed))
		return out
	case run.parked.Load():
		log.Info("job parked: its campaign is paused", zap.String("campaign", name), zap.Int("sent", run.sent))
		return p.park(d, j, name)
	case d.Last:
		// No delivery comes after this one: a work-queue stream would keep the job for
		// ever. Dead-letter it whole; what it already sent is in the dedupe store, so a
		// replay sends only the rest.
		log.Warn("job stopped during its last delivery: dead-lettered whole")
		return consumer.Outcome{Action: consumer.Term, DeadLetter: &consumer.DeadLetter{JobID: j.JobID, Body: d.Data,
			Reason: consumer.ReasonStopped, Error: "the worker stopped during the last delivery"}}
	case ctx.Err() != nil:
		return consumer.Outcome{Action: consumer.Release} // the worker is stopping: another may take it at once
	default:
		delay := p.cfg.HandBack.NextRetry(d.Number)
		log.Info("job handed back", zap.Duration("delay", delay), zap.Int("sent", run.sent))
		return consumer.Outcome{Action: consumer.Retry, Delay: delay}
	}
}

// Reject answers a job that cannot run (invalid, or not a job at all: j may be
// nil): a rejected result on the job's reply subject when it names a valid one,
// else under topo's results, a dead letter with the bytes as received, and Term,
// since no retry can fix it. fallback is the job id when j has no valid one.
func Reject(d consumer.Delivery, j *job.Job, fallback string, cause error, topo topology.Topology, now time.Time, log *zap.Logger) consumer.Outcome {
	id := fallback
	if j != nil && job.ValidJobID(j.JobID) {
		id = j.JobID
	}
	subject := topo.ResultSubject("", id)
	if j != nil && j.ReplyTo != "" && topo.ValidReplyTo(j.ReplyTo) {
		subject = j.ReplyTo
	}
	res := job.Rejected(id, j, cause, d.Number, now)
	res.Campaign = topo.Campaign(d.Subject)
	log.Info("job rejected", zap.String("job", id), zap.String("lane", d.Lane), zap.String("error", res.Error))
	return consumer.Outcome{Result: res, ResultSubject: subject, Action: consumer.Term,
		DeadLetter: &consumer.DeadLetter{JobID: id, Body: d.Data, Reason: consumer.ReasonRejected, Error: res.Error}}
}

func (p *Pipeline) track(name string, delta int) {
	if name == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight[name] += delta; p.inFlight[name] <= 0 {
		delete(p.inFlight, name)
	}
}

// InFlight is how many jobs of the campaign this worker has in hand.
func (p *Pipeline) InFlight(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight[name]
}

// Campaigns are the campaigns this worker has jobs of in hand, sorted.
func (p *Pipeline) Campaigns() []string {
	p.mu.Lock()
	out := make([]string, 0, len(p.inFlight))
	for name := range p.inFlight {
		if name != "" {
			out = append(out, name)
		}
	}
	p.mu.Unlock()
	sort.Strings(out)
	return out
}

// park hands a paused campaign's job to the queue to store as received, and ack.
func (p *Pipeline) park(d consumer.Delivery, j *job.Job, name string) consumer.Outcome {
	return consumer.Outcome{Action: consumer.Park, ParkSubject: p.cfg.Rules.Topology.ParkedSubject(name, j.JobID), JobID: j.JobID}
}

// FallbackID is the job id of a job without one: the id it was parked under, its
// Nats-Msg-Id when that is a valid job id, else seq-<stream sequence>.
func FallbackID(d consumer.Delivery) string {
	if d.ParkedAs != "" && job.ValidJobID(d.ParkedAs) {
		return d.ParkedAs
	}
	if d.MsgID != "" && job.ValidJobID(d.MsgID) {
		return d.MsgID
	}
	return "seq-" + strconv.FormatUint(d.Sequence, 10)
}
