package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/app"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
)

// BenchmarkPipeline runs jobs of 100 targets through one worker in this process
// (embedded NATS, the machine's Redis, the emulator) for profiling:
//
//	go test -run '^$' -bench Pipeline -cpuprofile cpu.prof ./internal/app
func BenchmarkPipeline(b *testing.B) {
	t := &testing.T{}
	h := newHarness(t, setup{faults: mpaassim.Faults{}})
	h.t = t
	h.startWorker(func(o *app.Options) { o.RateLimit = 1000000; o.Processor.MaxInFlight = 32 })
	b.ResetTimer()
	var ids []string
	for i := range b.N {
		j := newJob(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), fmt.Sprintf("b%d-%d", b.N, i), 100)
		ids = append(ids, j.JobID)
		h.publishJob("push.jobs.bulk.bench", j)
	}
	h.resultsFor(ids, 5*time.Minute)
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "targets/s")
}
