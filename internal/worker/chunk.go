package worker

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/ctxsleep"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/job"
)

// send makes the chunk's call until it ends: sent, failed for good, or handed
// back to a later delivery. It runs in its own goroutine and holds one call slot.
func (p *Processor) send(ctx context.Context, j *job.Job, d Delivery, c *chunk, log *zap.Logger) {
	retry := p.retryBackoff()
	var probe *backoff.ExponentialBackOff
	attempts, transient := 0, 0
	for {
		if j.NotAfter != nil && !p.now().Before(*j.NotAfter) {
			p.releaseClaims(j, d, c.keys)
			c.result = job.ChunkResult{TargetMsgkey: c.targets, Status: job.ChunkFailed, Attempts: attempts, Error: "deadline passed"}
			return
		}
		waitStart := time.Now()
		if err := p.untilOK(ctx, CauseRedis, func() error { return p.limiter.Wait(ctx, d.Event) }); err != nil {
			p.handBack(j, d, c)
			return
		}
		p.obs.LimiterWait(d.Lane, time.Since(waitStart))
		out := p.pusher.Push(ctx, j, c.targets)
		attempts++
		p.obs.Call(d.Lane, out)
		if out.Throttled {
			p.limiter.Throttled()
		}
		log.Debug("mPaaS call", zap.Int("targets", len(c.targets)), zap.Int("attempt", attempts), zap.Stringer("class", out.Class),
			zap.String("code", out.ResultCode), zap.String("request_id", out.RequestID), zap.Duration("latency", out.Latency), zap.Error(out.Err))

		switch {
		case out.Class == push.Success:
			p.gate.Clear(CauseCredentials)
			p.gate.Clear(CauseMPaaS)
			p.markSent(ctx, j, d, c, dedupe.Mark{RequestID: out.RequestID, Attempts: attempts, Data: out.Data}, log)
			c.result = chunkResult(c.targets, out, attempts, job.ChunkSent)
			return

		case out.Class == push.JobFault:
			p.releaseClaims(j, d, c.keys)
			c.result = chunkResult(c.targets, out, attempts, job.ChunkFailed)
			return

		case out.Class == push.ConfigFault, unreachable(out) && transient+1 >= p.cfg.Attempts:
			// The worker's problem, not the job's: hold the chunk, stop fetching, probe.
			cause := CauseCredentials
			if out.Class != push.ConfigFault {
				cause = CauseMPaaS
			}
			p.gate.Set(cause, out.Err)
			if probe == nil {
				probe = p.probeBackoff()
			}
			if !ctxsleep.Sleep(ctx, probe.NextBackOff()) || !p.refresh(ctx, j, d, c) {
				p.handBack(j, d, c)
				return
			}
			if len(c.targets) == 0 {
				return
			}

		default: // transient
			transient++
			if transient >= p.cfg.Attempts {
				p.releaseClaims(j, d, c.keys)
				if d.Last {
					c.result = chunkResult(c.targets, out, attempts, job.ChunkFailed)
				} else {
					c.handed = true
				}
				log.Info("chunk still failing after retries", zap.Int("targets", len(c.targets)),
					zap.Int("attempts", attempts), zap.String("code", out.ResultCode), zap.Bool("last_delivery", d.Last))
				return
			}
			if !ctxsleep.Sleep(ctx, retry.NextBackOff()) {
				p.handBack(j, d, c)
				return
			}
		}
	}
}

// unreachable is a call that got no answer and did not go out: mPaaS cannot be reached.
func unreachable(out push.Outcome) bool {
	return out.Class == push.Transient && out.HTTPStatus == 0 && !out.MaybeSent
}

func chunkResult(t job.Targets, out push.Outcome, attempts int, status string) job.ChunkResult {
	r := job.ChunkResult{TargetMsgkey: t, Status: status, Attempts: attempts, RequestID: out.RequestID,
		ResultCode: out.ResultCode, ResultMessage: out.ResultMessage, PushSuccess: out.PushSuccess, Data: out.Data}
	if status == job.ChunkFailed && out.Err != nil {
		r.Error = out.Err.Error()
	}
	return r
}

func (p *Processor) handBack(j *job.Job, d Delivery, c *chunk) {
	p.releaseClaims(j, d, c.keys)
	c.handed = true
}

// markSent records the push. A push that went out is never released: when Redis
// is down the mark waits for it, holding the job.
func (p *Processor) markSent(ctx context.Context, j *job.Job, d Delivery, c *chunk, m dedupe.Mark, log *zap.Logger) {
	err := p.untilOK(ctx, CauseRedis, func() error { return p.store.MarkSent(ctx, d.holder(j), c.keys, m) })
	if err != nil {
		// Only when the worker is stopped for good: the lease stays until it
		// expires, and a redelivery of this job may push these targets again.
		log.Error("sent mark not stored", zap.Int("targets", len(c.keys)), zap.String("request_id", m.RequestID), zap.Error(err))
	}
}

// releaseClaims gives up this delivery's leases. It is best effort: a lease that
// stays expires on its own.
func (p *Processor) releaseClaims(j *job.Job, d Delivery, keys []dedupe.Key) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.store.Release(ctx, d.holder(j), keys); err != nil {
		p.log.Warn("releasing claims", zap.String("job", j.JobID), zap.Int("targets", len(keys)), zap.Error(err))
	}
}

// refresh claims the chunk's pairs again after a pause, which renews the leases;
// a pair another job took meanwhile leaves the chunk as a duplicate.
func (p *Processor) refresh(ctx context.Context, j *job.Job, d Delivery, c *chunk) bool {
	var claims []dedupe.Claim
	err := p.untilOK(ctx, CauseRedis, func() error {
		var err error
		claims, err = p.store.Claim(ctx, d.holder(j), c.keys)
		return err
	})
	if err != nil {
		return false
	}
	targets, keys := c.targets[:0:0], c.keys[:0:0]
	for i, cl := range claims {
		if cl.State == dedupe.Claimed {
			targets, keys = append(targets, c.targets[i]), append(keys, c.keys[i])
		} else {
			c.skipped = append(c.skipped, c.targets[i])
		}
	}
	c.targets, c.keys = targets, keys
	return true
}

// untilOK runs f until it succeeds. While the dedupe store or the limiter is
// unavailable, that is the worker's problem: the gate stays shut and f is probed
// with a growing delay. Any other error, or ctx ending, is returned.
func (p *Processor) untilOK(ctx context.Context, cause string, f func() error) error {
	var probe *backoff.ExponentialBackOff
	for {
		err := f()
		if err == nil {
			if probe != nil {
				p.gate.Clear(cause)
			}
			return nil
		}
		if ctx.Err() != nil || !(errors.Is(err, dedupe.ErrUnavailable) || errors.Is(err, ratelimit.ErrUnavailable)) {
			return err
		}
		p.gate.Set(cause, err)
		if probe == nil {
			probe = p.probeBackoff()
		}
		if !ctxsleep.Sleep(ctx, probe.NextBackOff()) {
			return ctx.Err()
		}
	}
}

func (p *Processor) retryBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.cfg.RetryMin), backoff.WithMaxInterval(p.cfg.RetryMax),
		backoff.WithMultiplier(2), backoff.WithRandomizationFactor(0.5), backoff.WithMaxElapsedTime(0))
}

func (p *Processor) probeBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond), backoff.WithMaxInterval(p.cfg.ProbeMax),
		backoff.WithMultiplier(2), backoff.WithRandomizationFactor(0.2), backoff.WithMaxElapsedTime(0))
}
