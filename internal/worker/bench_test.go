package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/teststack"
)

// BenchmarkPipeline runs jobs of 100 targets through one worker in this process
// (embedded NATS, the machine's Redis, the emulator) for profiling:
//
//	go test -run '^$' -bench Pipeline -cpuprofile cpu.prof ./internal/worker
//
// The harness takes testing.TB, so its cleanups run when the benchmark ends.
func BenchmarkPipeline(b *testing.B) {
	h := teststack.New(b, teststack.Setup{})
	h.StartWorker(func(w *teststack.WorkerSetup) { w.Config.RateLimit = 1000000; w.Config.MaxInFlight = 32 })
	b.ResetTimer()
	var ids []string
	for i := range b.N {
		j := teststack.NewJob(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), fmt.Sprintf("b%d-%d", b.N, i), 100)
		ids = append(ids, j.JobID)
		h.PublishJob("push.jobs.bulk.bench", j)
	}
	h.ResultsFor(ids, 5*time.Minute)
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "targets/s")
}
