// Package ratelimit holds the mPaaS call rate shared by every worker: each call
// takes a slot first. The Redis limiter is GCRA (github.com/go-redis/redis_rate) on
// Redis's own clock, so all workers on one Redis share one rate whatever their number.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mpaas-push/pushworker/internal/ctxsleep"
)

// ErrUnavailable wraps errors of the limiter's store (Redis down): not the job's fault.
var ErrUnavailable = errors.New("rate limiter unavailable")

// Limiter hands out call slots.
type Limiter interface {
	// Wait blocks until a slot is free, or ctx ends.
	Wait(ctx context.Context) error
}

// DefaultBurst is the burst for a rate: small, since a one-second window can see
// rate + burst − 1 calls (2.5 % over the rate at most, and one call at low rates),
// but at least 2, so that the bucket can bank a dispenser's late wake-up instead of
// losing it.
func DefaultBurst(perSecond int) int { return max(2, perSecond/40+1) }

// Redis is the shared limiter. One goroutine per process (Run) asks Redis for slots
// on behalf of every waiter of the process, as many as wait but never more than
// the burst, and sleeps until they are free when they are not: waiters never spin
// and Redis sees one request per batch, not one per waiter.
type Redis struct {
	lim   *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
	reqs  chan *waiter
}

type waiter struct {
	ctx  context.Context
	done chan error // buffered: the dispenser never blocks on a waiter that left
}

// NewRedis makes a limiter of perSecond calls with the given burst (0: DefaultBurst)
// under key. Start Run before calling Wait.
func NewRedis(rdb redis.UniversalClient, key string, perSecond, burst int) *Redis {
	if burst <= 0 {
		burst = DefaultBurst(perSecond)
	}
	return &Redis{
		lim:   redis_rate.NewLimiter(rdb),
		key:   key,
		limit: redis_rate.Limit{Rate: perSecond, Burst: burst, Period: time.Second},
		reqs:  make(chan *waiter, 1024),
	}
}

// Limit describes the limit, for logs.
func (r *Redis) Limit() string { return r.limit.String() }

// Wait takes one slot.
func (r *Redis) Wait(ctx context.Context) error {
	w := &waiter{ctx: ctx, done: make(chan error, 1)}
	select {
	case r.reqs <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run dispenses slots until ctx ends. It is the only goroutine that talks to Redis.
func (r *Redis) Run(ctx context.Context) {
	var queue []*waiter
	for {
		if len(queue) == 0 {
			select {
			case w := <-r.reqs:
				queue = append(queue, w)
			case <-ctx.Done():
				return
			}
		}
		queue = r.drain(queue)
		if len(queue) == 0 {
			continue
		}
		// AllowN, all or nothing: redis_rate's AllowAtMost consumes a fraction of a
		// slot it does not grant when fewer than n are free, which loses rate. One
		// slot of the burst stays free to bank the time a wake-up comes late.
		n := min(len(queue), max(1, r.limit.Burst-1))
		res, err := r.lim.AllowN(ctx, r.key, r.limit, n)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			for _, w := range queue {
				w.done <- fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			queue = queue[:0]
			continue
		}
		if res.Allowed == 0 {
			if !ctxsleep.Sleep(ctx, res.RetryAfter+r.jitter()) {
				return
			}
			continue
		}
		for _, w := range queue[:res.Allowed] {
			w.done <- nil
		}
		queue = queue[res.Allowed:]
		// Those slots are spent: for whoever still waits, the next ones are not
		// free before they are due.
		if len(queue) > 0 || len(r.reqs) > 0 {
			if !ctxsleep.Sleep(ctx, time.Duration(res.Allowed)*r.interval()) {
				return
			}
		}
	}
}

// interval is the time between two slots.
func (r *Redis) interval() time.Duration {
	return r.limit.Period / time.Duration(max(r.limit.Rate, 1))
}

// drain adds the waiters that arrived and drops those that left, so that no slot
// is asked for on behalf of a waiter that is gone.
func (r *Redis) drain(queue []*waiter) []*waiter {
	for {
		select {
		case w := <-r.reqs:
			queue = append(queue, w)
			continue
		default:
		}
		break
	}
	live := queue[:0]
	for _, w := range queue {
		if w.ctx.Err() == nil {
			live = append(live, w)
		}
	}
	return live
}

// jitter spreads the wake-ups of many processes over a tenth of a slot.
func (r *Redis) jitter() time.Duration {
	return time.Duration(rand.Int64N(int64(r.interval()/10) + 1))
}

// Memory is a limiter for one process (dev mode).
type Memory struct{ lim *rate.Limiter }

// NewMemory makes an in-process limiter of perSecond calls.
func NewMemory(perSecond, burst int) *Memory {
	if burst <= 0 {
		burst = DefaultBurst(perSecond)
	}
	return &Memory{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Wait takes one slot.
func (m *Memory) Wait(ctx context.Context) error { return m.lim.Wait(ctx) }
