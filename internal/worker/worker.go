package worker

import (
	"context"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/recall"
	"github.com/mpaas-push/pushworker/topology"
)

// Options are what a caller gives besides the configuration. All are optional;
// tests use them to share a connection, cut one, or shorten the waits.
type Options struct {
	Log      io.Writer             // where logs go; default os.Stdout
	Logger   *zap.Logger           // instead of a logger built from the configuration
	NATS     *nats.Conn            // instead of connecting to cfg.NATS (the caller closes it)
	Redis    redis.UniversalClient // instead of connecting to cfg.Redis (the caller closes it)
	Pusher   pipeline.Pusher       // instead of the mPaaS client from cfg
	Topology topology.Topology     // default topology.Default()
	// Traces receives the worker's spans instead of what the OTEL_* variables
	// ask for (tests: an in-memory exporter).
	Traces trace.TracerProvider
	// Tune adjusts the parts' configurations after they are made from cfg (tests:
	// short waits, small streams).
	Tune func(*Parts)
}

// Parts are the configurations of the long-running parts, as made from the
// worker's configuration.
type Parts struct {
	Consumer consumer.Config
	Pipeline pipeline.Config
}

// Worker is one wired worker process.
type Worker struct {
	cfg     *config.Worker
	log     *zap.Logger
	stopLog func() // the log's buffer, when New made the logger
	gate    *pause.Gate
	metrics *metrics.Metrics
	desc    map[string]string // what the start line says it connected to
	keyName string            // the one AccessKey's id, its first characters (none with a credentials file)
	closers []func()          // in order of opening; Close runs them backwards

	nc       *nats.Conn
	http     *httpServer
	control  *campaign.Watcher
	pipe     *pipeline.Pipeline
	consumer *consumer.Consumer

	// The parts that run beside the consumer: those that stop with Run's
	// context, and those that jobs need, which stop only after the consumer has.
	beside, needed []part

	worker    string // host:pid, how the worker names itself in its answers
	version   string
	started   time.Time
	serviceID atomic.Value // string: the NATS service instance's id, once it is added
}

// part is what runs beside the consumer: it works until ctx ends, then returns.
// Its owner (Run) starts it and waits for it.
type part interface{ Run(ctx context.Context) }

// New connects, or starts dev mode's servers, sets up the topology and makes
// the parts, in that order; nothing runs before Run but the HTTP endpoints and
// the NATS service, which answer from here on. Close releases everything, also
// after an error.
func New(ctx context.Context, cfg *config.Worker, o Options) (s *Worker, err error) {
	host, _ := os.Hostname()
	s = &Worker{cfg: cfg, desc: map[string]string{}, metrics: metrics.New(), started: time.Now(),
		worker: host + ":" + strconv.Itoa(os.Getpid()), version: version()}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if err = s.openLog(o); err != nil {
		return s, err
	}
	s.gate = pause.NewGate(s.paused, s.resumed)
	pusher, err := s.openMPaaS(o)
	if err != nil {
		return s, err
	}
	if err = s.openNATS(o); err != nil {
		return s, err
	}
	st, err := s.openStores(ctx, o)
	if err != nil {
		return s, err
	}
	tp, err := s.openTracing(ctx, o)
	if err != nil {
		return s, err
	}
	parts := s.parts(o, tp)
	topo := parts.Consumer.Topology.OrDefault()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return s, err
	}
	if err = s.openHTTP(); err != nil { // /readyz says why while the topology waits
		return s, err
	}
	kv, err := s.campaignBucket(ctx, js, topo.CampaignsBucket)
	if err != nil {
		return s, err
	}
	s.control = campaign.NewWatcher(kv, s.log)
	unparker := campaign.NewUnparker(js, topo, s.control, s.log)
	parts.Pipeline.Campaigns, parts.Pipeline.Pace = s.control, st.pace
	parts.Consumer.OnParked, parts.Consumer.OnResult = unparker.Parked, tally{topo, st.totals, s.log}.count
	s.pipe = pipeline.New(parts.Pipeline, st.dedupe, st.limiter, pusher, s.gate, s.log, s.metrics)
	s.closers = append(s.closers, s.pipe.Close)
	rc, _ := pusher.(recall.Recaller) // nil: a given client that cannot recall, whose recall jobs are rejected
	jobs := consumer.Mux{Topology: topo, Push: s.pipe,
		Recall: recall.New(parts.Pipeline, st.dedupe, st.limiter, rc, s.pipe.Slots(), s.gate, s.log, s.metrics)}
	if s.consumer, err = s.openConsumer(ctx, js, parts.Consumer, jobs); err != nil {
		return s, err
	}
	admin, err := s.openEndpoints(topo, st, pusher, parts.Pipeline)
	if err != nil {
		return s, err
	}
	s.beside = []part{&monitor{rdb: st.rdb, nc: s.nc, gate: s.gate, metrics: s.metrics, control: s.control}}
	s.needed = append(st.parts, s.control, unparker, &laneWatch{consumer: s.consumer, metrics: s.metrics, log: s.log}, admin)
	return s, nil
}

// ControlWait is how long a starting worker waits for the campaign control
// bucket's values before it fetches jobs.
const ControlWait = 10 * time.Second

// Run works until ctx ends, then stops fetching, finishes or hands back what is
// in flight, and returns. The parts that jobs need (the limiter's dispenser, the
// campaigns' control, the endpoints) stop only after the queue has.
func (s *Worker) Run(ctx context.Context) {
	rate := zap.Int("rate_limit", s.cfg.RateLimit)
	if len(s.cfg.Credentials) > 0 && !s.cfg.RateLimitSet {
		rate = zap.String("rate_limit", "each credential's own (no cap over them)")
	}
	s.log.Info("worker started", zap.String("nats", s.desc["nats"]), zap.String("redis", s.desc["redis"]),
		zap.String("mpaas", s.desc["mpaas"]), rate, zap.String("http", "http://"+s.http.addr+"/metrics /healthz /readyz"))
	after, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	start := func(ctx context.Context, parts []part) {
		for _, p := range parts {
			wg.Add(1)
			go func() { defer wg.Done(); p.Run(ctx) }()
		}
	}
	start(ctx, s.beside)
	start(after, s.needed)
	// Fetch nothing before the campaigns' states are known: a paused campaign's
	// job must not start.
	select {
	case <-s.control.Ready():
	case <-ctx.Done():
	case <-time.After(ControlWait):
		s.log.Warn("campaign control not read yet: starting anyway; jobs of paused campaigns may start until it is", zap.Duration("waited", ControlWait))
	}
	s.consumer.Run(ctx)
	stopAfter()
	wg.Wait()
	s.log.Info("stopped fetching; jobs in flight finished or handed back")
}

// Close releases what New opened, newest first.
func (s *Worker) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.log != nil {
		_ = s.log.Sync()
	}
	if s.stopLog != nil {
		s.stopLog()
		s.stopLog = nil
	}
}

// Gate tells what the worker waits for.
func (s *Worker) Gate() *pause.Gate { return s.gate }

// HTTPAddr is where /metrics, /healthz and /readyz listen.
func (s *Worker) HTTPAddr() string { return s.http.addr }

func (s *Worker) paused(cause pause.Cause, err error) {
	s.log.Warn("paused: waiting for "+string(cause), zap.String("cause", string(cause)), zap.Error(err))
	s.metrics.Paused(string(cause), true)
}

func (s *Worker) resumed(cause pause.Cause) {
	s.log.Info("resumed: "+string(cause)+" is back", zap.String("cause", string(cause)))
	s.metrics.Paused(string(cause), false)
}
