//go:build chaos

package chaos

import (
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/topology"
)

// A 10,000-target PushTemplate campaign revoked by three workers at 1,000 calls/s,
// one of them killed mid-revoke: 10,000 RevokePushMessage calls under the rate
// (plus at most the calls the victim had in flight), every pair revoked; and a
// 10,000-target PushMultiple campaign: 100 RevokePushTask calls.
func TestRevokeCampaigns(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	s.extraEnv = []string{"PUSH_RATE_LIMIT=1000"}
	victim := s.startWorker()
	s.startWorker()
	s.startWorker()
	s.enqueue("--help") // builds it
	template := s.publishTo(topology.Default().BulkSubject("fall"), "fall", 100, 100, false)
	multiple := s.publishTo(topology.Default().BulkSubject("fallm"), "fallm", 10, 1000, true)
	s.settle(append(template, multiple...), time.Minute)

	start := time.Now()
	done := make(chan string, 1)
	go func() {
		out, err := s.enqueue("revoke", "--campaign", "fall")
		if err != nil {
			out += err.Error()
		}
		done <- out
	}()
	time.Sleep(2 * time.Second) // about 2,000 of the 10,000 calls made
	if err := victim.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out := <-done
	elapsed := time.Since(start)
	st := s.sim.Stats()
	calls := st.ByAPI["RevokePushMessage"].Calls
	t.Logf("revoke of 10,000 pairs: %s; %d calls in %s, %d pairs revoked\n%s", "fall", calls, elapsed.Round(100*time.Millisecond), st.Recall.RevokedPairs, out)
	if !regexp.MustCompile(`done: 10000 calls succeeded`).MatchString(out) || st.Recall.RevokedPairs != 10000 {
		t.Fatalf("every pair must be revoked: %d\n%s", st.Recall.RevokedPairs, out)
	}
	twice := 0
	for _, j := range template {
		for _, p := range j.TargetMsgkey {
			ok, n := s.sim.Revoked(j.AppID, j.WorkspaceID, p.Target, p.MsgKey)
			if !ok {
				t.Fatalf("%s not revoked", p.Target)
			}
			if n > 1 {
				twice++
			}
		}
	}
	if calls < 10000 || twice > inFlight || calls > 10000+inFlight {
		t.Fatalf("%d calls, %d pairs revoked by two calls: at most the %d the killed worker had in flight", calls, twice, inFlight)
	}
	if rate := float64(calls) / elapsed.Seconds(); rate > 1100 {
		t.Fatalf("%.0f calls/s over the rate limit of 1,000", rate)
	}
	if max := st.MaxCallsInOneSecond; max > 1100 {
		t.Fatalf("busiest second %d calls, over 1.1 × the rate", max)
	}

	out, err := s.enqueue("revoke", "--campaign", "fallm")
	st = s.sim.Stats()
	t.Logf("revoke of the PushMultiple campaign: %d RevokePushTask calls\n%s", st.ByAPI["RevokePushTask"].Calls, out)
	if err != nil || st.ByAPI["RevokePushTask"].Calls != 100 || st.Recall.RevokedTasks != 100 {
		t.Fatalf("want 100 RevokePushTask calls: %v %+v", err, st.Recall)
	}
}
