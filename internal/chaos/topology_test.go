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
	"github.com/mpaas-push/pushworker/internal/teststack"
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

// campaignRun is a campaign loaded with enqueue load at a rate, and the
// emulator's calls sampled from its start.
type campaignRun struct {
	s             *scene
	rate, targets int
	start         time.Time
	rates         *rateLog
	faults        []fault
}

// fault is what a run did to a server, and when.
type fault struct {
	what string
	at   time.Time
}

// loadCampaign writes a CSV of targets (p000000…, the msgKey the campaign's
// name), starts sampling the calls and loads it with enqueue load.
func (s *scene) loadCampaign(rate, targets int) *campaignRun {
	s.t.Helper()
	var csv strings.Builder
	csv.WriteString("target,msgKey\n")
	for i := range targets {
		fmt.Fprintf(&csv, "p%06d,%s\n", i, s.campaign)
	}
	file := filepath.Join(s.t.TempDir(), "campaign.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	r := &campaignRun{s: s, rate: rate, targets: targets, rates: sampleCalls(s.sim), start: time.Now()}
	out, err := s.enqueue("load", "--campaign", s.campaign, "--api", "template", "--app-id", "prod", "--workspace-id", s.campaign,
		"--template", "chaos", "--delivery-type", "3", "--expired-seconds", "3600", file)
	if err != nil {
		r.rates.stop()
		s.t.Fatalf("enqueue load: %v\n%s", err, out)
	}
	return r
}

// at sleeps until d after the start.
func (r *campaignRun) at(d time.Duration) { time.Sleep(time.Until(r.start.Add(d))) }

// did records a fault done now.
func (r *campaignRun) did(what string) time.Time {
	now := time.Now()
	r.faults = append(r.faults, fault{what, now})
	return now
}

// finish waits for every job's result and checks the run: one result per job,
// every pair delivered, at most bound pairs pushed twice, no one-second window
// above 1.1× the rate. It logs the run's row of docs/guarantees.md's chaos table.
func (r *campaignRun) finish(bound int) (twice int) {
	s, t := r.s, r.s.t
	t.Helper()
	jobs := (r.targets + 999) / 1000
	results := s.resultsOf(s.campaign, jobs, 4*time.Minute)
	elapsed := time.Since(r.start)
	r.rates.stop()
	for id, n := range results {
		if n != 1 {
			t.Errorf("job %s has %d results", id, n)
		}
	}
	if len(results) != jobs {
		t.Errorf("%d of %d jobs have a result", len(results), jobs)
	}
	lost := 0
	for i := range r.targets {
		switch n := s.sim.Delivered("prod", s.campaign, fmt.Sprintf("p%06d", i), s.campaign); {
		case n == 0:
			lost++
		case n > 1:
			twice++
		}
	}
	busiest := s.sim.Stats().MaxCallsInOneSecond
	t.Logf("%d targets in %d jobs at %d calls/s, %v (ideal %v): %d results, pairs lost %d, pushed twice %d (bound %d); busiest one-second window %d calls (%.3f× the rate)",
		r.targets, jobs, r.rate, elapsed.Round(time.Second), time.Duration(r.targets/10/r.rate)*time.Second, len(results), lost, twice, bound,
		busiest, float64(busiest)/float64(r.rate))
	for _, f := range r.faults {
		t.Logf("%s at %v: back at 90 %% of the rate %v later", f.what, f.at.Sub(r.start).Round(100*time.Millisecond),
			r.rates.backToRate(f.at, float64(r.rate), 0.9).Round(100*time.Millisecond))
	}
	if lost > 0 {
		t.Errorf("%d pairs never delivered", lost)
	}
	if twice > bound {
		t.Errorf("%d pairs pushed twice, over the bound %d", twice, bound)
	}
	if float64(busiest) > 1.1*float64(r.rate) {
		t.Errorf("a one-second window saw %d calls, over 1.1× %d", busiest, r.rate)
	}
	return twice
}

// trace logs the calls of each sample around from (CHAOS_TRACE set).
func (r *campaignRun) trace(from time.Time) {
	if os.Getenv("CHAOS_TRACE") == "" {
		return
	}
	for i := 1; i < len(r.rates.at); i++ {
		if d := r.rates.at[i].Sub(from); d > -time.Second && d < 12*time.Second {
			r.s.t.Logf("%+v: %d calls", d.Round(100*time.Millisecond), r.rates.calls[i]-r.rates.calls[i-1])
		}
	}
}

// inFlightMarks bounds the pairs a Redis failover may push twice: every worker's
// calls in flight when the master died, whose sent marks the dead master may
// have taken before its replica had them.
func inFlightMarks(workers int) int { return workers * inFlight * job.MaxTargetsPerCall }

// waitFor polls cond every 50 ms for up to within and says how long it took
// (0: it never held).
func waitFor(within time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
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
	s := newBareScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	servers := s.startJetStreamCluster()
	rc := testenv.StartRedisCluster(t)
	s.redis = rc.Addrs()[0]
	// AckWait above a JetStream leader election: with the scene's 3 s, a job
	// whose heartbeats went unanswered during the election was redelivered while
	// its first delivery still ran, and both sent its targets (290 pairs twice in
	// one run). The production default is 30 s.
	s.extraEnv = append(s.extraEnv, "REDIS_ADDRS="+strings.Join(rc.Addrs()[1:], ","), "PUSH_RATE_LIMIT=300", "PUSH_ACK_WAIT=10s")
	for range 3 {
		s.startWorker()
	}
	r := s.loadCampaign(300, 100000)

	r.at(3 * time.Second)
	s.midRun(r.targets / 10)
	s.procsMu.Lock()
	victim := s.procs[0]
	s.procsMu.Unlock()
	victim.Kill()
	r.did("worker killed")

	r.at(6 * time.Second)
	leader := s.jobStreamLeader()
	servers[leader].Shutdown()
	r.did("job stream leader " + leader + " shut down")

	r.at(9 * time.Second)
	r.checkRedisFailover(rc, func() { rc.Node(rc.OwnerOf("pushworker-chaos")).Stop() }, rc.OwnerOf)
	r.finish(inFlight*job.MaxTargetsPerCall + inFlightMarks(3))
}

// checkRedisFailover kills a Redis master (kill), waits until owner names
// another, and fails the test unless calls went out again within 2 s of that
// failover.
func (r *campaignRun) checkRedisFailover(rc *testenv.RedisCluster, kill func(), owner func(string) string) {
	t := r.s.t
	t.Helper()
	master := owner("pushworker-chaos")
	kill()
	killed := r.did("Redis master " + master + " killed")
	failedOver := waitFor(30*time.Second, func() bool { o := owner("pushworker-chaos"); return o != "" && o != master })
	t.Logf("Redis failed over %v after the kill", failedOver.Round(10*time.Millisecond))
	r.awaitResumed(killed, failedOver)
}

// awaitResumed waits out the run's next seconds and fails the test unless the
// calls, stopped after from, went out again within 2 s of after.
func (r *campaignRun) awaitResumed(from time.Time, after time.Duration) {
	t := r.s.t
	t.Helper()
	time.Sleep(time.Until(from.Add(after + 3*time.Second)))
	r.trace(from)
	resumed := r.rates.resumed(from)
	t.Logf("calls went out again %v after the fault, %v after Redis was whole again",
		resumed.Round(100*time.Millisecond), (resumed - after).Round(100*time.Millisecond))
	if after == 0 || resumed-after > 2*time.Second {
		t.Errorf("the workers took %v after Redis was whole again (%v after the fault) to call again, want at most 2 s", resumed-after, after)
	}
}

// A Redis Cluster master killed mid-campaign (its replica takes over after the
// node timeout, 1 s): the workers call again within 2 s of the cluster's
// failover and are back at the rate; pairs pushed twice at most the marks of
// the calls in flight at the kill.
func TestRedisClusterMasterKilled(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	rc := testenv.StartRedisCluster(t)
	s.redis = rc.Addrs()[0]
	s.extraEnv = append(s.extraEnv, "REDIS_ADDRS="+strings.Join(rc.Addrs()[1:], ","), "PUSH_RATE_LIMIT=300")
	for range 3 {
		s.startWorker()
	}
	r := s.loadCampaign(300, 40000)
	r.at(3 * time.Second)
	s.midRun(r.targets / 10)
	r.checkRedisFailover(rc, func() { rc.Node(rc.OwnerOf("pushworker-chaos")).Stop() }, rc.OwnerOf)
	r.finish(inFlightMarks(3))
}

// Behind Redis Sentinel (a master, a replica, three sentinels) the master is
// killed mid-campaign: the workers follow the promoted replica, and the same
// checks as on the cluster hold.
func TestRedisSentinelMasterKilled(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	rs := testenv.StartRedisSentinel(t)
	s.redis = rs.Sentinels[0]
	s.extraEnv = append(s.extraEnv, "REDIS_SENTINEL_MASTER="+rs.Name, "REDIS_ADDRS="+strings.Join(rs.Sentinels[1:], ","), "PUSH_RATE_LIMIT=300")
	for range 3 {
		s.startWorker()
	}
	r := s.loadCampaign(300, 40000)
	r.at(3 * time.Second)
	s.midRun(r.targets / 10)
	master := rs.MasterAddr()
	rs.Master.Stop()
	killed := r.did("Redis master " + master + " killed")
	promoted := waitFor(30*time.Second, func() bool { a := rs.MasterAddr(); return a != "" && a != master })
	t.Logf("the sentinels promoted the replica %v after the kill", promoted.Round(10*time.Millisecond))
	r.awaitResumed(killed, promoted)
	r.finish(inFlightMarks(3))
}

// One Redis Cluster master frozen (SIGSTOP) for 10 s, below the cluster's node
// timeout (15 s, Redis's default), so that no replica takes over: its
// connections hang rather than fail. The master frozen holds the shared rate
// limit's key (<prefix>rate:mpaas), which every call
// needs: a chunk whose targets' keys all live on the other masters needs no
// other key of the frozen one, and rightly goes out when the limit lives
// elsewhere. So the workers pause with cause redis and say so, make no call
// while it is frozen, and call again within 2 s of its thaw; nothing is lost
// and, with no failover, nothing is pushed twice.
func TestRedisClusterNodeFrozen(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
	rc := testenv.StartRedisClusterTimeout(t, 15*time.Second)
	s.redis = rc.Addrs()[0]
	s.extraEnv = append(s.extraEnv, "REDIS_ADDRS="+strings.Join(rc.Addrs()[1:], ","), "PUSH_RATE_LIMIT=300")
	var workers []*teststack.Process
	for range 3 {
		workers = append(workers, s.startWorker())
	}
	r := s.loadCampaign(300, 60000)
	r.at(3 * time.Second)
	s.midRun(r.targets / 10)
	node := rc.Node(rc.OwnerOf(s.prefix + "rate:mpaas"))
	node.Freeze()
	frozen := r.did("Redis master " + node.Addr() + " frozen for 10 s")
	time.Sleep(4 * time.Second)
	calls := s.sim.Stats().Calls
	time.Sleep(5 * time.Second)
	if more := s.sim.Stats().Calls - calls; more > 0 {
		t.Errorf("%d mPaaS calls while a master was frozen", more)
	}
	time.Sleep(time.Until(frozen.Add(10 * time.Second)))
	node.Thaw()
	r.awaitResumed(frozen, 10*time.Second)
	for i, w := range workers {
		if log := w.Log(); !strings.Contains(log, `"cause":"redis"`) || !strings.Contains(log, "resumed") {
			t.Errorf("worker %d must say it paused for redis and resumed:\n%s", i, tail(log, 20))
		}
	}
	if twice := r.finish(0); twice > 0 {
		t.Errorf("%d pairs pushed twice without a failover", twice)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
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
		s.readResults(js, func(r job.Result, _ uint64) {
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
