// Package ratelimit holds the mPaaS call rate shared by every worker: each call
// takes a slot first. The Redis limiter is GCRA (github.com/go-redis/redis_rate) on
// Redis's own clock, so all workers on one Redis share one rate whatever their number.
//
// It imports, of this project, only clock and pause.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/pause"
)

// ErrUnavailable wraps errors of the limiter's store (Redis down): not the job's
// fault. It is pause.ErrUnavailable, the one sentinel for a store the worker
// cannot reach.
var ErrUnavailable = pause.ErrUnavailable

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
	lim   GCRA
	rdb   redis.UniversalClient
	key   string
	limit Limit // Rate is the ceiling
	burst int   // 0: DefaultBurst of the current rate
	reqs  chan *waiter

	share        float64 // of the rate kept for events while they are active
	eventsSeen   time.Time
	eventsActive bool
	eventsCheck  time.Time

	adaptive  bool
	floor     float64
	current   atomic.Uint64 // float64 bits: the shared rate now
	throttled chan struct{}
	onRate    func(float64)
}

type waiter struct {
	ctx   context.Context
	event bool
	done  chan error // buffered: the dispenser never blocks on a waiter that left
}

// NewRedis makes a limiter of perSecond calls with the given burst (0: DefaultBurst)
// under key. Start Run before calling Wait.
func NewRedis(rdb redis.UniversalClient, key string, perSecond, burst int) *Redis {
	r := &Redis{
		lim:       NewGCRA(rdb),
		rdb:       rdb,
		key:       key,
		burst:     burst,
		limit:     Limit{Rate: perSecond, Burst: max(burst, DefaultBurst(perSecond)), Period: time.Second},
		reqs:      make(chan *waiter, 1024),
		throttled: make(chan struct{}, 1),
	}
	r.current.Store(math.Float64bits(float64(perSecond)))
	return r
}

// Adapt makes the rate follow mPaaS's throttling (see Decrease and Increase), never
// below floor calls per second; onRate (may be nil) hears every change. Call it
// before Run.
func (r *Redis) Adapt(floor int, onRate func(float64)) {
	r.adaptive, r.floor, r.onRate = true, float64(max(floor, 1)), onRate
}

// Throttled tells the limiter that mPaaS throttled a call. It never blocks.
func (r *Redis) Throttled() {
	select {
	case r.throttled <- struct{}{}:
	default:
	}
}

// Rate is the shared rate now, in calls per second.
func (r *Redis) Rate() float64 { return math.Float64frombits(r.current.Load()) }

// now is the limit in force: the current rate and its burst.
func (r *Redis) now() Limit {
	rate := max(1, int(r.Rate()))
	burst := r.burst
	if burst <= 0 {
		burst = DefaultBurst(rate)
	}
	return Limit{Rate: rate, Burst: burst, Period: time.Second}
}

// adaptLoop applies cuts and, once a second, raises to the shared rate.
func (r *Redis) adaptLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(RaiseEvery) * time.Millisecond)
	defer t.Stop()
	for {
		mode := "tick"
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.throttled:
			mode = "cut"
		}
		rate, err := adapt(ctx, r.rdb, r.key+":adaptive", mode, float64(r.limit.Rate), r.floor)
		if err != nil {
			continue // Redis is down: the dispenser reports it to the waiters
		}
		if old := r.Rate(); rate != old {
			r.current.Store(math.Float64bits(rate))
			if r.onRate != nil {
				r.onRate(rate)
			}
		}
	}
}

// ReserveForEvents keeps share (0–1) of the rate for event calls: while any
// worker on the same Redis has event calls, bulk calls get at most the rest; when
// events are idle, bulk may take the whole rate. Call it before Run.
func (r *Redis) ReserveForEvents(share float64) { r.share = min(max(share, 0), 0.95) }

// Wait takes one slot.
func (r *Redis) Wait(ctx context.Context, event bool) error {
	w := &waiter{ctx: ctx, event: event, done: make(chan error, 1)}
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

// creditLife is how long slots taken ahead for this process's next callers
// stay good. A call made with one goes out at most this much after Redis
// counted it, so a one-second window at mPaaS sees at most rate × creditLife
// more calls than the limiter granted in it (1 % at 10 ms).
const creditLife = 10 * time.Millisecond

// credits are slots taken ahead, while the rate is far from used up: instead of
// a Redis round trip per call, the calls of the next creditLife share one. Only
// as many are taken as this process granted in the last creditLife, so that a
// process never holds back much of a rate others need.
type credits struct {
	n         int
	until     time.Time
	bulkToo   bool // taken in a bulk ask (which also held the bulk share): good for bulk calls too
	recent    int  // slots granted since windowAt
	lastRound int  // slots granted in the last whole window
	windowAt  time.Time
}

func (c *credits) granted(now time.Time, n int) {
	if now.Sub(c.windowAt) >= creditLife {
		c.lastRound, c.recent, c.windowAt = c.recent, 0, now
	}
	c.recent += n
}

// take hands up to want credits to callers of the kind.
func (c *credits) take(now time.Time, want int, events bool) int {
	if c.n == 0 || !now.Before(c.until) || !events && !c.bulkToo {
		if !now.Before(c.until) {
			c.n = 0
		}
		return 0
	}
	n := min(want, c.n)
	c.n -= n
	return n
}

// Run dispenses slots until ctx ends. With Adapt, it also follows the shared rate.
func (r *Redis) Run(ctx context.Context) {
	if r.adaptive {
		done := make(chan struct{})
		go func() { r.adaptLoop(ctx); close(done) }()
		defer func() { <-done }()
	}
	var (
		events, bulk []*waiter
		cr           credits
		tight        bool // the last ask found the rate used up, or left callers waiting
	)
	grant := func(queue []*waiter, n int, isEvents bool) {
		for _, w := range queue[:n] {
			w.done <- nil
		}
		if isEvents {
			events = events[n:]
		} else {
			bulk = bulk[n:]
		}
	}
	for {
		if len(events) == 0 && len(bulk) == 0 {
			select {
			case w := <-r.reqs:
				events, bulk = sortIn(events, bulk, w)
			case <-ctx.Done():
				return
			}
		}
		events, bulk = r.drain(events, bulk)
		// Events first: bulk waits while an event call waits in this process.
		queue, isEvents := events, true
		if len(queue) == 0 {
			queue, isEvents = bulk, false
		}
		if len(queue) == 0 {
			continue
		}
		now := time.Now()
		if n := cr.take(now, len(queue), isEvents); n > 0 {
			grant(queue, n, isEvents)
			cr.granted(now, n)
			continue
		}
		// AllowN, all or nothing: redis_rate's AllowAtMost consumes a fraction of a
		// slot it does not grant when fewer than n are free, which loses rate. One
		// slot of the burst stays free to bank the time a wake-up comes late.
		limit := r.now()
		n := min(len(queue), max(1, limit.Burst-1))
		ahead := 0
		if !tight {
			ahead = min(cr.lastRound, max(0, limit.Burst-1-n), int(float64(limit.Rate)*creditLife.Seconds()))
		}
		res, err := r.allow(ctx, limit, n+ahead, isEvents)
		if err == nil && res.Allowed == 0 && ahead > 0 {
			ahead = 0 // the rate is nearly used up: ask for the callers alone
			res, err = r.allow(ctx, limit, n, isEvents)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			for _, w := range append(events, bulk...) {
				w.done <- fmt.Errorf("rate limiter: %w: %w", ErrUnavailable, err)
			}
			events, bulk = events[:0], bulk[:0]
			continue
		}
		if res.Allowed == 0 {
			tight = true
			if !clock.Sleep(ctx, res.RetryAfter+r.jitter()) {
				return
			}
			continue
		}
		now = time.Now()
		given := min(res.Allowed, len(queue))
		grant(queue, given, isEvents)
		cr.granted(now, given)
		if extra := res.Allowed - given; extra > 0 {
			cr = credits{n: extra, until: now.Add(creditLife), bulkToo: !isEvents,
				recent: cr.recent, lastRound: cr.lastRound, windowAt: cr.windowAt}
		}
		// Those slots are spent: for whoever still waits, the next ones are not
		// free before they are due.
		tight = len(events) > 0 || len(bulk) > 0 || len(r.reqs) > 0
		if tight && cr.n == 0 {
			if !clock.Sleep(ctx, time.Duration(res.Allowed)*r.interval()) {
				return
			}
		}
	}
}

// allow takes n slots of the shared rate. While events are active on any worker,
// bulk slots must also fit the bulk share of the rate.
func (r *Redis) allow(ctx context.Context, limit Limit, n int, events bool) (Allowed, error) {
	if r.share > 0 {
		if events {
			r.markEvents(ctx)
		} else if r.eventsElsewhere(ctx) {
			bulkLimit := limit
			bulkLimit.Rate = max(1, int(float64(limit.Rate)*(1-r.share)))
			bulkLimit.Burst = max(1, min(limit.Burst, bulkLimit.Rate/40+1))
			n = min(n, max(1, bulkLimit.Burst-1))
			res, err := r.lim.AllowN(ctx, r.key+":bulk", bulkLimit, n)
			if err != nil || res.Allowed == 0 {
				return res, err
			}
		}
	}
	return r.lim.AllowN(ctx, r.key, limit, n)
}

// markEvents tells every worker, for a second, that event calls are waiting.
func (r *Redis) markEvents(ctx context.Context) {
	if time.Since(r.eventsSeen) < 250*time.Millisecond {
		return
	}
	r.eventsSeen = time.Now()
	_ = r.rdb.Set(ctx, r.key+":events", "1", time.Second).Err()
}

// eventsElsewhere reports whether any worker had event calls in the last second
// (asked at most every 100 ms).
func (r *Redis) eventsElsewhere(ctx context.Context) bool {
	if time.Since(r.eventsCheck) < 100*time.Millisecond {
		return r.eventsActive
	}
	r.eventsCheck = time.Now()
	n, err := r.rdb.Exists(ctx, r.key+":events").Result()
	r.eventsActive = err == nil && n > 0
	return r.eventsActive
}

func sortIn(events, bulk []*waiter, w *waiter) ([]*waiter, []*waiter) {
	if w.event {
		return append(events, w), bulk
	}
	return events, append(bulk, w)
}

// drain adds the waiters that arrived and drops those that left, so that no slot
// is asked for on behalf of a waiter that is gone.
func (r *Redis) drain(events, bulk []*waiter) ([]*waiter, []*waiter) {
	for {
		select {
		case w := <-r.reqs:
			events, bulk = sortIn(events, bulk, w)
			continue
		default:
		}
		break
	}
	return live(events), live(bulk)
}

func live(ws []*waiter) []*waiter {
	out := ws[:0]
	for _, w := range ws {
		if w.ctx.Err() == nil {
			out = append(out, w)
		}
	}
	return out
}

// interval is the time between two slots at the current rate.
func (r *Redis) interval() time.Duration {
	return time.Duration(float64(time.Second) / max(r.Rate(), 1))
}

// jitter spreads the wake-ups of many processes over a tenth of a slot.
func (r *Redis) jitter() time.Duration {
	return time.Duration(rand.Int64N(int64(r.interval()/10) + 1))
}

// Memory is a limiter for one process (dev mode). It adapts to throttling by the
// same rule as the shared one.
type Memory struct {
	lim     *rate.Limiter
	ceiling float64
	mu      sync.Mutex
	cut     time.Time
	raise   time.Time
}

// NewMemory makes an in-process limiter of perSecond calls.
func NewMemory(perSecond, burst int) *Memory {
	if burst <= 0 {
		burst = DefaultBurst(perSecond)
	}
	return &Memory{lim: rate.NewLimiter(rate.Limit(perSecond), burst), ceiling: float64(perSecond)}
}

// Wait takes one slot; in one process events and bulk simply share the rate.
func (m *Memory) Wait(ctx context.Context, _ bool) error {
	m.mu.Lock()
	now := time.Now()
	if cur := float64(m.lim.Limit()); cur < m.ceiling && now.Sub(m.cut) >= QuietBefore*time.Millisecond && now.Sub(m.raise) >= RaiseEvery*time.Millisecond {
		m.lim.SetLimit(rate.Limit(min(m.ceiling, cur+m.ceiling*Increase)))
		m.raise = now
	}
	m.mu.Unlock()
	return m.lim.Wait(ctx)
}

// Throttled cuts the rate, at most once per CutEvery.
func (m *Memory) Throttled() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := time.Now(); now.Sub(m.cut) >= CutEvery*time.Millisecond {
		m.lim.SetLimit(rate.Limit(max(1, float64(m.lim.Limit())*Decrease)))
		m.cut = now
	}
}
