//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// rateLog samples the emulator's call count every 100 ms.
type rateLog struct {
	mu      sync.Mutex
	at      []time.Time
	calls   []int64
	stopped chan struct{}
	done    chan struct{}
}

func sampleCalls(sim *mpaassim.Server) *rateLog {
	l := &rateLog{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-l.stopped:
				return
			case now := <-t.C:
				n := sim.Stats().Calls
				l.mu.Lock()
				l.at, l.calls = append(l.at, now), append(l.calls, n)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *rateLog) stop() { close(l.stopped); <-l.done }

// perSecond is the calls of the second that ends at sample i.
func (l *rateLog) perSecond(i int) int64 {
	j := i
	for j > 0 && l.at[i].Sub(l.at[j-1]) <= time.Second {
		j--
	}
	return l.calls[i] - l.calls[j]
}

// resumed is how long after from calls went out again, once they had stopped
// (0: they never stopped for a whole sample).
func (l *rateLog) resumed(from time.Time) time.Duration {
	stopped := false
	for i := 1; i < len(l.at); i++ {
		if l.at[i].Before(from) {
			continue
		}
		n := l.calls[i] - l.calls[i-1]
		if n == 0 {
			stopped = true
		} else if stopped {
			return l.at[i].Sub(from)
		}
	}
	return 0
}

// backToRate is how long after from the calls of a second reached share of
// rate again once they had dropped below it (0: they never dropped).
func (l *rateLog) backToRate(from time.Time, rate float64, share float64) time.Duration {
	dropped := false
	for i := range l.at {
		if l.at[i].Before(from.Add(time.Second)) {
			continue
		}
		ok := float64(l.perSecond(i)) >= share*rate
		if !ok {
			dropped = true
		}
		if ok && dropped {
			return l.at[i].Sub(from)
		}
		if ok && !dropped && l.at[i].Sub(from) > 3*time.Second {
			return 0
		}
	}
	return -1 // never back
}

// The production topology under faults: a three-node JetStream cluster with R3
// streams, a Redis Cluster of three masters and three replicas, three worker
// processes, and a 100,000-target campaign loaded with enqueue load at 300
// calls/s. During the run a worker is killed (SIGKILL), the job stream's
// leader node is shut down and a Redis master is killed so that its replica
// takes over. Every job has one result, every pair is delivered, and pairs
// pushed twice stay within the bound: the killed worker's calls in flight, and
// the marks of the calls in flight when the Redis master died (which it may
// have taken before its replica had them).
func TestProductionTopologyUnderFaults(t *testing.T) {
	const rate, targets = 300, 100000
	s := newBareScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	servers := s.startJetStreamCluster()
	rc := testenv.StartRedisCluster(t)
	s.redis = rc.Addrs()[0]
	// AckWait above a JetStream leader election: with the scene's 3 s, a job
	// whose heartbeats went unanswered during the election was redelivered while
	// its first delivery still ran, and both sent its targets (290 pairs twice in
	// one run). The production default is 30 s.
	s.extraEnv = append(s.extraEnv, "REDIS_ADDRS="+strings.Join(rc.Addrs()[1:], ","), fmt.Sprintf("PUSH_RATE_LIMIT=%d", rate),
		"PUSH_ACK_WAIT=10s")
	for range 3 {
		s.startWorker()
	}

	var csv strings.Builder
	csv.WriteString("target,msgKey\n")
	for i := range targets {
		fmt.Fprintf(&csv, "p%06d,%s\n", i, s.campaign)
	}
	file := filepath.Join(t.TempDir(), "campaign.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	rates := sampleCalls(s.sim)
	start := time.Now()
	out, err := s.enqueue("load", "--campaign", s.campaign, "--api", "template", "--app-id", "prod", "--workspace-id", s.campaign,
		"--template", "chaos", "--delivery-type", "3", "--expired-seconds", "3600", file)
	if err != nil {
		t.Fatalf("enqueue load: %v\n%s", err, out)
	}
	faults := map[string]time.Time{}
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

	at(3 * time.Second)
	s.midRun(targets / 10)
	s.procsMu.Lock()
	victim := s.procs[0]
	s.procsMu.Unlock()
	victim.Kill()
	faults["worker killed"] = time.Now()

	at(6 * time.Second)
	leader := s.jobStreamLeader()
	servers[leader].Shutdown()
	faults["job stream leader "+leader+" shut down"] = time.Now()

	at(9 * time.Second)
	master := rc.OwnerOf("pushworker-chaos")
	rc.Node(master).Stop()
	redisKilled := time.Now()
	faults["Redis master "+master+" killed"] = redisKilled
	var failedOver time.Duration // when the cluster itself had a new master for the slot
	for failedOver == 0 && time.Since(redisKilled) < 30*time.Second {
		if owner := rc.OwnerOf("pushworker-chaos"); owner != "" && owner != master {
			failedOver = time.Since(redisKilled)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the Redis cluster failed over %v after the kill", failedOver.Round(10*time.Millisecond))

	// Every job's result, by the results stream.
	jobs := (targets + 999) / 1000
	results := s.resultsOf(s.campaign, jobs, 4*time.Minute)
	elapsed := time.Since(start)
	rates.stop()
	for id, n := range results {
		if n != 1 {
			t.Errorf("job %s has %d results", id, n)
		}
	}
	if len(results) != jobs {
		t.Errorf("%d of %d jobs have a result", len(results), jobs)
	}
	var lost, twice int
	for i := range targets {
		switch n := s.sim.Delivered("prod", s.campaign, fmt.Sprintf("p%06d", i), s.campaign); {
		case n == 0:
			lost++
		case n > 1:
			twice++
		}
	}
	st := s.sim.Stats()
	bound := inFlight*job.MaxTargetsPerCall + 3*inFlight*job.MaxTargetsPerCall
	t.Logf("%d targets in %d jobs, %v: %d results, pairs lost %d, pushed twice %d (bound %d); busiest one-second window %d calls (%.3f× the rate)",
		targets, jobs, elapsed.Round(time.Second), len(results), lost, twice, bound, st.MaxCallsInOneSecond, float64(st.MaxCallsInOneSecond)/rate)
	for what, when := range faults {
		t.Logf("%s at %v: back at 90 %% of the rate %v later", what, when.Sub(start).Round(100*time.Millisecond), rates.backToRate(when, rate, 0.9).Round(100*time.Millisecond))
	}
	if os.Getenv("CHAOS_TRACE") != "" {
		for i := 1; i < len(rates.at); i++ {
			if d := rates.at[i].Sub(redisKilled); d > -time.Second && d < 8*time.Second {
				t.Logf("%+v: %d calls", d.Round(100*time.Millisecond), rates.calls[i]-rates.calls[i-1])
			}
		}
	}
	resumed := rates.resumed(redisKilled)
	t.Logf("after the Redis master's death calls went out again %v after it, %v after the cluster's failover",
		resumed.Round(100*time.Millisecond), (resumed - failedOver).Round(100*time.Millisecond))
	if failedOver == 0 || resumed-failedOver > 2*time.Second {
		t.Errorf("the workers took %v after the Redis failover (%v) to call again, want at most 2 s", resumed-failedOver, failedOver)
	}
	if lost > 0 {
		t.Errorf("%d pairs never delivered", lost)
	}
	if twice > bound {
		t.Errorf("%d pairs pushed twice, over the bound %d", twice, bound)
	}
	if float64(st.MaxCallsInOneSecond) > 1.1*rate {
		t.Errorf("a one-second window saw %d calls, over 1.1× %d", st.MaxCallsInOneSecond, rate)
	}
}

// resultsOf counts the results of a campaign's jobs by job id until there are
// jobs of them or timeout.
func (s *scene) resultsOf(campaign string, jobs int, timeout time.Duration) map[string]int {
	s.t.Helper()
	nc, js := s.resultsConn()
	defer nc.Close()
	counts := map[string]int{}
	deadline := time.Now().Add(timeout)
	for {
		clear(counts)
		s.readResults(js, func(r job.Result) {
			if r.Campaign == campaign {
				counts[r.JobID]++
			}
		})
		if len(counts) >= jobs || time.Now().After(deadline) {
			return counts
		}
		time.Sleep(time.Second)
	}
}
