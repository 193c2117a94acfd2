package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// Slots is the cap on mPaaS calls in flight over every job of a worker, pushes
// and recalls alike: a call holds one from before its targets are claimed until
// it ends. Bulk calls also hold one of the bulk slots, a quarter fewer than all,
// so that event calls never wait behind bulk ones.
type Slots struct {
	all  chan struct{} // every call in flight
	bulk chan struct{} // bulk calls in flight: fewer, so that events always find a slot
	obs  Observer
}

func newSlots(n int, obs Observer) *Slots {
	return &Slots{all: make(chan struct{}, n), bulk: make(chan struct{}, bulkSlots(n)), obs: obs}
}

// bulkSlots is how many of n slots bulk calls may hold.
func bulkSlots(n int) int { return max(1, n-max(1, n/4)) }

// Acquire takes a call slot, or returns ctx's error.
func (s *Slots) Acquire(ctx context.Context, event bool) error {
	if !event {
		select {
		case s.bulk <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case s.all <- struct{}{}:
		s.obs.InFlight(1)
		return nil
	case <-ctx.Done():
		if !event {
			<-s.bulk
		}
		return ctx.Err()
	}
}

// Release gives back a slot Acquire took.
func (s *Slots) Release(event bool) {
	<-s.all
	if !event {
		<-s.bulk
	}
	s.obs.InFlight(-1)
}

// startNext starts the job's next call: it holds a call slot, takes the next
// chunk from the claimer and hands it to a sender. The slot comes before the
// chunk, so that claims wait for calls only as long as the claims made ahead of
// them. It reports whether targets are left to claim and the run goes on: its
// deadline, a stop, its campaign halted, a later delivery or a store that did
// not answer end the loop.
func (p *Pipeline) startNext(ctx context.Context, r *run, cl *claimer) (more bool) {
	if r.expired(p) {
		for _, t := range job.Chunk(cl.giveUp(), r.j.CallSize()) {
			r.chunks = append(r.chunks, &chunk{targets: t, result: deadline(t, 0)})
		}
		return false
	}
	if err := p.acquire(ctx, r); err != nil {
		r.handed.Store(true)
		return false
	}
	if r.halted(p) || r.superseded.Load() {
		p.release(r)
		return false
	}
	t := p.turnAhead(ctx, r)
	c, more, err := cl.next(ctx)
	if r.superseded.Load() {
		if c != nil {
			p.releaseClaims(r, c.keys)
		}
		t.drop()
		p.release(r)
		return false
	}
	if err != nil || c == nil { // c == nil: every target left was a duplicate or sent before
		t.drop()
		p.release(r)
		if err != nil {
			r.handed.Store(true)
			return false
		}
		return more
	}
	r.chunks = append(r.chunks, c)
	r.calls.Add(1)
	r.marks.Add(1)
	if more {
		p.senders.Go(func() { p.sendChunk(ctx, r, c, t, false) })
	} else {
		// The run's last call: it waits for this one next, so the call is made
		// here, without handing it to a sender and being woken when it ends.
		p.sendChunk(ctx, r, c, t, true)
	}
	return more
}

// sendChunk makes the chunk's call (send), ends the chunk for the run, and
// stores its sent mark, which holds the call slot until it is stored. Inline
// (the run's own goroutine), the mark is stored by a sender, so that the run
// builds and publishes its result meanwhile.
func (p *Pipeline) sendChunk(ctx context.Context, r *run, c *chunk, t *turn, inline bool) {
	p.send(ctx, r, c, t)
	if c.handed {
		r.handed.Store(true)
	}
	m := c.mark
	r.calls.Done() // the chunk's result is in: the run may build its own
	mark := func() {
		defer r.marks.Done()
		defer p.release(r)
		if m != nil {
			p.markSent(ctx, r, c, *m)
		}
	}
	if inline && m != nil {
		p.senders.Go(mark)
		return
	}
	mark()
}

// callSpan names a call's span by its action, without a string built per call.
var callSpan = map[string]string{job.APITemplate: "mpaas " + job.APITemplate, job.APIMultiple: "mpaas " + job.APIMultiple,
	job.APISimple: "mpaas " + job.APISimple, job.APIBroadcast: "mpaas " + job.APIBroadcast}

// send makes the chunk's call until it ends: sent, failed for good, or handed
// back to a later delivery. It runs in its own goroutine and holds one call slot.
// On the last delivery a chunk that still fails is failed, not handed back.
// Each attempt waits for its turn (waitTurn), passes the fence, calls and
// decides on the answer.
func (p *Pipeline) send(ctx context.Context, r *run, c *chunk, ahead *turn) {
	defer ahead.drop()
	var t tries
	for {
		if r.expired(p) {
			p.releaseClaims(r, c.keys)
			c.result = deadline(c.targets, t.attempts)
			return
		}
		waitStart := p.cfg.Clock.Now()
		if err := ahead.take(func() error { return p.waitTurn(ctx, r, len(c.targets)) }); err != nil {
			p.handBack(r, c)
			return
		}
		ahead = nil
		if !p.fence(ctx, r, c) {
			return
		}
		p.obs.LimiterWait(r.d.Lane, p.cfg.Clock.Now().Sub(waitStart))
		t.attempts++
		out := p.call(ctx, r, c, t.attempts)
		if p.decide(ctx, r, c, out, &t) {
			return
		}
	}
}

// turn is an event call's wait for its slot of the rate, started beside the
// claim of its targets (turnAhead), so that an event pays one round trip for
// both, not two.
type turn struct {
	done   chan error
	cancel context.CancelFunc
}

// turnAhead starts the wait for the next call's turn when the run is an
// event's (no campaign, so no pace), and returns nil for any other run. A turn
// taken for a chunk that then has nothing to send (every target sent before,
// or another job's) is lost: the shared rate is never exceeded by it, at worst
// not reached by one call.
func (p *Pipeline) turnAhead(ctx context.Context, r *run) *turn {
	if !r.event || r.campaign != "" {
		return nil
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &turn{done: make(chan error, 1), cancel: cancel}
	p.senders.Go(func() { t.done <- p.waitTurn(tctx, r, 0) })
	return t
}

// take waits for the turn started ahead, or, with none, runs wait.
func (t *turn) take(wait func() error) error {
	if t == nil {
		return wait()
	}
	return <-t.done
}

// drop ends a turn's wait, taken or not.
func (t *turn) drop() {
	if t != nil {
		t.cancel()
	}
}

// tries is what a chunk's calls met on this delivery: the calls made, the
// transient answers, and the probes of a problem of the worker's own.
type tries struct{ attempts, transient, probes int }

// fence lets a call that waited go out only while it still may: its campaign
// may have been paused or canceled meanwhile, and a delivery that ran long may
// have lost its claims to a later one (refresh finds out). It reports whether
// the call goes out; when not, the chunk has ended.
func (p *Pipeline) fence(ctx context.Context, r *run, c *chunk) bool {
	if r.halted(p) {
		p.handBack(r, c)
		return false
	}
	return !r.stale(p) || p.refresh(ctx, r, c)
}

// call makes attempt's call and reports it. A call on the wire is not canceled
// by a stop: canceled, mPaaS may still push it, and its pairs would have to stay
// claimed unmarked. It finishes within the client's own timeout, and a push that
// went out is marked.
func (p *Pipeline) call(ctx context.Context, r *run, c *chunk, attempt int) push.CallResult {
	cctx, call := p.cfg.Tracer.Start(context.WithoutCancel(ctx), callSpan[r.j.API()], trace.WithSpanKind(trace.SpanKindClient))
	out := p.pusher.Push(cctx, r.j, c.targets)
	if call.IsRecording() {
		call.SetAttributes(attribute.String("pushworker.action", r.j.API()), attribute.Int("pushworker.targets", len(c.targets)),
			attribute.Int("pushworker.attempt", attempt), attribute.String("pushworker.result_code", out.ResultCode),
			attribute.String("pushworker.request_id", out.RequestID), attribute.String("pushworker.class", out.Class.String()))
	}
	if out.Class != push.Success && call.IsRecording() {
		msg := out.Class.String()
		if out.Err != nil {
			msg = out.Err.Error()
		}
		call.SetStatus(codes.Error, msg)
	}
	call.End()
	p.obs.Call(r.d.Lane, out)
	if out.Throttled {
		LimiterFor(p.limiter, r.j.AppID).Throttled()
	}
	r.log.Debug("mPaaS call", zap.Int("targets", len(c.targets)), zap.Int("attempt", attempt), zap.Stringer("class", out.Class),
		zap.String("code", out.ResultCode), zap.String("request_id", out.RequestID), zap.Duration("latency", out.Latency), zap.Error(out.Err))
	return out
}

// decide ends the chunk on the call's answer, or readies the next attempt. It
// reports whether the chunk has ended.
func (p *Pipeline) decide(ctx context.Context, r *run, c *chunk, out push.CallResult, t *tries) (done bool) {
	switch {
	case out.Class == push.Success:
		p.gate.Clear(pause.CauseCredentials)
		p.gate.Clear(pause.CauseMPaaS)
		// The mark is stored once the chunk is done (sendChunk),
		// beside the building and publishing of the job's result.
		c.mark = &dedupe.Mark{RequestID: out.RequestID, Attempts: t.attempts, Data: out.Data}
		c.result = chunkResult(c.targets, out, t.attempts, job.ChunkSent)
		return true
	case out.Class == push.JobFault:
		p.releaseClaims(r, c.keys)
		c.result = chunkResult(c.targets, out, t.attempts, job.ChunkFailed)
		return true
	case out.Class == push.ConfigFault, unreachable(out) && t.transient+1 >= p.cfg.Attempts:
		// The worker's problem, not the job's: hold the chunk, stop fetching, probe.
		t.probes++
		return !p.probe(ctx, r, c, out, t.probes)
	default:
		return p.retry(ctx, r, c, out, t)
	}
}

// retry takes a transient answer: the next attempt after the call policy's
// delay or, once Attempts of them came, the chunk handed back (failed on the
// last delivery). It reports whether the chunk has ended.
func (p *Pipeline) retry(ctx context.Context, r *run, c *chunk, out push.CallResult, t *tries) (done bool) {
	t.transient++
	if out.MaybeSent && r.j.IsBroadcast() {
		// A broadcast goes out at most once: a call that may have gone out is
		// not made again, and its claim stays, as after a crash (claim.go).
		r.log.Warn("broadcast call with no answer: not made again; its claim stays", zap.String("code", out.ResultCode))
		if r.d.Last {
			c.result = chunkResult(c.targets, out, t.attempts, job.ChunkFailed)
			c.result.Error = ErrBroadcastHeld
		} else {
			c.handed = true
		}
		return true
	}
	if ctx.Err() != nil { // stopping: no retry on this delivery
		p.stopped(r, c, out)
		return true
	}
	if t.transient >= p.cfg.Attempts {
		p.releaseClaims(r, c.keys)
		if r.d.Last {
			c.result = chunkResult(c.targets, out, t.attempts, job.ChunkFailed)
		} else {
			c.handed = true
		}
		r.log.Info("chunk still failing after retries", zap.Int("targets", len(c.targets)),
			zap.Int("attempts", t.attempts), zap.String("code", out.ResultCode), zap.Bool("last_delivery", r.d.Last))
		return true
	}
	if !p.cfg.Clock.Sleep(ctx, p.cfg.Call.NextRetry(t.transient)) {
		p.stopped(r, c, out)
		return true
	}
	return false
}

// expired, halted and stale are what a call asks before it starts and again
// before it goes out.

// expired reports that the job's notAfter has passed: no call starts for it.
func (r *run) expired(p *Pipeline) bool {
	return r.j.NotAfter != nil && !p.cfg.Clock.Now().Before(*r.j.NotAfter)
}

// halted reports, and records, that the job's campaign was paused or canceled:
// no new call starts for it.
func (r *run) halted(p *Pipeline) bool {
	if r.campaign == "" {
		return false
	}
	switch p.cfg.Campaigns.Get(r.campaign).State {
	case campaign.Paused:
		r.parked.Store(true)
		return true
	case campaign.Canceled:
		r.canceled.Store(true)
		return true
	}
	return false
}

// stale reports a delivery that has run long enough for JetStream to have
// given its job to a later delivery: its claims are checked again before a call.
func (r *run) stale(p *Pipeline) bool {
	return p.cfg.Clock.Now().Sub(r.started) >= p.cfg.Recheck
}

// unreachable is a call that got no answer and did not go out: mPaaS cannot be reached.
func unreachable(out push.CallResult) bool {
	return out.Class == push.Transient && out.HTTPStatus == 0 && !out.MaybeSent
}

func chunkResult(t job.Targets, out push.CallResult, attempts int, status string) job.ChunkResult {
	r := job.ChunkResult{TargetMsgkey: t, Status: status, Attempts: attempts, RequestID: out.RequestID,
		ResultCode: out.ResultCode, ResultMessage: job.Clip(out.ResultMessage), PushSuccess: out.PushSuccess, Data: out.Data}
	if status == job.ChunkFailed && out.Err != nil {
		r.Error = job.Clip(out.Err.Error()) // mPaaS's answers may quote the job's parameters
	}
	return r
}

// stopped hands the chunk back because the worker stops after a transient
// answer. A call that may have pushed (no answer after the request went out)
// keeps its claims, as after a crash: a stop never releases a claim whose push
// may have gone out, so no other job pushes those pairs while the lease holds.
func (p *Pipeline) stopped(r *run, c *chunk, out push.CallResult) {
	if out.MaybeSent {
		r.log.Warn("stopping after a call with no answer: its pairs stay claimed as maybe sent", zap.Int("targets", len(c.targets)))
		c.handed = true
		return
	}
	p.handBack(r, c)
}
