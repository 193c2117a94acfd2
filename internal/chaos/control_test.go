//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// putState writes a campaign's control value straight into the bucket, as the
// nats CLI or a business's own service would: no enqueue runs.
func (s *scene) putState(name, state, actor string) {
	s.t.Helper()
	nc, js := s.conn()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, topology.DefaultCampaignsBucket)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"state": state, "targetsPerSecond": 0, "reason": "chaos test", "actor": actor,
		"updatedAt": time.Now().UTC().Format(time.RFC3339)})
	if _, err := kv.Put(ctx, name, body); err != nil {
		s.t.Fatal(err)
	}
}

// parked is how many of the campaign's jobs PUSH_PARKED holds.
func (s *scene) parked(name string) int {
	s.t.Helper()
	nc, js := s.conn()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, topology.DefaultParkedStream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(topology.Default().CampaignParked(name)))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(info.State.Subjects)
}

// waitParked waits until at least n of the campaign's jobs are parked.
func (s *scene) waitParked(name string, n int) int {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p := s.parked(name); p >= n || time.Now().After(deadline) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pause and resume written straight into the bucket, with three worker
// processes and no enqueue: the workers park, then bring every parked job back
// within 2 s; every job has one whole result and every pair is pushed once.
func TestCampaignControlledThroughTheBucket(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 50 * time.Millisecond})
	s.extraEnv = []string{"PUSH_RATE_LIMIT=15"}
	for range 3 {
		s.startWorker()
	}
	jobs := s.publishTo(topology.Default().BulkSubject("bucket"), "bucket", 40, 100, false)
	s.waitCalls("bucket", 10)
	s.putState("bucket", "paused", "chaos:pause")
	if p := s.waitParked("bucket", 1); p == 0 {
		t.Fatal("no job parked within 30 s of a pause written into the bucket")
	}
	time.Sleep(time.Second) // the workers park what they hold
	before := s.parked("bucket")
	s.putState("bucket", "running", "chaos:resume")
	at := time.Now()
	for s.parked("bucket") > 0 {
		if time.Since(at) > 2*time.Second {
			t.Fatalf("%d of %d parked jobs still parked 2 s after a resume written into the bucket", s.parked("bucket"), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d parked jobs back on the job stream within %s", before, time.Since(at).Round(10*time.Millisecond))
	o := s.settle(jobs, time.Minute)
	if o.results != len(jobs) || o.twice != 0 || o.sent+o.duplicates+o.failed != o.targets || o.failed != 0 {
		t.Fatalf("every job one whole result, every pair once: %+v", o)
	}
}

// One worker stopped (SIGSTOP) for 5 s across a resume written into the bucket:
// it still sees the campaign paused when it is continued, so it parks what it
// was handed meanwhile after the others swept, and brings it back itself once it
// applies the resume. Nothing stays parked, every job has one whole result.
func TestCampaignResumedWhileAWorkerIsFrozen(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 50 * time.Millisecond})
	s.extraEnv = []string{"PUSH_RATE_LIMIT=20"}
	late := s.startWorker()
	s.startWorker()
	s.startWorker()
	jobs := s.publishTo(topology.Default().BulkSubject("frozen"), "frozen", 40, 100, false)
	s.waitCalls("frozen", 10)
	s.putState("frozen", "paused", "chaos:pause")
	s.waitParked("frozen", 1)
	time.Sleep(time.Second) // every worker has applied the pause; calls in flight ended
	if err := late.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.putState("frozen", "running", "chaos:resume")
	time.Sleep(5 * time.Second)
	if err := late.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	o := s.settle(jobs, 2*time.Minute)
	if left := s.parked("frozen"); left != 0 {
		t.Fatalf("%d jobs stay in PUSH_PARKED", left)
	}
	// A process frozen past its jobs' AckWait is a crash that comes back: what it
	// held was taken over by the others. On waking, a delivery past half its
	// AckWait claims its pairs again before each call and finds itself
	// superseded: at most the calls it had on the wire when it froze go twice.
	t.Logf("pairs pushed twice with a worker frozen past its AckWait: %d", o.twice)
	if o.twice > inFlight*job.MaxTargetsPerCall {
		t.Fatalf("%d pairs pushed twice, over the %d the frozen worker had in flight", o.twice, inFlight*job.MaxTargetsPerCall)
	}
	if o.results != len(jobs) || o.lost != 0 || o.sent+o.duplicates+o.failed != o.targets || o.failed != 0 {
		t.Fatalf("every job one whole result, nothing lost: %+v", o)
	}
}
