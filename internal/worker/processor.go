// Package worker is the path of one job inside a worker: claim each pair in the
// dedupe store, chunk the claimed targets into calls of at most ten, take a slot
// from the shared rate limit, call mPaaS, retry what is transient, mark what was
// sent and release what was not. It knows nothing of the queue that carried the
// job: it returns a final result, or says to hand the job back for later.
package worker

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// Pusher makes one PushTemplate call.
type Pusher interface {
	Push(ctx context.Context, j *job.Job, targets job.Targets) push.Outcome
}

// Limiter hands out call slots, event calls first, and slows down when mPaaS throttles.
type Limiter interface {
	Wait(ctx context.Context, event bool) error
	Throttled()
}

// Causes the Gate knows.
const (
	CauseRedis       = "redis"
	CauseCredentials = "mpaas-credentials"
	CauseMPaaS       = "mpaas-unreachable"
)

// Config of a Processor.
type Config struct {
	MaxInFlight int           // mPaaS calls in flight at once, over all jobs; default 32
	Attempts    int           // calls per chunk per delivery for transient failures; default 4
	RetryMin    time.Duration // first backoff; default 200 ms
	RetryMax    time.Duration // longest backoff; default 5 s
	ProbeMax    time.Duration // longest wait between probes of a worker problem; default 10 s
}

func (c Config) withDefaults() Config {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.Attempts <= 0 {
		c.Attempts = 4
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.ProbeMax <= 0 {
		c.ProbeMax = 10 * time.Second
	}
	return c
}

// Processor runs jobs. It is safe for concurrent use: every job it runs shares
// one cap on calls in flight.
type Processor struct {
	cfg     Config
	store   dedupe.Store
	limiter Limiter
	pusher  Pusher
	gate    *Gate
	log     *zap.Logger
	slots   chan struct{} // every call in flight
	bulk    chan struct{} // bulk calls in flight: fewer, so that events always find a slot
	now     func() time.Time
	obs     Observer
}

// Observer is told what happens, for metrics. Every method must be cheap.
type Observer interface {
	Call(lane string, out push.Outcome)
	Chunk(lane, status string)
	Duplicates(lane string, n int)
	LimiterWait(lane string, d time.Duration)
	InFlight(delta int)
}

type noObserver struct{}

func (noObserver) Call(string, push.Outcome)         {}
func (noObserver) Chunk(string, string)              {}
func (noObserver) Duplicates(string, int)            {}
func (noObserver) LimiterWait(string, time.Duration) {}
func (noObserver) InFlight(int)                      {}

// New makes a Processor. obs may be nil.
func New(cfg Config, store dedupe.Store, limiter Limiter, pusher Pusher, gate *Gate, log *zap.Logger, obs Observer) *Processor {
	cfg = cfg.withDefaults()
	if obs == nil {
		obs = noObserver{}
	}
	return &Processor{cfg: cfg, store: store, limiter: limiter, pusher: pusher, gate: gate, log: log,
		slots: make(chan struct{}, cfg.MaxInFlight), bulk: make(chan struct{}, max(1, cfg.MaxInFlight-max(1, cfg.MaxInFlight/4))),
		now: time.Now, obs: obs}
}

// Delivery is what the queue says about this run of the job.
type Delivery struct {
	Number  int    // 1 for the first delivery
	Last    bool   // no delivery comes after this one
	Message string // the message that carried the job (its stream sequence)
	Token   string // unique to this delivery
	Lane    string // "default" or "bulk", for logs and metrics
	Event   bool   // the default lane: its calls go before bulk calls
}

// holder names this delivery's dedupe leases.
func (d Delivery) holder(j *job.Job) dedupe.Holder {
	return dedupe.Holder{JobID: j.JobID, Message: d.Message, Token: d.Token}
}

// Outcome of one delivery of a job.
type Outcome struct {
	// Result is the final result, or nil when the job is to be handed back.
	Result *job.Result
	// Failed are the targets that failed for good (to dead-letter), with the last error.
	Failed    job.Targets
	LastError string
}

// chunk is one call's worth of claimed targets and what became of it.
type chunk struct {
	targets job.Targets
	keys    []dedupe.Key
	result  job.ChunkResult
	handed  bool        // not finished on this delivery
	skipped job.Targets // lost to another job while this chunk waited out a worker problem
}

// Process runs one delivery of a valid job whose JobID is set.
func (p *Processor) Process(ctx context.Context, j *job.Job, d Delivery) Outcome {
	log := p.log.With(zap.String("job", j.JobID), zap.String("lane", d.Lane), zap.Int("delivery", d.Number))
	res := job.NewResult(j, d.Number, p.now())
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		chunks []*chunk
		handed bool
		cl     = &claimer{p: p, j: j, d: d, res: res, pending: j.TargetMsgkey}
	)
	expired := func() bool { return j.NotAfter != nil && !p.now().Before(*j.NotAfter) }

	for cl.more() {
		if expired() {
			for _, t := range job.Chunk(cl.giveUp(), job.MaxTargetsPerCall) {
				chunks = append(chunks, deadlineChunk(t))
			}
			break
		}
		// Hold a call slot before taking a chunk, so that claims wait for calls
		// only as long as the claims made ahead of them.
		if err := p.acquire(ctx, d.Event); err != nil {
			handed = true
			break
		}
		c, err := cl.next(ctx)
		if err != nil {
			p.release(d.Event)
			handed = true
			break
		}
		if c == nil { // every target left was a duplicate or sent before
			p.release(d.Event)
			continue
		}
		chunks = append(chunks, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.release(d.Event)
			p.send(ctx, j, d, c, log)
			if c.handed {
				mu.Lock()
				handed = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if handed {
		cl.giveUp()
	}

	var failed job.Targets
	var lastErr string
	for _, c := range chunks {
		for _, t := range c.skipped {
			res.AddSkipped(t)
		}
		if c.handed || c.result.Status == "" { // handed back, or nothing left to send
			continue
		}
		res.AddChunk(c.result)
		p.obs.Chunk(d.Lane, c.result.Status)
		if c.result.Status == job.ChunkFailed {
			failed = append(failed, c.result.TargetMsgkey...)
			lastErr = c.result.Error
		}
	}
	p.obs.Duplicates(d.Lane, res.Duplicates)
	if handed {
		log.Info("job handed back for a later delivery", zap.Int("sent", res.Sent))
		return Outcome{}
	}
	return Outcome{Result: res.Finish(p.now()), Failed: failed, LastError: lastErr}
}

// acquire takes a call slot. Bulk calls take one of the bulk slots first, a
// quarter fewer than all, so that event calls never wait behind bulk ones.
func (p *Processor) acquire(ctx context.Context, event bool) error {
	if !event {
		select {
		case p.bulk <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case p.slots <- struct{}{}:
		p.obs.InFlight(1)
		return nil
	case <-ctx.Done():
		if !event {
			<-p.bulk
		}
		return ctx.Err()
	}
}

func (p *Processor) release(event bool) {
	<-p.slots
	if !event {
		<-p.bulk
	}
	p.obs.InFlight(-1)
}

func deadlineChunk(t job.Targets) *chunk {
	return &chunk{targets: t, result: job.ChunkResult{TargetMsgkey: t, Status: job.ChunkFailed, Error: "deadline passed"}}
}

func keysOf(j *job.Job, t job.Targets) []dedupe.Key {
	keys := make([]dedupe.Key, len(t))
	for i, x := range t {
		keys[i] = dedupe.Key{AppID: j.AppID, WorkspaceID: j.WorkspaceID, Target: x.Target, MsgKey: x.MsgKey}
	}
	return keys
}

// claimAhead is how many targets one claim round trip takes: several calls' worth.
const claimAhead = 5 * job.MaxTargetsPerCall

// claimer claims a job's targets ahead of its calls, in the job's order, and
// hands them out a call at a time. Pairs another job owns are recorded as skipped;
// pairs an earlier delivery of this job sent are reported as sent, under that
// call's request id.
type claimer struct {
	p         *Processor
	j         *job.Job
	d         Delivery
	res       *job.Result
	pending   job.Targets  // not claimed yet
	ready     job.Targets  // claimed, waiting for a call
	readyKeys []dedupe.Key // their keys
}

func (c *claimer) more() bool { return len(c.ready) > 0 || len(c.pending) > 0 }

// next is the next call's chunk, or nil when every target left was skipped.
func (c *claimer) next(ctx context.Context) (*chunk, error) {
	for len(c.ready) < job.MaxTargetsPerCall && len(c.pending) > 0 {
		if err := c.claim(ctx); err != nil {
			return nil, err
		}
	}
	if len(c.ready) == 0 {
		return nil, nil
	}
	n := min(job.MaxTargetsPerCall, len(c.ready))
	ch := &chunk{targets: c.ready[:n:n], keys: c.readyKeys[:n:n]}
	c.ready, c.readyKeys = c.ready[n:], c.readyKeys[n:]
	return ch, nil
}

// claim claims the next window of pending targets in one round trip.
func (c *claimer) claim(ctx context.Context) error {
	n := min(claimAhead, len(c.pending))
	window := c.pending[:n]
	keys := keysOf(c.j, window)
	var claims []dedupe.Claim
	err := c.p.untilOK(ctx, CauseRedis, func() error {
		var err error
		claims, err = c.p.store.Claim(ctx, c.d.holder(c.j), keys)
		return err
	})
	if err != nil {
		return err
	}
	c.pending = c.pending[n:]
	var sentBefore []*job.ChunkResult // in order of first appearance
	byRequest := map[string]*job.ChunkResult{}
	for i, cl := range claims {
		switch cl.State {
		case dedupe.Claimed:
			c.ready = append(c.ready, window[i])
			c.readyKeys = append(c.readyKeys, keys[i])
		case dedupe.SentBySelf:
			cr := byRequest[cl.Mark.RequestID]
			if cr == nil {
				cr = &job.ChunkResult{Status: job.ChunkSent, Attempts: cl.Mark.Attempts, RequestID: cl.Mark.RequestID,
					ResultCode: "OK", PushSuccess: true, Data: cl.Mark.Data}
				byRequest[cl.Mark.RequestID] = cr
				sentBefore = append(sentBefore, cr)
			}
			cr.TargetMsgkey = append(cr.TargetMsgkey, window[i])
		default:
			c.res.AddSkipped(window[i])
		}
	}
	for _, cr := range sentBefore {
		c.res.AddChunk(*cr)
	}
	return nil
}

// giveUp releases the claims made ahead and returns every target not handed out.
func (c *claimer) giveUp() job.Targets {
	c.p.releaseClaims(c.j, c.d, c.readyKeys)
	left := append(c.ready[:len(c.ready):len(c.ready)], c.pending...)
	c.ready, c.readyKeys, c.pending = nil, nil, nil
	return left
}
