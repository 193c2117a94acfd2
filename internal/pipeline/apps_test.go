package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
)

// A credential whose limit gives no slot (mPaaS throttles its key) holds at
// most its share of the worker's call slots: another credential's job, on the
// same lane, still runs to its end meanwhile.
func TestAStuckCredentialLeavesSlotsToTheOthers(t *testing.T) {
	sim, client := emulator(t, mpaassim.Faults{})
	stuck := &heldLimiter{Limiter: ratelimit.NewMemory(100000, 0), let: make(chan struct{})}
	stuck.held.Store(true)
	apps := ratelimit.NewApps(nil)
	apps.Add(stuck, "app-stuck")
	apps.Add(ratelimit.NewMemory(100000, 0), "app-free")
	const slots = 32
	p := pipeline.New(pipeline.Config{MaxInFlight: slots, Attempts: 3, Call: callPolicy, Probe: callPolicy, HandBack: handBack, Clock: clock.NewFake(start)},
		dedupe.NewMemory(time.Hour, time.Minute), apps, client, pause.NewGate(nil, nil), nil, nil)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before Close: the stuck calls end with their context

	held := newJob("held", 300) // 30 calls, more than the worker's bulk slots
	held.AppID = "app-stuck"
	first := make(chan consumer.Outcome, 1)
	go func() { first <- handle(p, ctx, delivery(t, held, 1, false)) }()
	// Of the 24 bulk slots, the stuck credential holds all but the reserve of
	// the other one (never under its half).
	bulkSlots := slots - slots/4
	share := max((bulkSlots+1)/2, bulkSlots-pipeline.CredentialReserve)
	for deadline := time.Now().Add(10 * time.Second); int(stuck.waiting.Load()) < share; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls of the stuck credential wait, want %d", stuck.waiting.Load(), share)
		}
	}
	time.Sleep(50 * time.Millisecond) // and no more of them come
	if n := int(stuck.waiting.Load()); n != share {
		t.Fatalf("%d calls of the stuck credential hold slots, want %d of the %d bulk slots", n, share, bulkSlots)
	}
	free := newJob("free", 100) // 10 calls
	free.AppID = "app-free"
	done := make(chan consumer.Outcome, 1)
	go func() { done <- handle(p, context.Background(), delivery(t, free, 1, false)) }()
	select {
	case out := <-done:
		if out.Result == nil || out.Result.Sent != 100 {
			t.Fatalf("the other credential's job: %+v", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other credential's job waited behind the stuck credential's calls")
	}
	if n := sim.Stats().ByKey["ak"].Apps["app-stuck"]; n != 0 {
		t.Fatalf("%d calls of the stuck credential went out", n)
	}
	cancel() // the stuck job is handed back
	<-first
}
