package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/testenv"
)

// Two credentials, each its own shared limit: app1 and app2 share A's rate,
// app3 has B's; a throttled answer for app1 cuts A's rate alone; the cap over
// both holds their sum down; an app of no credential gets no slot.
func TestEachCredentialHasItsOwnLimit(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	adapt := func(l *ratelimit.Redis) { l.Adapt(1, nil) }
	a := startRedisLimiter(t, testenv.RedisAddr(), prefix+"ak:A", 40, adapt)
	b := startRedisLimiter(t, testenv.RedisAddr(), prefix+"ak:B", 80, adapt)
	apps := ratelimit.NewApps(nil)
	apps.Add(a, "app1", "app2")
	apps.Add(b, "app3")

	// A's two apps share 40/s; B's app has 80/s of its own.
	shareA := grants(t, []pipeline.Limiter{pipeline.LimiterFor(apps, "app1"), pipeline.LimiterFor(apps, "app2")}, 5, 2*time.Second)
	ownB := grants(t, []pipeline.Limiter{pipeline.LimiterFor(apps, "app3")}, 5, 2*time.Second)
	t.Logf("A (app1+app2): busiest second %d (limit 40); B (app3): busiest second %d (limit 80)", maxWindow(shareA), maxWindow(ownB))
	if p := maxWindow(shareA); p > 44 || p < 30 {
		t.Errorf("app1 and app2 together: busiest second %d, want A's 40 shared", p)
	}
	if p := maxWindow(ownB); p > 88 || p < 64 {
		t.Errorf("app3: busiest second %d, want B's 80", p)
	}

	pipeline.LimiterFor(apps, "app1").Throttled()
	deadline := time.Now().Add(3 * time.Second)
	for a.Rate() != 36 {
		if time.Now().After(deadline) {
			t.Fatalf("A's rate %.1f after a throttled answer for app1, want 36", a.Rate())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // B's dispenser has read its adaptive rate since
	if r := b.Rate(); r != 80 {
		t.Fatalf("B's rate %.1f: A's throttling must not slow B", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := pipeline.LimiterFor(apps, "stranger").Wait(ctx, false); !errors.Is(err, ratelimit.ErrNoLimit) {
		t.Fatalf("an app of no credential: %v, want ErrNoLimit", err)
	}
}

// PUSH_RATE_LIMIT with a credentials file: the cap holds both credentials
// together below their sum.
func TestTheCapHoldsAllCredentials(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	total := startRedisLimiter(t, testenv.RedisAddr(), prefix+"rate", 60)
	apps := ratelimit.NewApps(total)
	apps.Add(startRedisLimiter(t, testenv.RedisAddr(), prefix+"ak:A", 50), "app1")
	apps.Add(startRedisLimiter(t, testenv.RedisAddr(), prefix+"ak:B", 50), "app2")
	ts := grants(t, []pipeline.Limiter{pipeline.LimiterFor(apps, "app1"), pipeline.LimiterFor(apps, "app2")}, 5, 3*time.Second)
	t.Logf("two credentials of 50/s under a cap of 60/s: busiest second %d", maxWindow(ts))
	if p := maxWindow(ts); p > 66 || p < 45 {
		t.Fatalf("busiest second %d, want the cap's 60", p)
	}
}

// The worker's code asks the pipeline for an app's limiter: Apps must be one
// it knows holds a limit per credential.
var _ pipeline.AppLimiter = (*ratelimit.Apps)(nil)
