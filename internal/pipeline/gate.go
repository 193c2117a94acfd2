package pipeline

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/health"
	"github.com/mpaas-push/pushworker/internal/retry"
)

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
