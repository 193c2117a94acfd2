package push_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// BenchmarkPushThroughEmulator measures signed PushTemplate calls of 10 targets
// from the client to the emulator over loopback HTTP, 32 at a time.
//
//	go test -run '^$' -bench PushThroughEmulator ./internal/push
func BenchmarkPushThroughEmulator(b *testing.B) {
	_, srv := startSim(b, mpaassim.Config{AcceptAnyTemplate: true})
	c, err := push.New(push.Config{Endpoint: srv.URL, AccessKeyID: testKeyID, AccessKeySecret: testKeySecret})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(16) // × GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			targets := make(job.Targets, 10)
			for k := range targets {
				targets[k] = job.Target{Target: fmt.Sprintf("u%d-%d", i, k), MsgKey: "m"}
			}
			j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n", TargetMsgkey: targets}
			if out := c.Push(context.Background(), j, targets); out.Class != push.Success {
				b.Fatalf("%+v", out)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
