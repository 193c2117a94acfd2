package redisbatch_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/redisbatch"
	"github.com/mpaas-push/pushworker/internal/testenv"
)

// Callers at the same time each get their own answers, and an error of one
// caller's command is that caller's alone.
func TestConcurrentCallersGetTheirOwnAnswers(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	b := redisbatch.New(rdb)
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const callers = 64
	var wg sync.WaitGroup
	errs := make([]error, callers)
	got := make([]string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := prefix + "k" + strconv.Itoa(i)
			var get *redis.StringCmd
			errs[i] = b.Do(ctx, func(p redis.Pipeliner) {
				p.Set(ctx, key, "v"+strconv.Itoa(i), 0)
				if i%8 == 0 {
					p.Incr(ctx, prefix+"str") // WRONGTYPE-like: not an integer
				}
				get = p.Get(ctx, key)
				p.Get(ctx, prefix+"missing") // redis.Nil is not an error
			})
			got[i] = get.Val()
		}()
	}
	wg.Wait()
	for i := range callers {
		if got[i] != "v"+strconv.Itoa(i) {
			t.Errorf("caller %d read %q", i, got[i])
		}
		if (i%8 == 0) != (errs[i] != nil) {
			t.Errorf("caller %d: error %v", i, errs[i])
		}
	}
}

// While a round trip is under way, the callers that arrive share the next one:
// far fewer pipelines than callers. Urgent callers share theirs among themselves.
func TestCallersShareRoundTrips(t *testing.T) {
	for _, urgent := range []bool{false, true} {
		t.Run(map[bool]string{false: "common", true: "urgent"}[urgent], func(t *testing.T) { shareRoundTrips(t, urgent) })
	}
}

func shareRoundTrips(t *testing.T, urgent bool) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	var (
		pipelines int
		mu        sync.Mutex
	)
	rdb.AddHook(countHook{func() { mu.Lock(); pipelines++; mu.Unlock() }})
	b := redisbatch.New(rdb)
	ctx := context.Background()
	if urgent {
		ctx = redisbatch.Urgent(ctx)
	}
	const callers, each = 32, 50
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				if err := b.Do(ctx, func(p redis.Pipeliner) { p.Set(ctx, prefix+strconv.Itoa(i*each+n), 1, 0) }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	names := make([]string, callers*each)
	for i := range names {
		names[i] = prefix + strconv.Itoa(i)
	}
	if n, err := rdb.Exists(ctx, names...).Result(); err != nil || n != int64(len(names)) {
		t.Fatalf("%d of %d keys set (%v)", n, len(names), err)
	}
	if pipelines*2 > callers*each {
		t.Fatalf("%d round trips for %d callers' commands: want them shared", pipelines, callers*each)
	}
	t.Logf("%d commands in %d round trips", callers*each, pipelines)
}

// An urgent caller does not queue behind a round trip under way: here the one
// under way waits (BLPOP) for the push the urgent caller sends, which a queued
// caller would only send once the wait timed out.
func TestUrgentCallersDoNotWaitForTheRoundTripUnderWay(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	b := redisbatch.New(rdb)
	ctx := context.Background()
	started := make(chan struct{})
	var popped *redis.StringSliceCmd
	done := make(chan error, 1)
	go func() {
		done <- b.Do(ctx, func(p redis.Pipeliner) {
			close(started) // the round trip is under way from here
			popped = p.BLPop(ctx, 5*time.Second, prefix+"wake")
		})
	}()
	<-started
	if err := b.Do(redisbatch.Urgent(ctx), func(p redis.Pipeliner) { p.RPush(ctx, prefix+"wake", "urgent") }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the round trip under way: %v", err)
	}
	if v := popped.Val(); len(v) != 2 || v[1] != "urgent" {
		t.Fatalf("BLPOP got %q, want the urgent caller's push (a queued caller would push only after it timed out)", v)
	}
}

// A Redis that cannot be reached fails every caller.
func TestUnreachable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()
	err := redisbatch.New(rdb).Do(ctx, func(p redis.Pipeliner) { p.Get(ctx, "x") })
	if err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("want a connection error, got %v", err)
	}
}

type countHook struct{ f func() }

func (countHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.f(); return next(ctx, cmds) }
}
