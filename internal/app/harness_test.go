package app_test

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

	"github.com/mpaas-push/pushworker/internal/app"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

const (
	keyID     = "LTAI-harness"
	keySecret = "harness-secret"
)

// harness is one embedded NATS server, the machine's Redis under a key prefix of
// the test's own, and the mPaaS emulator over HTTP; workers are started on it.
type harness struct {
	t         *testing.T
	ns        *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	sim       *mpaassim.Server
	simURL    string
	redisAddr string
	prefix    string
	topo      consumer.Topology
	results   jetstream.Consumer // ordered consumers on the streams, as a result consumer reads them
	dlq       jetstream.Consumer
}

type setup struct {
	faults    mpaassim.Faults
	templates map[string]string
	redisAddr string // default: the machine's
	natsURL   string // default: an embedded server
	topology  consumer.Topology
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	h := &harness{t: t}
	rdb := testenv.Redis(t)
	h.prefix = testenv.Prefix(t, rdb)
	h.redisAddr = testenv.RedisAddr()
	if s.redisAddr != "" {
		h.redisAddr = s.redisAddr
	}
	url := s.natsURL
	if url == "" {
		h.ns = testenv.NATS(t)
		url = h.ns.ClientURL()
	}
	h.nc = h.connect(url)
	var err error
	if h.js, err = jetstream.New(h.nc); err != nil {
		t.Fatal(err)
	}
	cfg := mpaassim.Config{Keys: map[string]string{keyID: keySecret}, Faults: s.faults,
		Templates: s.templates, AcceptAnyTemplate: s.templates == nil}
	h.sim = mpaassim.New(cfg)
	srv := httptest.NewServer(h.sim)
	t.Cleanup(srv.Close)
	h.simURL = srv.URL
	h.topo = s.topology
	if h.topo.Root == "" {
		h.topo = consumer.DefaultTopology()
	}
	return h
}

// reader is an ordered consumer on a stream the first worker created.
func (h *harness) reader(stream string) jetstream.Consumer {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatalf("reading stream %s: %v", stream, err)
	}
	return c
}

func next(c jetstream.Consumer, timeout time.Duration) (jetstream.Msg, error) {
	return c.Next(jetstream.FetchMaxWait(timeout))
}

func (h *harness) connect(url string) *nats.Conn {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

// workerOpts are the defaults of a test worker: short waits so that tests run fast.
func (h *harness) workerOpts() app.Options {
	return app.Options{
		RateLimit:   2000,
		RedisPrefix: h.prefix,
		Consumer: consumer.Config{
			Topology: h.topo,
			Limits: func() consumer.Limits {
				l := consumer.DefaultLimits()
				// JetStream reserves each stream's size on the server: tests keep it small.
				l.JobsMaxBytes, l.ResultsMaxBytes, l.DLQMaxBytes = 64<<20, 64<<20, 64<<20
				l.AckWait = 3 * time.Second
				l.MaxDeliver = 4
				return l
			}(),
			RetryDelay: 100 * time.Millisecond,
			FetchWait:  500 * time.Millisecond,
			Grace:      5 * time.Second,
		},
		Processor: worker.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, ProbeMax: 500 * time.Millisecond},
	}
}

// runningWorker is a worker with connections of its own, as a separate process has.
type runningWorker struct {
	w      *app.Worker
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *harness) startWorker(mutate ...func(*app.Options)) *runningWorker {
	h.t.Helper()
	o := h.workerOpts()
	for _, m := range mutate {
		m(&o)
	}
	url := h.nc.ConnectedUrl()
	rw := &runningWorker{nc: h.connect(url), done: make(chan struct{})}
	o.NATS = rw.nc
	if o.Redis == nil {
		rdb := redis.NewClient(&redis.Options{Addr: h.redisAddr, DialTimeout: 300 * time.Millisecond,
			ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
		h.t.Cleanup(func() { rdb.Close() })
		o.Redis = rdb
	}
	if o.Pusher == nil {
		c, err := push.New(push.Config{Endpoint: h.simURL, AccessKeyID: keyID, AccessKeySecret: keySecret, Timeout: 2 * time.Second})
		if err != nil {
			h.t.Fatal(err)
		}
		o.Pusher = c
	}
	if o.Log == nil {
		o.Log = zaptest.NewLogger(h.t, zaptest.Level(zap.WarnLevel))
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := app.New(ctx, o)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	rw.w, rw.cancel = w, cancel
	go func() { w.Run(ctx); close(rw.done) }()
	h.t.Cleanup(rw.stop)
	return rw
}

// stop stops the worker as SIGTERM does and waits for it.
func (rw *runningWorker) stop() {
	rw.cancel()
	<-rw.done
}

// kill drops the worker's connection at once: no ack, no result, as a crash would.
func (rw *runningWorker) kill() {
	rw.nc.Close()
	rw.cancel()
}

func (h *harness) publish(subject string, body []byte, msgID string) {
	h.t.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		h.t.Fatalf("publish to %s: %v", subject, err)
	}
}

func (h *harness) publishJob(subject string, j *job.Job) {
	h.t.Helper()
	body, err := j.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	h.publish(subject, body, "")
}

// result waits for the next result.
func (h *harness) result(timeout time.Duration) job.Result {
	h.t.Helper()
	if h.results == nil {
		h.results = h.reader(h.topo.ResultsStream)
	}
	m, err := next(h.results, timeout)
	if err != nil {
		h.t.Fatalf("no result within %s: %v", timeout, err)
	}
	var r job.Result
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		h.t.Fatalf("result is not JSON: %v\n%s", err, m.Data())
	}
	if r.Targets != r.Sent+r.Duplicates+r.Failed {
		h.t.Fatalf("result breaks targets = sent + duplicates + failed: %+v", r)
	}
	if m.Headers().Get(jetstream.MsgIDHeader) != r.JobID {
		h.t.Fatalf("result's Nats-Msg-Id %q is not its job id %q", m.Headers().Get(jetstream.MsgIDHeader), r.JobID)
	}
	return r
}

// resultsFor waits for one result of each job id and fails on a second one.
func (h *harness) resultsFor(ids []string, timeout time.Duration) map[string]job.Result {
	h.t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]job.Result{}
	deadline := time.Now().Add(timeout)
	for len(got) < len(want) {
		left := time.Until(deadline)
		if left <= 0 {
			h.t.Fatalf("%d of %d results after %s", len(got), len(want), timeout)
		}
		r := h.result(left)
		if !want[r.JobID] {
			h.t.Fatalf("result for an unknown job %q", r.JobID)
		}
		if _, dup := got[r.JobID]; dup {
			h.t.Fatalf("a second result for job %s", r.JobID)
		}
		got[r.JobID] = r
	}
	return got
}

func (h *harness) noMoreResults(wait time.Duration) {
	h.t.Helper()
	if h.results == nil {
		h.results = h.reader(h.topo.ResultsStream)
	}
	if m, err := next(h.results, wait); err == nil {
		h.t.Fatalf("unexpected result: %s", m.Data())
	}
}

func (h *harness) deadLetter(timeout time.Duration) jetstream.Msg {
	h.t.Helper()
	if h.dlq == nil {
		h.dlq = h.reader(h.topo.DLQStream)
	}
	m, err := next(h.dlq, timeout)
	if err != nil {
		h.t.Fatalf("no dead letter within %s: %v", timeout, err)
	}
	return m
}

// newJob is a valid job of n targets whose names carry tag.
func newJob(id, tag string, n int) *job.Job {
	t := make(job.Targets, n)
	for i := range t {
		t[i] = job.Target{Target: fmt.Sprintf("%s-u%03d", tag, i), MsgKey: "m-" + tag}
	}
	return &job.Job{JobID: id, TaskName: "test " + tag, AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: t, ExpiredSeconds: 300, TemplateName: "测试模板",
		TemplateKeyValue: job.Object(`{"money":"200","name":"张三"}`)}
}

// delivered checks that every target of j reached mPaaS exactly once.
func (h *harness) deliveredOnce(j *job.Job) {
	h.t.Helper()
	for _, t := range j.TargetMsgkey {
		if n := h.sim.Delivered(j.AppID, j.WorkspaceID, t.Target, t.MsgKey); n != 1 {
			h.t.Fatalf("%s delivered %d times, want 1", t.Target, n)
		}
	}
}

// callSizes lists the number of targets of each PushTemplate call the emulator took.
func (h *harness) callSizes() []int {
	var sizes []int
	for _, c := range h.sim.Calls() {
		var m map[string]string
		if err := json.Unmarshal([]byte(c.Params["TargetMsgkey"]), &m); err == nil {
			sizes = append(sizes, len(m))
		}
	}
	return sizes
}
