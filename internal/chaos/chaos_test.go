//go:build chaos

// Package chaos kills, restarts and starves real worker processes mid-campaign
// and checks the guarantees: every job ends with exactly one result, every pair
// is delivered at least once, and pairs delivered twice stay within the windows
// the design states. Run: go test -tags chaos ./internal/chaos
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

const inFlight = 8 // PUSH_MAX_IN_FLIGHT of every worker

// scene is a NATS server on a fixed port and store (so it can restart), a Redis,
// the emulator, and worker processes.
type scene struct {
	t        *testing.T
	port     int
	store    string
	ns       *server.Server
	redis    string
	prefix   string
	sim      *mpaassim.Server
	simURL   string
	procs    []*teststack.Process
	procsMu  sync.Mutex
	campaign string
	extraEnv []string // more worker settings
	urls     string   // a cluster's client URLs, when set
}

func newScene(t *testing.T, redisAddr string, faults mpaassim.Faults) *scene {
	t.Helper()
	s := newBareScene(t, redisAddr, faults)
	s.startNATS()
	return s
}

// newBareScene is a scene without a NATS server.
func newBareScene(t *testing.T, redisAddr string, faults mpaassim.Faults) *scene {
	t.Helper()
	rdb := testenv.Redis(t)
	s := &scene{t: t, port: testenv.FreePort(t), store: t.TempDir(), redis: redisAddr, prefix: testenv.Prefix(t, rdb),
		campaign: "chaos" + testenv.ID()}
	if s.redis == "" {
		s.redis = testenv.RedisAddr()
	}
	s.sim = mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak": "sk"}, AcceptAnyTemplate: true, Faults: faults})
	srv := httptest.NewServer(s.sim)
	t.Cleanup(srv.Close)
	s.simURL = srv.URL
	t.Cleanup(s.killAll)
	return s
}

func (s *scene) startNATS() {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.store, NoSigs: true})
	if err != nil {
		s.t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		s.t.Fatal("NATS not ready")
	}
	s.ns = ns
}

func (s *scene) stopNATS() { s.ns.Shutdown(); s.ns.WaitForShutdown() }

// startJetStreamCluster starts a three-node JetStream cluster (embedded
// servers n1, n2, n3), points the scene's workers at it with R3 streams, and
// waits until it has a meta leader.
func (s *scene) startJetStreamCluster() map[string]*server.Server {
	t := s.t
	t.Helper()
	names := []string{"n1", "n2", "n3"}
	clientPorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	routePorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	var routes, clients []string
	for i := range names {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		clients = append(clients, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	servers := map[string]*server.Server{}
	for i, name := range names {
		ns, err := server.NewServer(&server.Options{ServerName: name, Host: "127.0.0.1", Port: clientPorts[i], JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			Cluster: server.ClusterOpts{Name: "chaos", Host: "127.0.0.1", Port: routePorts[i]}})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		servers[name] = ns
		t.Cleanup(ns.Shutdown)
	}
	for _, ns := range servers {
		if !ns.ReadyForConnections(20 * time.Second) {
			t.Fatal("cluster node not ready")
		}
	}
	s.urls = strings.Join(clients, ",")
	s.extraEnv = append(s.extraEnv, "PUSH_REPLICAS=3")
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.url())
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
		}
		if err == nil {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jobStreamLeader is the name of the node that leads the job stream.
func (s *scene) jobStreamLeader() string {
	s.t.Helper()
	nc, js := s.conn()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, topology.Default().JobsStream)
	if err != nil {
		s.t.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil {
		s.t.Fatalf("the job stream must be R3 on the cluster: %+v", info.Config)
	}
	return info.Cluster.Leader
}

func (s *scene) url() string {
	if s.urls != "" {
		return s.urls
	}
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// startWorker starts a worker process and waits until it says it started.
func (s *scene) startWorker() *teststack.Process {
	s.t.Helper()
	p, err := s.launchWorker(30 * time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// startWorkerWithin starts a worker process and waits up to d until it says it
// started (safe from several goroutines).
func (s *scene) startWorkerWithin(d time.Duration) error {
	_, err := s.launchWorker(d)
	return err
}

func (s *scene) launchWorker(within time.Duration) (*teststack.Process, error) {
	bin, err := teststack.WorkerBinary()
	if err != nil {
		return nil, err
	}
	env := append([]string{"NATS_URL=" + s.url(), "REDIS_URL=redis://" + s.redis, "PUSH_REDIS_PREFIX=" + s.prefix,
		"MPAAS_ENDPOINT=" + s.simURL, "MPAAS_AK_ENV=ak", "MPAAS_SK_ENV=sk", "PUSH_RATE_LIMIT=100000",
		"PUSH_MAX_IN_FLIGHT=" + strconv.Itoa(inFlight), "PUSH_ACK_WAIT=3s", "PUSH_RETRY_DELAY=200ms", "PUSH_MAX_DELIVER=20",
		"PUSH_HTTP_ADDR=127.0.0.1:0", "PUSH_LOG_FORMAT=json", "PUSH_SHUTDOWN_GRACE=3s", "PUSH_LEASE_TTL=10s"}, s.extraEnv...)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	p, err := teststack.StartProcess(ctx, bin, env, nil)
	if err != nil {
		return nil, err
	}
	s.procsMu.Lock()
	s.procs = append(s.procs, p)
	s.procsMu.Unlock()
	return p, nil
}

func (s *scene) killAll() {
	s.procsMu.Lock()
	defer s.procsMu.Unlock()
	for _, p := range s.procs {
		_ = p.Stop()
	}
	s.procs = nil
}

// midRun fails the test unless the campaign of calls calls is under way: some
// calls made, not all.
func (s *scene) midRun(calls int) {
	s.t.Helper()
	if n := s.sim.Stats().Accepted; n == 0 || n >= int64(calls) {
		s.t.Fatalf("the disruption must come mid-run: %d of %d calls made", n, calls)
	}
}

// publish loads jobs of size targets each on the bulk lane and returns them.
func (s *scene) publish(jobs, size int) []*job.Job {
	s.t.Helper()
	return s.publishTo(topology.Default().BulkSubject("chaos"), s.campaign, jobs, size, false)
}

// outcome is what the scene ended with.
type outcome struct {
	jobs, results, targets, sent, duplicates, failed, lost, twice int
}

// readResults calls visit with every result the results stream holds now and
// its stream sequence, and says how many stored results the reader handed twice
// (skipped).
func (s *scene) readResults(js jetstream.JetStream, visit func(r job.Result, seq uint64)) (repeats int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := js.OrderedConsumer(ctx, "PUSH_RESULTS", jetstream.OrderedConsumerConfig{})
	cancel()
	if err != nil {
		s.t.Fatal(err)
	}
	stored := teststack.NewInOrder(c)
	for {
		m, err := stored.Next(time.Second)
		if err != nil {
			return stored.Repeats()
		}
		var r job.Result
		meta, err := m.Metadata()
		if err == nil && json.Unmarshal(m.Data(), &r) == nil {
			visit(r, meta.Sequence.Stream)
		}
	}
}

// conn connects to the scene's NATS; the caller closes it.
func (s *scene) conn(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.url(), opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	return nc, js
}

// resultsConn connects for reading results, reconnecting for ever.
func (s *scene) resultsConn() (*nats.Conn, jetstream.JetStream) {
	return s.conn(nats.MaxReconnects(-1))
}

// settle waits until every job has a result, then checks every pair.
func (s *scene) settle(jobs []*job.Job, timeout time.Duration) outcome {
	s.t.Helper()
	nc, js := s.resultsConn()
	defer nc.Close()
	counts, seqs, ours := map[string]int{}, map[string][]uint64{}, map[string]bool{}
	for _, j := range jobs {
		ours[j.JobID] = true
	}
	var o outcome
	o.jobs = len(jobs)
	deadline := time.Now().Add(timeout)
	for {
		clear(counts)
		clear(seqs)
		o.sent, o.duplicates, o.failed = 0, 0, 0
		repeats := s.readResults(js, func(r job.Result, seq uint64) {
			if !ours[r.JobID] {
				return // another round's
			}
			counts[r.JobID]++
			seqs[r.JobID] = append(seqs[r.JobID], seq)
			o.sent += r.Sent
			o.duplicates += r.Duplicates
			o.failed += r.Failed
		})
		if repeats > 0 {
			s.t.Logf("the results reader handed %d stored result(s) a second time (skipped, counted once)", repeats)
		}
		if len(counts) >= len(jobs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, j := range jobs {
		switch counts[j.JobID] {
		case 0:
			s.t.Errorf("job %s has no result", j.JobID)
		case 1:
		default:
			s.t.Errorf("job %s has %d results (stream sequences %v)", j.JobID, counts[j.JobID], seqs[j.JobID])
		}
		o.results += min(counts[j.JobID], 1)
		for _, tg := range j.Pairs() {
			o.targets++
			switch n := s.sim.Delivered(j.AppID, j.WorkspaceID, tg.Target, tg.MsgKey); {
			case n == 0:
				o.lost++
			case n > 1:
				o.twice++
			}
		}
	}
	if o.lost > 0 {
		s.t.Errorf("%d pairs never delivered", o.lost)
	}
	s.t.Logf("jobs %d, results %d, targets %d: sent %d, duplicates %d, failed %d; pairs lost %d, delivered twice %d",
		o.jobs, o.results, o.targets, o.sent, o.duplicates, o.failed, o.lost, o.twice)
	return o
}

// kill -9 one of three workers mid-campaign: another takes its jobs after AckWait.
// Pairs pushed twice are bounded by the calls it had in flight.
func TestKillAWorker(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 100 * time.Millisecond})
	victim := s.startWorker()
	s.startWorker()
	s.startWorker()
	jobs := s.publish(100, 100) // 1,000 calls of 100 ms, 24 at a time: about 4 s
	time.Sleep(1500 * time.Millisecond)
	s.midRun(1000)
	if err := victim.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	o := s.settle(jobs, 2*time.Minute)
	if o.twice > inFlight*job.MaxTargetsPerCall {
		t.Fatalf("%d pairs pushed twice, over the %d the killed worker had in flight", o.twice, inFlight*job.MaxTargetsPerCall)
	}
}

// The NATS server restarts (same store) mid-run: the workers reconnect and finish.
func TestRestartNATS(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Latency: 100 * time.Millisecond})
	s.startWorker()
	s.startWorker()
	jobs := s.publish(60, 100) // 600 calls of 100 ms, 16 at a time: about 4 s
	time.Sleep(time.Second)
	s.midRun(600)
	s.stopNATS()
	time.Sleep(2 * time.Second)
	s.startNATS()
	o := s.settle(jobs, 2*time.Minute)
	// Jobs whose ack was lost with the server run again; their pairs are marked
	// sent in Redis, so nothing is pushed twice.
	if o.twice > 0 {
		t.Fatalf("%d pairs pushed twice after a NATS restart", o.twice)
	}
}

// Redis restarts empty mid-run: the workers pause while it is down, then finish.
// The sent marks are gone, so jobs redelivered after the restart may push again:
// the "Redis loses marks" window of the design.
func TestRestartRedisEmpty(t *testing.T) {
	own := testenv.StartRedis(t)
	s := newScene(t, own.Addr(), mpaassim.Faults{Latency: 100 * time.Millisecond})
	s.startWorker()
	s.startWorker()
	jobs := s.publish(60, 100)
	time.Sleep(time.Second)
	s.midRun(600)
	own.Stop()
	time.Sleep(3 * time.Second)
	calls := s.sim.Stats().Calls
	time.Sleep(time.Second)
	if more := s.sim.Stats().Calls - calls; more > 0 {
		t.Fatalf("%d mPaaS calls while Redis was down", more)
	}
	own.Start()
	o := s.settle(jobs, 2*time.Minute)
	if o.failed > 0 {
		t.Fatalf("%d targets failed", o.failed)
	}
}

// mPaaS misbehaves in every way at once: 5xx, throttling, 8011, and calls that
// time out after mPaaS recorded the push. Every pair arrives; pairs pushed twice
// are at most the targets of the calls that timed out after being recorded.
func TestMPaaSFaultMix(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{Rate5xx: 0.1, RateThrottle: 0.1, Rate8011: 0.1, RateTimeout: 0.05,
		TimeoutHold: 3 * time.Second, Latency: 10 * time.Millisecond})
	s.extraEnv = []string{"PUSH_MPAAS_TIMEOUT=1s"}
	s.startWorker()
	s.startWorker()
	jobs := s.publish(40, 100)
	o := s.settle(jobs, 3*time.Minute)
	st := s.sim.Stats()
	timeouts := int(st.ByCode["TIMEOUT_AFTER_RECORD"])
	t.Logf("emulator answers: %v", st.ByCode)
	if timeouts == 0 || st.ByCode["8011"] == 0 || st.ByCode["Throttling.User"] == 0 {
		t.Fatalf("the mix must have happened: %v", st.ByCode)
	}
	if o.twice > timeouts*job.MaxTargetsPerCall {
		t.Fatalf("%d pairs pushed twice, more than the %d targets of the %d timed-out calls", o.twice, timeouts*10, timeouts)
	}
	if o.failed > 0 {
		t.Fatalf("%d targets failed: transient faults must be retried", o.failed)
	}
}

// mPaaS refuses the credentials for a minute, then takes them again: the workers hold
// every job without spending deliveries, and finish.
func TestCredentialsRefusedThenFixed(t *testing.T) {
	s := newScene(t, "", mpaassim.Faults{RefuseSignatures: true})
	s.startWorker()
	s.startWorker()
	jobs := s.publish(20, 100)
	time.Sleep(time.Minute)
	if n := s.sim.Stats().Accepted; n != 0 {
		t.Fatalf("%d pushes accepted while the key was refused", n)
	}
	s.sim.SetFaults(mpaassim.Faults{})
	o := s.settle(jobs, 2*time.Minute)
	if o.failed > 0 || o.twice > 0 {
		t.Fatalf("after the key works again: %+v", o)
	}
}

// A three-node JetStream cluster with R3 streams: the node leading the job stream
// is killed mid-run; the workers reconnect to the others and finish.
func TestClusterLeaderKilled(t *testing.T) {
	s := newBareScene(t, "", mpaassim.Faults{Latency: 100 * time.Millisecond})
	servers := s.startJetStreamCluster()
	s.startWorker()
	s.startWorker()
	jobs := s.publish(60, 100)
	time.Sleep(time.Second)
	s.midRun(600)

	leader := s.jobStreamLeader()
	t.Logf("killing %s, the job stream's leader", leader)
	servers[leader].Shutdown()
	o := s.settle(jobs, 3*time.Minute)
	if o.failed > 0 {
		t.Fatalf("%d targets failed", o.failed)
	}
}
