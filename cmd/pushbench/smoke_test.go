//go:build smoke

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/testenv"
)

// TestSmoke runs the bench small and checks that the report is produced and
// sane; it asserts no timing. CI runs it: go test -tags smoke ./cmd/pushbench
func TestSmoke(t *testing.T) {
	testenv.Redis(t)
	if _, err := exec.LookPath("nats-server"); err != nil {
		testenv.Unavailable(t, "nats-server (the bench runs its own)", err)
	}
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput(); err != nil {
		t.Fatalf("building the worker: %v\n%s", err, out)
	}
	r, out := runBench(t, "--worker-bin", bin, "--workers", "2", "--targets", "2000", "--job-size", "100", "--rate", "400")
	switch {
	case r.Sent != 2000 || r.Failed != 0 || r.Duplicates != 0:
		t.Fatalf("every target must be sent once: %+v", r)
	case r.Emulator.Calls != 200 || r.Emulator.DuplicatePairs != 0:
		t.Fatalf("the emulator must see 200 calls and no pair twice: %+v", r.Emulator)
	case r.TargetsPerSec <= 0 || r.Bare.BeforeCallsPerSec <= 0 || r.Bare.AfterCallsPerSec <= 0 || r.Efficiency <= 0:
		t.Fatalf("throughput figures missing: %+v", r)
	case r.LatencyP50ms <= 0 || r.LatencyP99ms < r.LatencyP50ms:
		t.Fatalf("latency figures: p50 %v p99 %v", r.LatencyP50ms, r.LatencyP99ms)
	case r.WorkerCPUSeconds <= 0 || r.WorkerPeakRSSMB <= 0:
		t.Fatalf("worker resources missing: %+v", r)
	case r.Limiter.MaxCallsInOneSec <= 0 || r.Limiter.MaxOneSecondWindow > 1.1:
		t.Fatalf("limiter figures: %+v (the rate of 400 calls/s must hold)", r.Limiter)
	case r.Cost.Calls != 200 || r.Cost.Jobs != 20 || r.Cost.RememberedPairs != 2000:
		t.Fatalf("cost units: %+v", r.Cost)
	case r.Cost.WorkerCPUusPerCall <= 0 || r.Cost.BareClientCPUusPerCall <= 0 || r.Cost.WorkerOverBare <= 0:
		t.Fatalf("CPU per call of the worker and the bare client: %+v", r.Cost)
	case r.Cost.RedisCommandsPerCall < 20 || r.Cost.RedisBytesPerPair <= 0:
		// At least a claim and a mark per target; what the 2,000 pairs hold.
		t.Fatalf("Redis figures: %+v", r.Cost)
	}
	t.Logf("report: %s", out)

	// Personal jobs with PushMultiple: 2,000 targets are 20 calls of 100.
	r, out = runBench(t, "--worker-bin", bin, "--workers", "1", "--targets", "2000", "--job-size", "1000", "--api", "multiple", "--personal")
	m := r.Emulator.ByAPI["PushMultiple"]
	switch {
	case r.Setup.API != "PushMultiple" || !r.Setup.Personal:
		t.Fatalf("setup: %+v", r.Setup)
	case r.Sent != 2000 || r.Failed != 0 || r.Emulator.Calls != 20 || m.Calls != 20 || m.Deliveries != 2000 || r.Emulator.DuplicatePairs != 0:
		t.Fatalf("want 2000 targets in 20 PushMultiple calls, each once: %+v", r)
	case r.Bare.Calls != 20 || r.WorkerCPUmsPer1000 <= 0:
		t.Fatalf("bare baseline and CPU per 1000 targets: %+v", r)
	}
	t.Logf("report: %s", out)

	// Event latency on an idle worker: 30 events, each with a bare call timed
	// beside it, traced, so that the report cuts each event's way into steps.
	r, out = runBench(t, "--worker-bin", bin, "--workers", "1", "--targets", "0", "--events", "30", "--events-per-sec", "100",
		"--events-bare", "--traces")
	e := r.Events
	names := map[string]bool{}
	for _, s := range e.Steps {
		names[s.Step] = true
	}
	switch {
	case e.Jobs != 30 || e.Bare.Calls != 30 || r.Emulator.Calls != 60 || r.Cost.Calls != 30:
		t.Fatalf("want 30 events and 30 bare calls, the emulator seeing both and the cost only the events': %+v %+v", e, r.Cost)
	case e.P50ms <= 0 || e.P99ms < e.P50ms || e.MaxMs < e.P99ms || e.Bare.P50ms <= 0 || e.Bare.MaxMs < e.Bare.P99ms:
		t.Fatalf("latency figures: %+v", e)
	case e.AddedP50ms != round(e.P50ms-e.Bare.P50ms, 2):
		t.Fatalf("added latency %v, want the event's p50 %v less the bare call's %v", e.AddedP50ms, e.P50ms, e.Bare.P50ms)
	case !names["claims"] || !names["limiter wait"] || !names["mpaas PushTemplate"] || !names["publish result"] || len(e.OneJob) < 5:
		t.Fatalf("the steps of an event must come from its spans: %+v %+v", e.Steps, e.OneJob)
	}
	t.Logf("report: %s", out)

	// The queue alone: no worker process, every event answered by the bench's
	// own queue at once, so no mPaaS call but the bare ones.
	r, out = runBench(t, "--queue-only", "--targets", "0", "--events", "20", "--events-per-sec", "100", "--events-bare")
	if e := r.Events; e.Jobs != 20 || e.P50ms <= 0 || e.Bare.Calls != 20 || r.Emulator.Calls != 20 || r.WorkerCPUSeconds != 0 {
		t.Fatalf("the queue alone must answer 20 events with no call of its own: %+v %+v", e, r.Emulator)
	}
	t.Logf("report: %s", out)
}

func runBench(t *testing.T, args ...string) (Report, string) {
	t.Helper()
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run(ctx, args, func(string) string { return "" }, &out, &log); err != nil {
		t.Fatalf("pushbench: %v\n%s", err, log.String())
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, out.String())
	}
	return r, out.String()
}
