//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/topology"
)

// natsProcess is a nats-server binary (CHAOS_NATS_SERVER, or the machine's
// nats-server) on the scene's port and store, so that it can be killed and
// started again on what it wrote.
type natsProcess struct {
	s    *scene
	bin  string
	conf string
	p    *teststack.Process
}

func (s *scene) natsProcess() *natsProcess {
	s.t.Helper()
	bin := s.natsBin()
	conf := filepath.Join(s.t.TempDir(), "nats.conf")
	text := fmt.Sprintf("host: 127.0.0.1\nport: %d\njetstream { store_dir: %q }\n", s.port, s.store)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	n := &natsProcess{s: s, bin: bin, conf: conf}
	n.start()
	s.t.Cleanup(func() {
		if n.p != nil {
			_ = n.p.Stop()
		}
	})
	return n
}

func (n *natsProcess) start() {
	n.s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := teststack.Start(ctx, exec.Command(n.bin, "-c", n.conf), nil, regexp.MustCompile(`(Server is ready)`), nil)
	if err != nil {
		n.s.t.Fatal(err)
	}
	n.p = p
}

func (n *natsProcess) version() string {
	out, _ := exec.Command(n.bin, "--version").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// laneState is each lane's pending and ack-pending count, and the job
// stream's message count.
func (s *scene) laneState(js jetstream.JetStream) (pending, ackPending int, msgs uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topo := topology.Default()
	for _, name := range []string{topo.Durable, topo.BulkDurable} {
		c, err := js.Consumer(ctx, topo.JobsStream, name)
		if err != nil {
			return 0, 0, 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		pending += int(info.NumPending)
		ackPending += info.NumAckPending
	}
	stream, err := js.Stream(ctx, topo.JobsStream)
	if err != nil {
		return 0, 0, 0, err
	}
	return pending, ackPending, stream.CachedInfo().State.Msgs, nil
}

// orphansOf is the orphans "enqueue status --json" reports, over both lanes.
func (s *scene) orphansOf() int {
	s.t.Helper()
	out, err := s.enqueue("status", "--json")
	if err != nil {
		s.t.Fatalf("enqueue status: %v\n%s", err, out)
	}
	var st struct {
		Lanes []struct{ Orphans int }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("enqueue status: %v\n%s", err, out)
	}
	n := 0
	for _, l := range st.Lanes {
		n += l.Orphans
	}
	return n
}

// A nats-server killed with SIGKILL a second into 150 jobs of 20 targets and
// started again 3 s later on its store: every job has one result and no pair
// goes twice. A 2.9 server may then keep messages its consumer has acknowledged
// (they are below the ack floor and no worker sees them again): enqueue status
// counts them, and they are every message the idle stream still holds; enqueue
// repair removes them and leaves the stream empty. The crash repeats (up to 4
// times) until it leaves orphans, so that the repair is tried on real ones.
func TestNATSServerCrashOrphansAreReportedAndRepaired(t *testing.T) {
	s := newBareScene(t, "", mpaassim.Faults{Latency: 100 * time.Millisecond})
	srv := s.natsProcess()
	t.Logf("server: %s", srv.version())
	s.startWorker()
	s.startWorker()
	orphans := 0
	for attempt := 1; attempt <= 4 && orphans == 0; attempt++ {
		name := fmt.Sprintf("%s-%d", s.campaign, attempt)
		before := s.sim.Stats().Accepted
		jobs := s.publishTo(topology.Default().BulkSubject(name), name, 150, 20, false) // 300 calls, 16 at a time of 100 ms: about 2 s
		time.Sleep(time.Second)
		if n := s.sim.Stats().Accepted - before; n == 0 || n >= 300 {
			t.Fatalf("the crash must come mid-run: %d of 300 calls made", n)
		}
		srv.p.Kill()
		time.Sleep(3 * time.Second)
		srv.start()
		o := s.settle(jobs, 2*time.Minute)
		if o.twice > 0 {
			t.Errorf("%d pairs pushed twice after the crash", o.twice)
		}

		nc, js := s.conn()
		var pending, ackPending int
		var msgs uint64
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			pending, ackPending, msgs, err = s.laneState(js)
			if err == nil && pending == 0 && ackPending == 0 || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || pending != 0 || ackPending != 0 {
			t.Fatalf("the lanes did not go idle: pending %d, ack pending %d (%v)", pending, ackPending, err)
		}
		orphans = s.orphansOf()
		t.Logf("crash %d: the idle job stream holds %d messages; enqueue status reports %d orphans", attempt, msgs, orphans)
		if uint64(orphans) != msgs {
			t.Fatalf("every message an idle stream holds is an orphan: %d held, %d reported", msgs, orphans)
		}
		if orphans > 0 {
			out, err := s.enqueue("repair", "--yes")
			if err != nil {
				t.Fatalf("enqueue repair: %v\n%s", err, out)
			}
			t.Logf("enqueue repair --yes:\n%s", out)
			if _, _, msgs, err = s.laneState(js); err != nil || msgs != 0 {
				t.Fatalf("after the repair the job stream holds %d messages (%v)", msgs, err)
			}
			if n := s.orphansOf(); n != 0 {
				t.Fatalf("after the repair status reports %d orphans", n)
			}
		}
		nc.Close()
	}
	if orphans == 0 {
		t.Logf("no crash of %s left orphans: the repair was not exercised", srv.version())
	}
}

// natsCluster starts three nats-server processes (CHAOS_NATS_SERVER, or the
// machine's) as one new JetStream cluster, without waiting for it to form, and
// points the scene's workers at it with R3 streams.
func (s *scene) natsCluster() []*teststack.Process {
	t := s.t
	t.Helper()
	bin := s.natsBin()
	clientPorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	routePorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	var routes, clients []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		clients = append(clients, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	var nodes []*teststack.Process
	for i := range 3 {
		conf := filepath.Join(t.TempDir(), "nats.conf")
		text := fmt.Sprintf("server_name: n%d\nhost: 127.0.0.1\nport: %d\njetstream { store_dir: %q }\n"+
			"cluster { name: fresh, host: 127.0.0.1, port: %d, routes: [%s] }\n",
			i+1, clientPorts[i], t.TempDir(), routePorts[i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p, err := teststack.Start(ctx, exec.Command(bin, "-c", conf), nil, regexp.MustCompile(`(Listening for client connections)`), nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		nodes = append(nodes, p)
	}
	s.urls = strings.Join(clients, ",")
	s.extraEnv = append(s.extraEnv, "PUSH_REPLICAS=3")
	return nodes
}

func (s *scene) natsBin() string {
	s.t.Helper()
	name := os.Getenv("CHAOS_NATS_SERVER")
	if name == "" {
		name = "nats-server"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(s.t, "the nats-server binary", err)
	}
	return bin
}

// Three workers started at the same moment as a new three-node cluster of
// nats-server processes (the machine's 2.9.10 unless CHAOS_NATS_SERVER says
// otherwise), PUSH_REPLICAS=3: the streams' creation races the cluster's
// forming and the workers' own creations, and every worker comes up (none
// exits), then they run a campaign together.
func TestWorkersStartTogetherOnAFreshCluster(t *testing.T) {
	rounds := 2
	if n, err := strconv.Atoi(os.Getenv("CHAOS_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for round := 1; round <= rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			s := newBareScene(t, "", mpaassim.Faults{Latency: 20 * time.Millisecond})
			servers := s.natsCluster()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.startWorkerWithin(90 * time.Second)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("worker %d: %v", i, err)
				}
			}
			t.Logf("3 workers up %v after the cluster's processes started", time.Since(start).Round(100*time.Millisecond))
			jobs := s.publish(45, 100)
			if o := s.settle(jobs, 2*time.Minute); o.twice > 0 || o.failed > 0 {
				t.Errorf("after starting together: %+v", o)
			}
			for i, p := range servers {
				if p.Exited() {
					t.Errorf("nats-server %d exited (crashed?) while the workers started:\n%s", i, p.Log())
				}
			}
			if os.Getenv("CHAOS_TRACE") != "" || t.Failed() {
				s.procsMu.Lock()
				for i, p := range s.procs {
					t.Logf("worker %d:\n%s", i, p.Log())
				}
				s.procsMu.Unlock()
			}
		})
	}
}
