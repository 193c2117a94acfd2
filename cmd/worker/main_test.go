package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// syncBuffer collects a worker's log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var httpAddrRE = regexp.MustCompile(`http://([0-9.:]+)/metrics`)

// waitFor polls until the log matches re.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never matched %s:\n%s", re, out.String())
	return nil
}

// production is a worker environment on an embedded NATS server, the given Redis
// and the emulator: everything configured, no dev mode.
type production struct {
	env  map[string]string
	sim  *mpaassim.Server
	nats string
}

func newProduction(t *testing.T, redisAddr string) *production {
	t.Helper()
	ns := testenv.NATS(t)
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak": "very-secret-sk"}, Templates: map[string]string{"ok": "你好 #name#"}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = rdb.Close() }) // after the keys are deleted: cleanups run last first
	prefix := testenv.Prefix(t, rdb)      // the run's keys are deleted when the test ends
	return &production{sim: sim, nats: ns.ClientURL(), env: map[string]string{
		"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://" + redisAddr, "PUSH_REDIS_PREFIX": prefix,
		"MPAAS_ENDPOINT": srv.URL, "MPAAS_AK_ENV": "ak", "MPAAS_SK_ENV": "very-secret-sk",
		"PUSH_HTTP_ADDR": "127.0.0.1:0", "PUSH_LOG_FORMAT": "json", "PUSH_SHUTDOWN_GRACE": "3s",
		"PUSH_RETRY_DELAY": "100ms", "PUSH_ACK_WAIT": "5s",
	}}
}

// start runs the worker in this process until the test ends; it returns its
// log and its HTTP address.
func (p *production) start(t *testing.T) (*syncBuffer, string) {
	t.Helper()
	out, _ := p.launch(t)
	addr := waitFor(t, out, httpAddrRE, 15*time.Second)[1]
	return out, addr
}

// launch runs the worker in this process until the test ends, without waiting
// for it; exited gets run's error if it returns before.
func (p *production) launch(t *testing.T) (out *syncBuffer, exited <-chan error) {
	t.Helper()
	out = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	early := make(chan error, 1)
	go func() {
		err := run(ctx, nil, func(k string) string { return p.env[k] }, out, out)
		early <- err
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker returned %v", err)
		}
	})
	return out, early
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMisconfigurationsAreClearErrors(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	_ = rdb
	ns := testenv.NATS(t)
	closed := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	keys := map[string]string{"MPAAS_AK_ENV": "ak", "MPAAS_SK_ENV": "sk"}
	with := func(extra map[string]string, base ...map[string]string) map[string]string {
		out := map[string]string{"PUSH_HTTP_ADDR": "127.0.0.1:0"}
		for _, b := range base {
			for k, v := range b {
				out[k] = v
			}
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name string
		env  map[string]string
		says []string
	}{
		{"NATS without Redis", with(map[string]string{"NATS_URL": ns.ClientURL()}, keys), []string{"but REDIS_URL is not"}},
		{"no credentials outside dev mode", with(map[string]string{"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://" + testenv.RedisAddr()}),
			[]string{"but MPAAS_AK_ENV and MPAAS_SK_ENV are not"}},
		{"half the credentials", with(map[string]string{"MPAAS_AK_ENV": "ak"}), []string{"MPAAS_SK_ENV"}},
		{"credentials alone", with(nil, keys), []string{"MPAAS_AK_ENV and MPAAS_SK_ENV are set but NATS_URL and REDIS_URL are not"}},
		{"Redis alone", with(map[string]string{"REDIS_URL": "redis://" + testenv.RedisAddr()}), []string{"REDIS_URL is set but NATS_URL, MPAAS_AK_ENV and MPAAS_SK_ENV are not"}},
		{"NATS unreachable", with(map[string]string{"NATS_URL": "nats://" + closed, "REDIS_URL": "redis://" + testenv.RedisAddr()}, keys),
			[]string{"cannot connect to NATS", "check NATS_URL"}},
		{"Redis unreachable", with(map[string]string{"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://:hunter2@" + closed}, keys),
			[]string{"cannot reach Redis", "check REDIS_URL"}},
		{"Redis URL malformed", with(map[string]string{"NATS_URL": ns.ClientURL(), "REDIS_URL": "localhost:6379"}, keys), []string{"REDIS_URL"}},
		{"rate not a number", with(map[string]string{"PUSH_RATE_LIMIT": "fast"}), []string{"PUSH_RATE_LIMIT"}},
		{"bad zone", with(map[string]string{"PUSH_TIMEZONE": "Mars/Olympus"}), []string{"PUSH_TIMEZONE"}},
		{"bad log level", with(map[string]string{"PUSH_LOG_LEVEL": "loud"}), []string{"PUSH_LOG_LEVEL"}},
		{"bad endpoint", with(map[string]string{"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://" + testenv.RedisAddr(), "MPAAS_ENDPOINT": "ftp://x"}, keys), []string{"MPAAS_ENDPOINT"}},
		{"bad endpoint in dev mode", with(map[string]string{"MPAAS_ENDPOINT": "ftp://x"}), []string{"MPAAS_ENDPOINT"}},
		{"cert without key", with(map[string]string{"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://" + testenv.RedisAddr(), "NATS_CERT": "c.pem"}, keys),
			[]string{"NATS_CERT and NATS_KEY"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return c.env[k] }, &out, &out)
			if err == nil {
				t.Fatalf("want an error saying %q, got none; log:\n%s", c.says, out.String())
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(out.String(), "hunter2") {
				t.Fatalf("the Redis password leaked: %v", err)
			}
		})
	}
}

func TestReadyzFlipsWhenRedisStops(t *testing.T) {
	t.Parallel()
	own := testenv.StartRedis(t)
	p := newProduction(t, own.Addr())
	_, addr := p.start(t)
	poll := func(want int) string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(t, "http://"+addr+"/readyz")
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz stayed %d (%s), want %d", code, body, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	poll(200)
	own.Stop()
	if body := poll(503); !strings.Contains(body, "redis") {
		t.Fatalf("/readyz must say it waits for redis: %q", body)
	}
	_, metrics := get(t, "http://"+addr+"/metrics")
	if !strings.Contains(metrics, `pushworker_paused{cause="redis"} 1`) {
		t.Fatal("the pause must show in /metrics")
	}
	own.Start()
	poll(200)
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
}

// metricValue reads one sample from the Prometheus text format.
func metricValue(t *testing.T, text, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func TestMetricsCountAKnownRun(t *testing.T) {
	t.Parallel()
	p := newProduction(t, testenv.RedisAddr())
	_, addr := p.start(t)
	nc, err := nats.Connect(p.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	results, err := js.OrderedConsumer(ctx, "PUSH_RESULTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id, pairs, tmpl string, n int) []byte {
		ts := make(job.Targets, n)
		for i := range ts {
			ts[i] = job.Target{Target: fmt.Sprintf("%s-%d", pairs, i), MsgKey: "k"}
		}
		j := &job.Job{JobID: id, TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: tmpl, TemplateKeyValue: job.Object(`{"name":"张三"}`), TargetMsgkey: ts}
		b, _ := j.Encode()
		return b
	}
	publish := func(subject string, body []byte) {
		if _, err := js.Publish(ctx, subject, body); err != nil {
			t.Fatal(err)
		}
	}
	publish("push.jobs.orders", mk("m-ok", "p1", "ok", 25))    // 3 chunks sent
	publish("push.jobs.bulk.c1", mk("m-bulk", "p2", "ok", 5))  // 1 chunk sent, bulk lane
	publish("push.jobs.orders", mk("m-fail", "p3", "nope", 3)) // 1 chunk failed: unknown template
	publish("push.jobs.orders", []byte(`{"jobId":"m-bad"}`))   // rejected
	publish("push.jobs.orders", mk("m-more", "p4", "ok", 25))  // 3 chunks sent
	for range 5 {
		if _, err := results.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	publish("push.jobs.orders", mk("m-again", "p1", "ok", 25)) // m-ok's 25 pairs under another job id: all duplicates
	if _, err := results.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_, text := get(t, "http://"+addr+"/metrics")
	want := map[string]float64{
		`pushworker_jobs_total{lane="default",status="succeeded"}`:                                      3,
		`pushworker_jobs_total{lane="bulk",status="succeeded"}`:                                         1,
		`pushworker_jobs_total{lane="default",status="failed"}`:                                         1,
		`pushworker_jobs_total{lane="default",status="rejected"}`:                                       1,
		`pushworker_chunks_total{lane="default",status="sent"}`:                                         6,
		`pushworker_dedupe_hits_total{lane="default"}`:                                                  25,
		`pushworker_chunks_total{lane="bulk",status="sent"}`:                                            1,
		`pushworker_chunks_total{lane="default",status="failed"}`:                                       1,
		`pushworker_mpaas_calls_total{api="PushTemplate",class="success",code="OK",lane="default"}`:     6,
		`pushworker_mpaas_calls_total{api="PushTemplate",class="job_fault",code="3022",lane="default"}`: 1,
		`pushworker_mpaas_calls_total{api="PushTemplate",class="success",code="OK",lane="bulk"}`:        1,
		`pushworker_dead_letters_total{lane="default",reason="rejected"}`:                               1,
		`pushworker_dead_letters_total{lane="default",reason="failed"}`:                                 1,
		`pushworker_mpaas_call_seconds_count`:                                                           8,
		`pushworker_calls_in_flight`:                                                                    0,
		`pushworker_paused{cause="redis"}`:                                                              0,
	}
	for sample, v := range want {
		if got := metricValue(t, text, sample); got != v {
			t.Errorf("%s = %v, want %v", sample, got, v)
		}
	}
	if strings.Contains(text, "very-secret-sk") || strings.Contains(text, "张三") {
		t.Fatal("/metrics exposes a secret or a template value")
	}
}

// The README's first two commands, as processes: the dev-mode worker, then
// enqueue --wait; then SIGTERM stops the worker with exit status 0.
func TestDevModeWorkerAndEnqueueAsProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range []string{"worker", "enqueue"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../"+cmd)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", cmd, err, out)
		}
	}
	port := testenv.FreePort(t)
	worker := exec.Command(filepath.Join(dir, "worker"))
	worker.Dir = dir
	worker.Env = append(os.Environ(), "PUSH_DEV_NATS_PORT="+strconv.Itoa(port), "PUSH_HTTP_ADDR=127.0.0.1:0",
		"NATS_URL=", "REDIS_URL=", "MPAAS_AK_ENV=", "MPAAS_SK_ENV=")
	out := &syncBuffer{}
	worker.Stdout, worker.Stderr = out, out
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- worker.Wait() }()
	t.Cleanup(func() { _ = worker.Process.Kill() })
	waitFor(t, out, regexp.MustCompile(`worker started`), 20*time.Second)
	for _, says := range []string{"dev mode: embedded NATS", "dev mode: in-memory dedupe", "dev mode: pushes go to the built-in mPaaS emulator"} {
		if !strings.Contains(out.String(), says) {
			t.Fatalf("dev mode must say %q at start:\n%s", says, out.String())
		}
	}

	enqueue := exec.Command(filepath.Join(dir, "enqueue"), "--wait", "--timeout", "30s", "../../examples/job.json")
	enqueue.Env = append(os.Environ(), fmt.Sprintf("NATS_URL=nats://127.0.0.1:%d", port))
	var stdout, stderr bytes.Buffer
	enqueue.Stdout, enqueue.Stderr = &stdout, &stderr
	if err := enqueue.Run(); err != nil {
		t.Fatalf("enqueue --wait: %v\n%s\nworker:\n%s", err, stderr.String(), out.String())
	}
	var r job.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.JobID != "order-8812-paid" || r.Status != job.StatusSucceeded || r.Sent != 1 {
		t.Fatalf("enqueue printed %s (%v)", stdout.String(), err)
	}

	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the worker must exit 0 on SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop within 30s of SIGTERM")
	}
}

func TestDevModeEndpointsStayOnLoopback(t *testing.T) {
	if host, _, _ := strings.Cut(config.DefaultDevHTTPAddr, ":"); host != "127.0.0.1" {
		t.Fatalf("dev mode must listen on loopback, not %q", config.DefaultDevHTTPAddr)
	}
}

// The AccessKey secret can come from a file, as orchestrators mount secrets.
func TestAccessKeySecretFromAFile(t *testing.T) {
	t.Parallel()
	p := newProduction(t, testenv.RedisAddr())
	path := filepath.Join(t.TempDir(), "sk")
	if err := os.WriteFile(path, []byte(p.env["MPAAS_SK_ENV"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(p.env, "MPAAS_SK_ENV")
	p.env["MPAAS_SK_ENV_FILE"] = path
	p.start(t)
	nc, err := nats.Connect(p.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	results, err := js.OrderedConsumer(context.Background(), "PUSH_RESULTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	j := &job.Job{JobID: "from-file", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "ok", TemplateKeyValue: job.Object(`{"name":"x"}`), TargetMsgkey: job.Targets{{Target: "u", MsgKey: "k"}}}
	body, _ := j.Encode()
	if _, err := js.Publish(context.Background(), "push.jobs.a", body); err != nil {
		t.Fatal(err)
	}
	m, err := results.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var r job.Result
	if err := json.Unmarshal(m.Data(), &r); err != nil || r.Sent != 1 {
		t.Fatalf("a push signed with the secret from the file must succeed: %s", m.Data())
	}
}

// A worker started before its JetStream cluster can take R3 streams (one node
// of three up: no leader) waits for it, unready and saying why, and comes up
// once the other nodes join, instead of exiting.
func TestWorkerWaitsForTheJetStreamCluster(t *testing.T) {
	testenv.Redis(t)
	p := newProduction(t, testenv.RedisAddr())
	names := []string{"w1", "w2", "w3"}
	clientPorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	var routes []string
	routePorts := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	for _, port := range routePorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", port))
	}
	node := func(i int) *server.Server {
		ns, err := server.NewServer(&server.Options{ServerName: names[i], Host: "127.0.0.1", Port: clientPorts[i], JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			Cluster: server.ClusterOpts{Name: "waits", Host: "127.0.0.1", Port: routePorts[i]}})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("node not ready")
		}
		return ns
	}
	node(0)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p.env["NATS_URL"] = fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[0])
	p.env["PUSH_REPLICAS"] = "3"
	p.env["PUSH_HTTP_ADDR"] = httpAddr
	out, exited := p.launch(t)
	waitFor(t, out, regexp.MustCompile(`waiting for JetStream to create the topology`), 60*time.Second)
	if code, body := get(t, "http://"+httpAddr+"/readyz"); code != 503 || !strings.Contains(body, "streams") {
		t.Fatalf("/readyz while waiting: %d %q, want 503 naming streams", code, body)
	}
	select {
	case err := <-exited:
		t.Fatalf("the worker exited while the cluster formed: %v\n%s", err, out.String())
	default:
	}
	node(1)
	node(2)
	waitFor(t, out, regexp.MustCompile(`worker started`), 90*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, "http://"+httpAddr+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the cluster formed: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
