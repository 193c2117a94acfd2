package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
)

// Throttled answers slow the whole worker: the pipeline tells the shared limit
// of each one, and the adaptive rate comes down toward what mPaaS takes.
func TestThrottledAnswersSlowTheWorker(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{QuotaPerSecond: 20}})
	w := h.StartWorker(func(w *teststack.WorkerSetup) {
		w.Config.RateLimit, w.Config.RateAdaptive = 200, true
	})
	for i := range 60 {
		h.PublishJob(h.Topo.BulkSubject("throttled"), teststack.NewJob(fmt.Sprintf("throttled.%d", i), fmt.Sprintf("thr%d", i), 30))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		live := w.Stats().Live
		if live.Throttled > 0 && live.Rate <= 100 {
			t.Logf("after %d throttled answers the shared rate is %.0f calls/s (was 200, mPaaS takes 20)", live.Throttled, live.Rate)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("throttled answers must lower the shared rate: %d throttled, rate %.0f; emulator %+v", live.Throttled, live.Rate, h.Sim.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
