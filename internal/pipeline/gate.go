package pipeline

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/retry"
)

// untilOK runs f until it succeeds, probing a store that is down (UntilOK)
// after the pipeline's StoreProbe delays.
func (p *Pipeline) untilOK(ctx context.Context, cause pause.Cause, f func() error) error {
	return UntilOK(ctx, p.gate, p.cfg.Clock, p.cfg.StoreProbe, cause, f)
}

// UntilOK runs f until it succeeds. While a store the worker needs is
// unavailable (f's error wraps pause.ErrUnavailable), that is the worker's
// problem: the gate stays shut and f is probed after every's delays. Any other
// error, or ctx ending, is returned.
func UntilOK(ctx context.Context, gate *pause.Gate, clk clock.Clock, every retry.Policy, cause pause.Cause, f func() error) error {
	set := cause
	for probes := 1; ; probes++ {
		err := f()
		if err == nil {
			if probes > 1 {
				gate.Clear(cause)
				if cause == pause.CauseRedis {
					gate.Clear(pause.CauseRedisPermission)
				}
			}
			return nil
		}
		if ctx.Err() != nil || !errors.Is(err, pause.ErrUnavailable) {
			return err
		}
		if cause == pause.CauseRedis {
			set = pause.StoreCause(err)
		}
		gate.Set(set, err)
		if !clk.Sleep(ctx, every.NextRetry(probes)) {
			return ctx.Err()
		}
	}
}

// claimPairs claims keys for holder in one round trip, probing Redis while it
// is down. The claimer's claims ahead and refresh's claims again go through it.
func (p *Pipeline) claimPairs(ctx context.Context, holder dedupe.Holder, keys []dedupe.Key) ([]dedupe.Claim, error) {
	var claims []dedupe.Claim
	err := p.untilOK(ctx, pause.CauseRedis, func() error {
		var err error
		claims, err = p.store.Claim(ctx, holder, keys)
		return err
	})
	return claims, err
}

// waitTurn waits for a call's turn: n targets of its campaign's pace, if it
// has one, then a slot of the shared rate, probing Redis while it is down.
func (p *Pipeline) waitTurn(ctx context.Context, r *run, n int) error {
	if err := p.untilOK(ctx, pause.CauseRedis, func() error { return p.pace(ctx, r, n) }); err != nil {
		return err
	}
	wctx, wait := p.cfg.Tracer.Start(ctx, "limiter wait")
	if wait.IsRecording() { // attributes cost allocations: none when tracing is off
		wait.SetAttributes(attribute.String("pushworker.lane", r.d.Lane))
	}
	err := p.untilOK(wctx, pause.CauseRedis, func() error { return LimiterFor(p.limiter, r.j.AppID).Wait(wctx, r.event) })
	wait.End()
	return err
}

// pace waits for n targets of the job's campaign's pace, if it has one.
func (p *Pipeline) pace(ctx context.Context, r *run, n int) error {
	if r.campaign == "" {
		return nil
	}
	return p.cfg.Pace.Wait(ctx, r.campaign, p.cfg.Campaigns.Get(r.campaign).TargetsPerSecond, n)
}

// StopMarkWait bounds how long a stopping worker keeps trying to mark a push
// that went out as sent (while Redis answers, a mark takes a round trip).
const StopMarkWait = 10 * time.Second

// markSent records the push. A push that went out is never released: when Redis
// is down the mark waits for it, holding the job.
func (p *Pipeline) markSent(ctx context.Context, r *run, c *chunk, m dedupe.Mark) {
	err := p.untilOK(ctx, pause.CauseRedis, func() error { return p.store.MarkSent(ctx, r.holder, c.keys, m) })
	if err != nil && ctx.Err() != nil {
		// The worker is stopping: the push went out, so the mark still lands, within a bound.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopMarkWait)
		err = p.untilOK(sctx, pause.CauseRedis, func() error { return p.store.MarkSent(sctx, r.holder, c.keys, m) })
		cancel()
	}
	if err != nil {
		// Only when the worker is stopped for good: the lease stays until it
		// expires, and a redelivery of this job may push these targets again.
		r.log.Error("sent mark not stored", zap.Int("targets", len(c.keys)), zap.String("request_id", m.RequestID), zap.Error(err))
	}
}

// refresh claims the chunk's pairs again (after a problem of the worker's, or a
// long run), which renews the leases; a pair another job took meanwhile leaves
// the chunk as a duplicate, and a pair a later delivery of this job took or sent
// makes the run superseded: that delivery answers for the job, and gets what
// this one still held. It reports whether the chunk still has a call to make;
// when not, the chunk has ended: handed back (no claim before ctx ended), left
// to the later delivery, or left with nothing to send.
func (p *Pipeline) refresh(ctx context.Context, r *run, c *chunk) bool {
	claims, err := p.claimPairs(ctx, r.holder, c.keys)
	if err != nil {
		p.handBack(r, c)
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
		targets, keys = nil, nil
	}
	c.targets, c.keys = targets, keys
	if r.superseded.Load() { // found here, or by another chunk meanwhile
		c.handed = true // the later delivery holds these pairs now
		return false
	}
	return len(c.targets) > 0
}

// probe holds a chunk through a problem of the worker's own (mPaaS refuses the
// credentials, or cannot be reached): the gate shuts with its cause, which stops
// fetching, and after the probe delay the chunk's pairs are claimed again for
// the next attempt. It reports whether the chunk goes on.
func (p *Pipeline) probe(ctx context.Context, r *run, c *chunk, out push.CallResult, probes int) bool {
	cause := pause.CauseCredentials
	if out.Class != push.ConfigFault {
		cause = pause.CauseMPaaS
	}
	p.gate.Set(cause, out.Err)
	if !p.cfg.Clock.Sleep(ctx, p.cfg.Probe.NextRetry(probes)) {
		p.handBack(r, c)
		return false
	}
	return p.refresh(ctx, r, c)
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

func (p *Pipeline) handBack(r *run, c *chunk) {
	p.releaseClaims(r, c.keys)
	c.handed = true
}
