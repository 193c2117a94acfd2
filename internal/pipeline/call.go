package pipeline

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/health"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/job"
)

// callSpan names a call's span by its action, without a string built per call.
var callSpan = map[string]string{job.APITemplate: "mpaas " + job.APITemplate, job.APIMultiple: "mpaas " + job.APIMultiple}

// send makes the chunk's call until it ends: sent, failed for good, or handed
// back to a later delivery. It runs in its own goroutine and holds one call slot.
// On the last delivery a chunk that still fails is failed, not handed back.
func (p *Pipeline) send(ctx context.Context, r *run, c *chunk) {
	attempts, transient, probes := 0, 0, 0
	for {
		if r.expired(p) {
			p.releaseClaims(r, c.keys)
			c.result = deadline(c.targets, attempts)
			return
		}
		waitStart := p.cfg.Clock.Now()
		if err := p.untilOK(ctx, health.CauseRedis, func() error { return p.pace(ctx, r, len(c.targets)) }); err != nil {
			p.handBack(r, c)
			return
		}
		wctx, wait := p.cfg.Tracer.Start(ctx, "limiter wait")
		if wait.IsRecording() { // attributes cost allocations: none when tracing is off
			wait.SetAttributes(attribute.String("pushworker.lane", r.d.Lane))
		}
		err := p.untilOK(wctx, health.CauseRedis, func() error { return p.limiter.Wait(wctx, r.event) })
		wait.End()
		if err != nil {
			p.handBack(r, c)
			return
		}
		// The campaign may have been paused or canceled while this call waited.
		if r.halted(p) {
			p.handBack(r, c)
			return
		}
		// A delivery that ran long may have lost its claims to a later one.
		if r.stale(p) {
			if !p.refresh(ctx, r, c) {
				p.handBack(r, c)
				return
			}
			if r.superseded.Load() {
				c.handed = true // the later delivery holds these pairs now
				return
			}
			if len(c.targets) == 0 {
				return
			}
		}
		p.obs.LimiterWait(r.d.Lane, p.cfg.Clock.Now().Sub(waitStart))
		// A call on the wire is not canceled by a stop: canceled, mPaaS may still
		// push it, and its pairs would have to stay claimed unmarked. It finishes
		// within the client's own timeout, and a push that went out is marked.
		cctx, call := p.cfg.Tracer.Start(context.WithoutCancel(ctx), callSpan[r.j.API()], trace.WithSpanKind(trace.SpanKindClient))
		out := p.pusher.Push(cctx, r.j, c.targets)
		if call.IsRecording() {
			call.SetAttributes(attribute.String("pushworker.action", r.j.API()), attribute.Int("pushworker.targets", len(c.targets)),
				attribute.Int("pushworker.attempt", attempts+1), attribute.String("pushworker.result_code", out.ResultCode),
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
		attempts++
		p.obs.Call(r.d.Lane, out)
		if out.Throttled {
			p.limiter.Throttled()
		}
		r.log.Debug("mPaaS call", zap.Int("targets", len(c.targets)), zap.Int("attempt", attempts), zap.Stringer("class", out.Class),
			zap.String("code", out.ResultCode), zap.String("request_id", out.RequestID), zap.Duration("latency", out.Latency), zap.Error(out.Err))

		switch {
		case out.Class == push.Success:
			p.gate.Clear(health.CauseCredentials)
			p.gate.Clear(health.CauseMPaaS)
			p.markSent(ctx, r, c, dedupe.Mark{RequestID: out.RequestID, Attempts: attempts, Data: out.Data})
			c.result = chunkResult(c.targets, out, attempts, job.ChunkSent)
			return

		case out.Class == push.JobFault:
			p.releaseClaims(r, c.keys)
			c.result = chunkResult(c.targets, out, attempts, job.ChunkFailed)
			return

		case out.Class == push.ConfigFault, unreachable(out) && transient+1 >= p.cfg.Attempts:
			// The worker's problem, not the job's: hold the chunk, stop fetching, probe.
			cause := health.CauseCredentials
			if out.Class != push.ConfigFault {
				cause = health.CauseMPaaS
			}
			p.gate.Set(cause, out.Err)
			probes++
			if !p.cfg.Clock.Sleep(ctx, p.cfg.Probe.NextRetry(probes)) || !p.refresh(ctx, r, c) {
				p.handBack(r, c)
				return
			}
			if r.superseded.Load() {
				c.handed = true
				return
			}
			if len(c.targets) == 0 {
				return
			}

		default: // transient
			transient++
			if ctx.Err() != nil { // stopping: no retry on this delivery
				p.stopped(r, c, out)
				return
			}
			if transient >= p.cfg.Attempts {
				p.releaseClaims(r, c.keys)
				if r.d.Last {
					c.result = chunkResult(c.targets, out, attempts, job.ChunkFailed)
				} else {
					c.handed = true
				}
				r.log.Info("chunk still failing after retries", zap.Int("targets", len(c.targets)),
					zap.Int("attempts", attempts), zap.String("code", out.ResultCode), zap.Bool("last_delivery", r.d.Last))
				return
			}
			if !p.cfg.Clock.Sleep(ctx, p.cfg.Call.NextRetry(transient)) {
				p.stopped(r, c, out)
				return
			}
		}
	}
}

// pace waits for n targets of the job's campaign's pace, if it has one.
func (p *Pipeline) pace(ctx context.Context, r *run, n int) error {
	if r.campaign == "" {
		return nil
	}
	return p.cfg.Pace.Wait(ctx, r.campaign, p.cfg.Campaigns.Get(r.campaign).TargetsPerSecond, n)
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

func (p *Pipeline) handBack(r *run, c *chunk) {
	p.releaseClaims(r, c.keys)
	c.handed = true
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

// StopMarkWait bounds how long a stopping worker keeps trying to mark a push
// that went out as sent (while Redis answers, a mark takes a round trip).
const StopMarkWait = 10 * time.Second

// markSent records the push. A push that went out is never released: when Redis
// is down the mark waits for it, holding the job.
func (p *Pipeline) markSent(ctx context.Context, r *run, c *chunk, m dedupe.Mark) {
	err := p.untilOK(ctx, health.CauseRedis, func() error { return p.store.MarkSent(ctx, r.holder, c.keys, m) })
	if err != nil && ctx.Err() != nil {
		// The worker is stopping: the push went out, so the mark still lands, within a bound.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopMarkWait)
		err = p.untilOK(sctx, health.CauseRedis, func() error { return p.store.MarkSent(sctx, r.holder, c.keys, m) })
		cancel()
	}
	if err != nil {
		// Only when the worker is stopped for good: the lease stays until it
		// expires, and a redelivery of this job may push these targets again.
		r.log.Error("sent mark not stored", zap.Int("targets", len(c.keys)), zap.String("request_id", m.RequestID), zap.Error(err))
	}
}

// releaseClaims gives up this delivery's leases. It is best effort: a lease that
// stays expires on its own.
func (p *Pipeline) releaseClaims(r *run, keys []dedupe.Key) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.store.Release(ctx, r.holder, keys); err != nil {
		r.log.Warn("releasing claims", zap.Int("targets", len(keys)), zap.Error(err))
	}
}

// refresh claims the chunk's pairs again (after a pause, or a long run), which
// renews the leases; a pair another job took meanwhile leaves the chunk as a
// duplicate, and a pair a later delivery of this job took or sent makes the
// run superseded.
func (p *Pipeline) refresh(ctx context.Context, r *run, c *chunk) bool {
	var claims []dedupe.Claim
	err := p.untilOK(ctx, health.CauseRedis, func() error {
		var err error
		claims, err = p.store.Claim(ctx, r.holder, c.keys)
		return err
	})
	if err != nil {
		return false
	}
	targets, keys := c.targets[:0:0], c.keys[:0:0]
	for i, cl := range claims {
		switch cl.State {
		case dedupe.Claimed:
			targets, keys = append(targets, c.targets[i]), append(keys, c.keys[i])
		case dedupe.Superseded, dedupe.SentBySelf:
			// A later delivery of this job holds or sent what this one had
			// claimed: that delivery answers for the job.
			r.superseded.Store(true)
		default:
			c.skipped = append(c.skipped, c.targets[i])
		}
	}
	if r.superseded.Load() {
		p.releaseClaims(r, keys) // what this delivery still held goes to the later one
		c.targets, c.keys = nil, nil
		return true
	}
	c.targets, c.keys = targets, keys
	return true
}

// untilOK runs f until it succeeds, probing a store that is down (UntilOK)
// after the pipeline's StoreProbe delays.
func (p *Pipeline) untilOK(ctx context.Context, cause health.Cause, f func() error) error {
	return UntilOK(ctx, p.gate, p.cfg.Clock, p.cfg.StoreProbe, cause, f)
}

// UntilOK runs f until it succeeds. While a store the worker needs is
// unavailable (f's error wraps health.ErrUnavailable), that is the worker's
// problem: the gate stays shut and f is probed after every's delays. Any other
// error, or ctx ending, is returned.
func UntilOK(ctx context.Context, gate *health.Gate, clk clock.Clock, every retry.Policy, cause health.Cause, f func() error) error {
	set := cause
	for probes := 1; ; probes++ {
		err := f()
		if err == nil {
			if probes > 1 {
				gate.Clear(cause)
				if cause == health.CauseRedis {
					gate.Clear(health.CauseRedisPermission)
				}
			}
			return nil
		}
		if ctx.Err() != nil || !errors.Is(err, health.ErrUnavailable) {
			return err
		}
		if cause == health.CauseRedis {
			set = health.StoreCause(err)
		}
		gate.Set(set, err)
		if !clk.Sleep(ctx, every.NextRetry(probes)) {
			return ctx.Err()
		}
	}
}
