// Package teststack is the tests' way to run workers against real servers. Stack
// runs workers in the test's process, wired by internal/worker exactly as
// cmd/worker wires them, on an embedded NATS server (or the machine's), the
// machine's Redis (or the test's own) and the mPaaS emulator over HTTP. Process
// runs cmd/worker as a separate process, for the chaos suite, the bench and the
// command tests.
//
// It may import internal/worker and what wires it; nothing but tests imports it.
package teststack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/settings"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// The emulator's account in every harness.
const (
	KeyID     = "LTAI-harness"
	KeySecret = "harness-secret"
)

// TestStreamBytes is the size of each test stream: JetStream reserves a
// stream's MaxBytes on the server, and the machine's server has little storage.
const TestStreamBytes = 64 << 20

// Setup describes a Stack; the zero value is an embedded NATS server, the
// machine's Redis and an emulator that accepts any template.
type Setup struct {
	Faults    mpaassim.Faults
	Templates map[string]string // nil: any template is accepted
	HexIDs    bool              // the emulator's immediate pushes answer 32-hex task ids (mpaassim.Config.HexTaskIDs)
	RedisAddr string            // default: the machine's
	NATSURL   string            // default: an embedded server; when set, a topology of the test's own
	Topology  topology.Topology // default: topology.Default() on an embedded server
	Keys      map[string]string // AccessKeys the emulator accepts besides KeyID (id → secret)
	// Env overrides the workers' settings of Config (an empty value unsets one):
	// MPAAS_CREDENTIALS_FILE instead of MPAAS_AK_ENV, for instance.
	Env map[string]string
}

// Stack is one NATS server, one Redis under a key prefix of the test's own, and
// the emulator; workers are started on it.
type Stack struct {
	T         testing.TB
	NS        *server.Server // nil on the machine's NATS
	NC        *nats.Conn
	JS        jetstream.JetStream
	Sim       *mpaassim.Server
	SimURL    string
	RedisAddr string
	Prefix    string
	Topo      topology.Topology
	env       map[string]string // Setup.Env

	results, dlq *InOrder // ordered consumers, as a result consumer reads the streams
}

// New starts a Stack; everything it made is removed when the test ends.
func New(t testing.TB, s Setup) *Stack {
	t.Helper()
	h := &Stack{T: t, Topo: topology.Default()}
	rdb := testenv.Redis(t)
	h.Prefix = testenv.Prefix(t, rdb)
	h.RedisAddr = testenv.RedisAddr()
	if s.RedisAddr != "" {
		h.RedisAddr = s.RedisAddr
	}
	url := s.NATSURL
	if url == "" {
		h.NS = testenv.NATS(t)
		url = h.NS.ClientURL()
	} else {
		h.Topo = topology.Default().Suffixed("T" + testenv.ID())
	}
	if s.Topology.Root != "" {
		h.Topo = s.Topology
	}
	h.NC = h.Connect(url)
	var err error
	if h.JS, err = jetstream.New(h.NC); err != nil {
		t.Fatal(err)
	}
	if s.NATSURL != "" {
		t.Cleanup(func() {
			testenv.DeleteStreams(t, h.JS, h.Topo.JobsStream, h.Topo.ResultsStream, h.Topo.DLQStream,
				h.Topo.ParkedStream, "KV_"+h.Topo.CampaignsBucket)
		})
	}
	h.env = s.Env
	keys := map[string]string{KeyID: KeySecret}
	for id, secret := range s.Keys {
		keys[id] = secret
	}
	h.Sim = mpaassim.New(mpaassim.Config{Keys: keys, Faults: s.Faults,
		Templates: s.Templates, AcceptAnyTemplate: s.Templates == nil, HexTaskIDs: s.HexIDs})
	srv := httptest.NewServer(h.Sim)
	t.Cleanup(srv.Close)
	h.SimURL = srv.URL
	return h
}

// Connect is a connection to the stack's server that reconnects for ever.
func (h *Stack) Connect(url string) *nats.Conn {
	h.T.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(nc.Close)
	return nc
}

// Config is a test worker's configuration: production mode against this stack,
// parsed from the same table as cmd/worker's, with short waits.
func (h *Stack) Config() *config.Worker {
	h.T.Helper()
	env := map[string]string{
		"NATS_URL": h.NC.ConnectedUrl(), "REDIS_URL": "redis://" + h.RedisAddr, "PUSH_REDIS_PREFIX": h.Prefix,
		"MPAAS_ENDPOINT": h.SimURL, "MPAAS_AK_ENV": KeyID, "MPAAS_SK_ENV": KeySecret, "PUSH_MPAAS_TIMEOUT": "2s",
		"PUSH_RATE_LIMIT": "2000", "PUSH_HTTP_ADDR": "127.0.0.1:0", "PUSH_ACK_WAIT": "3s", "PUSH_MAX_DELIVER": "4",
		"PUSH_RETRY_DELAY": "100ms", "PUSH_SHUTDOWN_GRACE": "5s", "PUSH_JOBS_MAX_BYTES": settings.FormatBytes(TestStreamBytes),
	}
	for k, v := range h.env {
		env[k] = v
	}
	cfg, err := config.ParseWorker(nil, func(k string) string { return env[k] }, "", nil)
	if err != nil {
		h.T.Fatal(err)
	}
	return cfg
}

// Worker is a worker running in the test's process, with connections of its
// own, as a separate process has.
type Worker struct {
	*worker.Worker
	NC     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

// WorkerSetup is what StartWorker's mutators may change.
type WorkerSetup struct {
	Config  *config.Worker
	Options worker.Options
}

// StartWorker starts a worker until the test ends.
func (h *Stack) StartWorker(mutate ...func(*WorkerSetup)) *Worker {
	h.T.Helper()
	ws := &WorkerSetup{Config: h.Config()}
	ws.Options.Topology = h.Topo
	ws.Options.Tune = func(p *worker.Parts) {
		p.Consumer.FetchWait = 500 * time.Millisecond
		p.Consumer.Limits.ResultsMaxBytes, p.Consumer.Limits.DLQMaxBytes = TestStreamBytes, TestStreamBytes
		p.Pipeline.Call = retry.Exponential{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: 0.5}
		p.Pipeline.Probe = retry.Exponential{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	}
	for _, m := range mutate {
		m(ws)
	}
	w := &Worker{NC: h.Connect(h.NC.ConnectedUrl()), done: make(chan struct{})}
	o := ws.Options
	o.NATS = w.NC
	if o.Redis == nil {
		// Short timeouts, so that tests which stop Redis see it go quickly.
		rdb := redis.NewClient(&redis.Options{Addr: h.RedisAddr, DialTimeout: 300 * time.Millisecond,
			ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
		h.T.Cleanup(func() { rdb.Close() })
		o.Redis = rdb
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(h.T, zaptest.Level(zap.WarnLevel))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := worker.New(ctx, ws.Config, o)
	if err != nil {
		cancel()
		h.T.Fatal(err)
	}
	w.Worker, w.cancel = s, cancel
	go func() { s.Run(ctx); s.Close(); close(w.done) }()
	h.T.Cleanup(w.Stop)
	return w
}

// Stop stops the worker as SIGTERM does and waits for it.
func (w *Worker) Stop() {
	w.cancel()
	<-w.done
}

// Kill drops the worker's connection at once: no ack, no result, as a crash would.
func (w *Worker) Kill() {
	w.NC.Close()
	w.cancel()
}

// Publish stores a message on the stack's server, with a Nats-Msg-Id when msgID is set.
func (h *Stack) Publish(subject string, body []byte, msgID string) {
	h.T.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.JS.PublishMsg(ctx, m); err != nil {
		h.T.Fatalf("publish to %s: %v", subject, err)
	}
}

// PublishJob publishes j on subject.
func (h *Stack) PublishJob(subject string, j *job.Job) {
	h.T.Helper()
	body, err := j.Encode()
	if err != nil {
		h.T.Fatal(err)
	}
	h.Publish(subject, body, "")
}

// Reader is an ordered consumer on a stream a worker created.
func (h *Stack) Reader(stream string) jetstream.Consumer {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.T.Fatalf("reading stream %s: %v", stream, err)
	}
	return c
}

// Result waits for the next result and checks what every result must hold.
func (h *Stack) Result(timeout time.Duration) job.Result {
	h.T.Helper()
	if h.results == nil {
		h.results = NewInOrder(h.Reader(h.Topo.ResultsStream))
	}
	m, err := h.results.Next(timeout)
	if err != nil {
		h.T.Fatalf("no result within %s: %v", timeout, err)
	}
	var r job.Result
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		h.T.Fatalf("result is not JSON: %v\n%s", err, m.Data())
	}
	if r.Targets != r.Sent+r.Duplicates+r.Failed {
		h.T.Fatalf("result breaks targets = sent + duplicates + failed: %+v", r)
	}
	if m.Headers().Get(jetstream.MsgIDHeader) != r.JobID {
		h.T.Fatalf("result's Nats-Msg-Id %q is not its job id %q", m.Headers().Get(jetstream.MsgIDHeader), r.JobID)
	}
	return r
}

// ResultsFor waits for one result of each job id and fails on a second one.
func (h *Stack) ResultsFor(ids []string, timeout time.Duration) map[string]job.Result {
	h.T.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]job.Result{}
	deadline := time.Now().Add(timeout)
	for len(got) < len(want) {
		left := time.Until(deadline)
		if left <= 0 {
			h.T.Fatalf("%d of %d results after %s", len(got), len(want), timeout)
		}
		r := h.Result(left)
		if !want[r.JobID] {
			h.T.Fatalf("result for an unknown job %q", r.JobID)
		}
		if _, dup := got[r.JobID]; dup {
			h.T.Fatalf("a second result for job %s", r.JobID)
		}
		got[r.JobID] = r
	}
	return got
}

// NoMoreResults fails when a result comes within wait.
func (h *Stack) NoMoreResults(wait time.Duration) {
	h.T.Helper()
	if h.results == nil {
		h.results = NewInOrder(h.Reader(h.Topo.ResultsStream))
	}
	if m, err := h.results.Next(wait); err == nil {
		h.T.Fatalf("unexpected result: %s", m.Data())
	}
}

// DeadLetter waits for the next dead letter.
func (h *Stack) DeadLetter(timeout time.Duration) jetstream.Msg {
	h.T.Helper()
	if h.dlq == nil {
		h.dlq = NewInOrder(h.Reader(h.Topo.DLQStream))
	}
	m, err := h.dlq.Next(timeout)
	if err != nil {
		h.T.Fatalf("no dead letter within %s: %v", timeout, err)
	}
	return m
}

// NewJob is a valid job of n targets whose names carry tag.
func NewJob(id, tag string, n int) *job.Job {
	t := make(job.Targets, n)
	for i := range t {
		t[i] = job.Target{Target: fmt.Sprintf("%s-u%03d", tag, i), MsgKey: "m-" + tag}
	}
	return &job.Job{JobID: id, TaskName: "test " + tag, AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: t, ExpiredSeconds: 300, TemplateName: "测试模板",
		TemplateKeyValue: job.Object(`{"money":"200","name":"张三"}`)}
}

// NewMultipleJob is a valid targetMsgs job of n targets whose names carry tag,
// each with its own template values.
func NewMultipleJob(id, tag string, n int) *job.Job {
	j := NewJob(id, tag, 0)
	j.TemplateKeyValue = nil
	for i := range n {
		j.TargetMsgs = append(j.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("%s-u%03d", tag, i), MsgKey: "m-" + tag,
			TemplateKeyValue: job.ObjectOf([]string{"name", "money"}, []string{fmt.Sprintf("用户%d", i), fmt.Sprint(i)})})
	}
	return j
}

// DeliveredOnce checks that every target of j reached mPaaS exactly once.
func (h *Stack) DeliveredOnce(j *job.Job) {
	h.T.Helper()
	for _, t := range j.Pairs() {
		if n := h.Sim.Delivered(j.AppID, j.WorkspaceID, t.Target, t.MsgKey); n != 1 {
			h.T.Fatalf("%s delivered %d times, want 1", t.Target, n)
		}
	}
}

// CallSizes lists the number of targets of each call the emulator took, of
// either action, in the order they arrived.
func (h *Stack) CallSizes() []int {
	var sizes []int
	for _, c := range h.Sim.Calls() {
		var m map[string]string
		if err := json.Unmarshal([]byte(c.Params["TargetMsgkey"]), &m); err == nil {
			sizes = append(sizes, len(m))
			continue
		}
		n := 0
		for c.Params[fmt.Sprintf("TargetMsg.%d.Target", n+1)] != "" {
			n++
		}
		if n > 0 {
			sizes = append(sizes, n)
		}
	}
	return sizes
}
