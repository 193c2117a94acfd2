package ratelimit_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/testenv"
)

// grants runs waiters goroutines on each limiter for d and returns the grant times.
func grants(t *testing.T, limiters []ratelimit.Limiter, waiters int, d time.Duration) []time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var out []time.Time
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range waiters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for l.Wait(ctx) == nil {
					mu.Lock()
					out = append(out, time.Now())
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func maxWindow(ts []time.Time) int {
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= time.Second {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func startRedisLimiter(t *testing.T, addr, key string, perSecond int, setup ...func(*ratelimit.Redis)) *ratelimit.Redis {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	l := ratelimit.NewRedis(rdb, key, perSecond, 0)
	for _, s := range setup {
		s(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// Three workers (three clients, three dispensers) share one rate.
func TestSharedRateHolds(t *testing.T) {
	rdb := testenv.Redis(t)
	key := testenv.Prefix(t, rdb) + "rate"
	const perSecond = 100
	var ls []ratelimit.Limiter
	for range 3 {
		ls = append(ls, startRedisLimiter(t, testenv.RedisAddr(), key, perSecond))
	}
	ts := grants(t, ls, 20, 4*time.Second)
	peak := maxWindow(ts)
	mean := float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
	t.Logf("%d grants, busiest second %d, mean %.1f/s (limit %d/s)", len(ts), peak, mean, perSecond)
	if float64(peak) > 1.1*perSecond {
		t.Fatalf("a one-second window saw %d slots, over 1.1× %d", peak, perSecond)
	}
	if mean < 0.9*perSecond {
		t.Fatalf("mean %.1f/s is under 0.9× %d", mean, perSecond)
	}
}

func evalCalls(t *testing.T, rdb *redis.Client) int {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
			f := strings.SplitN(strings.TrimPrefix(line[strings.Index(line, ":")+1:], "calls="), ",", 2)
			n, _ := strconv.Atoi(f[0])
			total += n
		}
	}
	return total
}

// 200 waiters on a 20/s limit for 2 s: Redis sees about one request per slot, not
// one per waiter per wake-up.
func TestWaitersDoNotSpin(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	l := startRedisLimiter(t, srv.Addr(), "rate", 20)
	before := evalCalls(t, rdb)
	ts := grants(t, []ratelimit.Limiter{l}, 200, 2*time.Second)
	calls := evalCalls(t, rdb) - before
	t.Logf("%d grants, %d Redis script calls", len(ts), calls)
	if calls > 3*len(ts)+10 {
		t.Fatalf("%d Redis calls for %d grants: the waiters spin", calls, len(ts))
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	srv := testenv.StartRedis(t)
	l := startRedisLimiter(t, srv.Addr(), "rate", 10)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	rdb := testenv.Redis(t)
	l := startRedisLimiter(t, testenv.RedisAddr(), testenv.Prefix(t, rdb)+"rate", 1)
	for range ratelimit.DefaultBurst(1) { // spend the burst
		_ = l.Wait(context.Background())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Wait must end with its context: %v after %v", err, time.Since(start))
	}
}

func TestMemoryLimiter(t *testing.T) {
	ts := grants(t, []ratelimit.Limiter{ratelimit.NewMemory(50, 0)}, 10, 2*time.Second)
	if peak := maxWindow(ts); peak > 55 {
		t.Fatalf("memory limiter: %d in one second at 50/s", peak)
	}
}

// Throttling cuts the shared rate by Decrease at most once a second; after
// QuietBefore it climbs by Increase × the ceiling a second; every worker on the
// same Redis sees the same rate.
func TestAdaptiveRate(t *testing.T) {
	srv := testenv.StartRedis(t)
	a := startRedisLimiter(t, srv.Addr(), "rate", 100, func(l *ratelimit.Redis) { l.Adapt(5, nil) })
	b := startRedisLimiter(t, srv.Addr(), "rate", 100, func(l *ratelimit.Redis) { l.Adapt(5, nil) })
	waitRate := func(l *ratelimit.Redis, ok func(float64) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !ok(l.Rate()) {
			if time.Now().After(deadline) {
				t.Fatalf("rate %.1f: want %s", l.Rate(), what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := time.Now()
	a.Throttled()
	waitRate(a, func(r float64) bool { return r == 90 }, "90 after one cut")
	for range 5 { // more throttled answers within the second: one cut only
		a.Throttled()
		time.Sleep(50 * time.Millisecond)
	}
	if r := a.Rate(); r != 90 {
		t.Fatalf("a burst of throttled answers must cut once a second: %.1f", r)
	}
	waitRate(b, func(r float64) bool { return r == 90 }, "the other worker to follow to 90")
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	a.Throttled()
	waitRate(a, func(r float64) bool { return r == 81 }, "81 after a second cut")
	waitRate(b, func(r float64) bool { return r == 81 }, "the other worker to follow to 81")
	waitRate(b, func(r float64) bool { return r > 81 && r <= 100 }, "a climb back after 2 s without throttling")
	if r := b.Rate(); r > 85 {
		t.Fatalf("the climb must be gradual (+2 a second): %.1f", r)
	}
}
