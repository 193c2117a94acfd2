// Package service wires one worker process together from its configuration:
// the connections (or, in dev mode, an embedded NATS server, in-memory stores and
// the mPaaS emulator), the stores, the pipeline, the queue, metrics and the HTTP
// endpoints. cmd/worker parses the configuration and calls Run; the tests start
// workers through New, so that they run what ships.
package service

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/connect"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/health"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/rbatch"
	"github.com/mpaas-push/pushworker/internal/recall"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/job"
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

// Service is one wired worker.
type Service struct {
	cfg      *config.Worker
	log      *zap.Logger
	stopLog  func() // the log's buffer, when New made the logger
	gate     *health.Gate
	metrics  *metrics.Metrics
	nc       *nats.Conn
	rdb      redis.UniversalClient
	batch    *rbatch.Batcher // round trips shared by the calls' claims and marks and the campaign totals
	consumer *consumer.Consumer
	limiter  *ratelimit.Redis // nil in dev mode (in-memory limiter)
	control  *campaign.Watcher
	unparker *campaign.Unparker // moves a campaign's parked jobs back once it is not paused
	http     *httpServer
	desc     map[string]string // what the start line says it connected to
	closers  []func()          // in order of opening; Close runs them backwards

	pipe      *pipeline.Pipeline
	worker    string // host:pid, how the worker names itself in its answers
	version   string
	started   time.Time
	serviceID string // the NATS service instance's id
}

// New connects, or starts dev mode's servers, and sets up the topology. Close
// releases everything, also after an error.
func New(ctx context.Context, cfg *config.Worker, o Options) (s *Service, err error) {
	host, _ := os.Hostname()
	s = &Service{cfg: cfg, desc: map[string]string{}, metrics: metrics.New(), started: time.Now(),
		worker: host + ":" + strconv.Itoa(os.Getpid()), version: version()}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if s.log = o.Logger; s.log == nil {
		if s.log, s.stopLog, err = newLogger(cfg, o.Log); err != nil {
			return s, err
		}
	}
	redis.SetLogger(discardRedisLog{}) // go-redis's own logger prints to stderr; its errors reach our log through the worker
	s.gate = health.NewGate(s.paused, s.resumed)

	pusher, err := s.pusher(o)
	if err != nil {
		return s, err
	}
	if s.nc = o.NATS; s.nc == nil {
		if s.nc, err = s.connectNATS(); err != nil {
			return s, err
		}
	} else {
		s.desc["nats"] = connect.RedactURLs(s.nc.ConnectedUrl())
	}
	// The biggest result must fit the server's max_payload, or a job could
	// stay in the stream for want of room for its result.
	if most := job.MaxTargetsFor(int(s.nc.MaxPayload())); cfg.MaxTargets > most {
		return s, fmt.Errorf("PUSH_MAX_TARGETS=%d is over %d, the most targets per job whose result fits the NATS server's max_payload of %d bytes: "+
			"lower PUSH_MAX_TARGETS, or raise the server's max_payload", cfg.MaxTargets, most, s.nc.MaxPayload())
	}
	store, limiter, err := s.stores(ctx, o)
	if err != nil {
		return s, err
	}

	tp := o.Traces
	if tp == nil {
		var shutdown func(context.Context) error
		if tp, shutdown, err = tracing.Setup(ctx, "pushworker", os.Getenv); err != nil {
			return s, err
		}
		s.closers = append(s.closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(sctx) // what is batched goes out
		})
		if protocol, endpoint, ok := tracing.Exporter(os.Getenv); ok {
			s.log.Info("traces go to OTLP", zap.String("endpoint", connect.RedactURL(endpoint)), zap.String("protocol", protocol))
		}
	}
	parts := s.parts(o.Topology)
	parts.Consumer.Tracer, parts.Pipeline.Tracer = tp.Tracer(tracing.Scope), tp.Tracer(tracing.Scope)
	if o.Tune != nil {
		o.Tune(&parts)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return s, err
	}
	// Serve /readyz (503 while the topology waits) before the streams exist.
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = map[bool]string{true: config.DefaultDevHTTPAddr, false: config.DefaultHTTPAddr}[cfg.Dev()]
	}
	if s.http, err = serveHTTP(addr, s.metrics, s.gate, s.nc, cfg.Pprof); err != nil {
		return s, fmt.Errorf("PUSH_HTTP_ADDR %s: %w", addr, err)
	}
	s.closers = append(s.closers, s.http.close)
	var kv jetstream.KeyValue
	err = s.untilTopology(ctx, "campaign control bucket "+parts.Consumer.Topology.CampaignsBucket, func(ctx context.Context) (err error) {
		name := parts.Consumer.Topology.CampaignsBucket
		kv, err = consumer.CreateOrFind(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return campaign.Bucket(ctx, js, name, cfg.Replicas)
		},
			func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, name) })
		return err
	})
	if err != nil {
		return s, err
	}
	s.control = campaign.NewWatcher(kv, s.log)
	parts.Pipeline.Campaigns = s.control
	s.unparker = campaign.NewUnparker(js, parts.Consumer.Topology, s.control, s.log)
	parts.Consumer.OnParked = s.unparker.Parked
	var totals campaignTotals = campaign.NewMemoryTotals()
	parts.Pipeline.Pace = campaign.NewMemoryPace()
	if s.rdb != nil {
		parts.Pipeline.Pace = campaign.NewPace(s.rdb, cfg.RedisKeys().Pace)
		totals = campaign.NewRedisTotals(s.batch, cfg.RedisKeys().Totals)
	}
	topo := parts.Consumer.Topology.OrDefault()
	parts.Consumer.OnResult = func(subject string, r *job.Result) {
		if name := topo.Campaign(subject); name != "" {
			tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			add := totals.Add
			if topo.IsAdmin(subject) { // a recall's calls are counted apart from the pushes
				add = totals.AddRecall
			}
			if err := add(tctx, name, r); err != nil {
				s.log.Warn("campaign totals not counted", zap.String("campaign", name), zap.String("job", r.JobID), zap.Error(err))
			}
		}
	}
	pipe := pipeline.New(parts.Pipeline, store, limiter, pusher, s.gate, s.log, s.metrics)
	s.pipe = pipe
	s.closers = append(s.closers, pipe.Close)
	rc, _ := pusher.(recall.Recaller) // nil: a given client that cannot recall, whose recall jobs are rejected
	jobs := consumer.Mux{Topology: topo, Push: pipe, Recall: recall.New(parts.Pipeline, store, limiter, rc, pipe.Slots(), s.gate, s.log, s.metrics)}
	err = s.untilTopology(ctx, "streams and consumers", func(ctx context.Context) (err error) {
		s.consumer, err = consumer.New(ctx, parts.Consumer, js, jobs, s.gate, s.log, s.metrics)
		return err
	})
	if err != nil {
		return s, err
	}
	if err := s.answerStatus(topo, pipe, totals); err != nil {
		return s, err
	}
	lister, _ := pusher.(scheduledLister)
	if err := s.serveAdmin(topo, lister); err != nil {
		return s, err
	}
	return s, nil
}

// topologyAttempt bounds one attempt at the topology: JetStream answers in
// milliseconds once it has a leader; a cluster without one does not answer
// (each request of an attempt waits consumer.AnswerWait).
const topologyAttempt = 30 * time.Second

// untilTopology runs create, which makes part of the topology in JetStream,
// until it succeeds: JetStream may not be able to yet (a cluster still
// electing its leader, a node short of the replicas asked for). Meanwhile the
// worker is unready (cause streams) and says why; it gives up only when ctx
// ends or the configuration can never work.
func (s *Service) untilTopology(ctx context.Context, what string, create func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, topologyAttempt)
		err := create(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.gate.Clear(health.CauseStreams)
				s.log.Info("JetStream took the topology", zap.String("what", what), zap.Int("attempts", attempt))
			}
			return nil
		}
		err = fmt.Errorf("%s: %w", what, err)
		if ctx.Err() != nil || consumer.Permanent(err) {
			return err
		}
		s.gate.Set(health.CauseStreams, err)
		delay := retry.Probe.NextRetry(attempt)
		s.log.Warn("waiting for JetStream to create the topology", zap.String("what", what), zap.Int("attempt", attempt),
			zap.Duration("retry_in", delay), zap.Error(err))
		if !clock.Sleep(ctx, delay) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// parts makes the parts' configurations from the worker's.
func (s *Service) parts(topo topology.Topology) Parts {
	c := s.cfg
	topo = topo.OrDefault()
	handBack := retry.HandBack
	handBack.Initial = c.RetryDelay
	return Parts{
		Consumer: consumer.Config{Topology: topo, JobsPerLane: c.JobsPerLane, Grace: c.ShutdownGrace,
			Limits: consumer.Limits{JobsMaxBytes: c.JobsMaxBytes, JobsDuplicates: c.DuplicateWindow, ResultsMaxAge: c.ResultsMaxAge,
				DLQMaxAge: c.DLQMaxAge, Replicas: c.Replicas, AckWait: c.AckWait, MaxDeliver: c.MaxDeliver}},
		Pipeline: pipeline.Config{MaxInFlight: c.MaxInFlight, Attempts: c.Attempts, HandBack: handBack,
			Rules: jobRules(c, topo), Recheck: c.AckWait / 2},
	}
}

// pusher is the mPaaS client: the configured account, or in dev mode the
// built-in emulator.
func (s *Service) pusher(o Options) (pipeline.Pusher, error) {
	if o.Pusher != nil {
		s.desc["mpaas"] = "(given)"
		return o.Pusher, nil
	}
	c := s.cfg
	pc := push.Config{Endpoint: c.MPaaSEndpoint, Region: c.MPaaSRegion, AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessSecret,
		Timeout: c.MPaaSTimeout, MaxConns: c.MaxInFlight * 2}
	switch {
	case c.AccessKeyID != "":
	case c.MPaaSEndpoint != "" && c.MPaaSEndpoint != push.DefaultEndpoint:
		// Dev mode pointed at the developer's own emulator: signed with the
		// emulator's own key, which a real mPaaS refuses.
		pc.AccessKeyID, pc.AccessKeySecret = mpaassim.OwnKeyID, mpaassim.OwnKeySecret
		s.log.Info("dev mode: pushes go to MPAAS_ENDPOINT signed with the emulator's own key (MPAAS_AK_ENV is unset); a real mPaaS refuses it",
			zap.String("endpoint", c.MPaaSEndpoint), zap.String("key", mpaassim.OwnKeyID))
	default:
		em, err := startEmulator()
		if err != nil {
			return nil, fmt.Errorf("dev mode: starting the mPaaS emulator: %w", err)
		}
		s.closers = append(s.closers, em.stop)
		pc.Endpoint, pc.AccessKeyID, pc.AccessKeySecret = em.url, mpaassim.OwnKeyID, mpaassim.OwnKeySecret
		s.log.Info("dev mode: pushes go to the built-in mPaaS emulator, which accepts any template (MPAAS_AK_ENV is unset)",
			zap.String("endpoint", em.url), zap.String("stats", em.url+"/sim/stats"))
	}
	if c.MPaaSCA != "" {
		pool, err := connect.LoadCA(c.MPaaSCA)
		if err != nil {
			return nil, fmt.Errorf("MPAAS_CA: %w", err)
		}
		pc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := push.New(pc)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, client.Close)
	s.desc["mpaas"] = client.Endpoint().URL()
	return client, nil
}

// connectNATS connects to the configured servers, or in dev mode starts one.
func (s *Service) connectNATS() (*nats.Conn, error) {
	nc := s.cfg.NATS
	if s.cfg.Dev() {
		dev, err := startDevNATS(s.cfg.DataDir, s.cfg.DevNATSPort)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, dev.stop)
		nc.URL = dev.url
		s.log.Info("dev mode: embedded NATS JetStream server (NATS_URL is unset)", zap.String("url", dev.url), zap.String("store", dev.dir))
	}
	opts, err := connect.NATSOptions(nc)
	if err != nil {
		return nil, err
	}
	conn, err := connect.NATS(nc.URL, opts)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = conn.Drain() })
	s.desc["nats"] = connect.RedactURLs(nc.URL)
	return conn, nil
}

// stores are the dedupe store and the limiter: on Redis, or in memory in dev mode.
func (s *Service) stores(ctx context.Context, o Options) (dedupe.Store, pipeline.Limiter, error) {
	c := s.cfg
	s.metrics.Rate(float64(c.RateLimit))
	s.rdb = o.Redis
	if s.rdb == nil && c.Redis.URL == "" {
		s.log.Info("dev mode: in-memory dedupe and rate limit (REDIS_URL is unset): one worker only, nothing survives a restart")
		s.desc["redis"] = "in-memory"
		return dedupe.NewMemory(c.SentTTL, c.LeaseTTL), ratelimit.NewMemory(c.RateLimit, c.RateBurst), nil
	}
	if s.rdb == nil {
		rdb, err := connect.Redis(ctx, c.Redis)
		if err != nil {
			return nil, nil, err
		}
		s.closers = append(s.closers, func() { _ = rdb.Close() })
		s.rdb = rdb
		s.desc["redis"] = connect.RedactURL(c.Redis.URL)
	} else {
		s.desc["redis"] = "(given)"
	}
	s.batch = rbatch.New(s.rdb) // dedupe and campaign totals share round trips
	keys := c.RedisKeys()
	dcfg := dedupe.RedisConfig{Prefix: keys.Dedupe, SentTTL: c.SentTTL, LeaseTTL: c.LeaseTTL, Batch: s.batch}
	if c.ReadOldDedupe {
		dcfg.OldPrefix = keys.OldDedupe
	}
	store := dedupe.NewRedis(s.rdb, dcfg)
	if err := store.Load(ctx); err != nil {
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	s.limiter = ratelimit.NewRedis(s.rdb, keys.Limit, c.RateLimit, c.RateBurst)
	s.limiter.ReserveForEvents(c.EventsShare)
	if c.RateAdaptive {
		s.limiter.Adapt(c.RateFloor, func(rate float64) {
			s.log.Info("shared rate changed", zap.Float64("calls_per_second", rate))
			s.metrics.Rate(rate)
		})
	}
	return store, s.limiter, nil
}

func (s *Service) paused(cause health.Cause, err error) {
	s.log.Warn("paused: waiting for "+string(cause), zap.String("cause", string(cause)), zap.Error(err))
	s.metrics.Paused(string(cause), true)
}

func (s *Service) resumed(cause health.Cause) {
	s.log.Info("resumed: "+string(cause)+" is back", zap.String("cause", string(cause)))
	s.metrics.Paused(string(cause), false)
}

// Gate tells what the worker waits for.
func (s *Service) Gate() *health.Gate { return s.gate }

// HTTPAddr is where /metrics, /healthz and /readyz listen.
func (s *Service) HTTPAddr() string { return s.http.addr }

// Run works until ctx ends, then stops fetching, finishes or hands back what is
// in flight, and returns. The parts that jobs need (the limiter's dispenser, the
// monitor) stop only after the queue has.
func (s *Service) Run(ctx context.Context) {
	s.log.Info("worker started", zap.String("nats", s.desc["nats"]), zap.String("redis", s.desc["redis"]),
		zap.String("mpaas", s.desc["mpaas"]), zap.Int("rate_limit", s.cfg.RateLimit),
		zap.String("http", "http://"+s.http.addr+"/metrics /healthz /readyz"))
	after, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	start := func(run func(context.Context), ctx context.Context) {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	start(s.monitor, ctx)
	if s.limiter != nil {
		start(s.limiter.Run, after)
	}
	start(s.control.Run, after)
	start(s.unparker.Run, after)
	start(s.watchLanes, after)
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

// LaneWatch is how often a worker reads the lanes' consumers for the backlog
// metrics.
const LaneWatch = 5 * time.Second

// watchLanes keeps the backlog metrics (pending, ack pending, the oldest
// waiting job per lane) until ctx ends. Every worker reads them: a dashboard
// takes any one worker's view (max by lane).
func (s *Service) watchLanes(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, LaneWatch)
		lanes, err := s.consumer.Lanes(rctx)
		cancel()
		if err == nil {
			for _, l := range lanes {
				s.metrics.Lane(l.Lane, l.Pending, l.AckPending, l.OldestWait)
			}
		} else if ctx.Err() == nil {
			s.log.Debug("lane backlog not read", zap.Error(err))
		}
		if !clock.Sleep(ctx, LaneWatch) {
			return
		}
	}
}

// Close releases what New opened, newest first.
func (s *Service) Close() {
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

// campaignTotals count each campaign's results: in Redis, or in memory in dev mode.
type campaignTotals interface {
	Add(ctx context.Context, name string, r *job.Result) error       // a push job's result
	AddRecall(ctx context.Context, name string, r *job.Result) error // an admin job's result
	Get(ctx context.Context, name string) (campaign.Totals, error)
	Names(ctx context.Context) ([]string, error)
}

// answerStatus answers `enqueue campaign status` and the console: every worker
// replies with its jobs in flight, the totals and the state, for one campaign or
// (All) for every campaign it knows.
func (s *Service) answerStatus(topo topology.Topology, pipe *pipeline.Pipeline, totals campaignTotals) error {
	report := func(ctx context.Context, name string) (campaign.Report, error) {
		rep := campaign.Report{Campaign: name, Worker: s.worker, InFlight: pipe.InFlight(name), State: s.control.Get(name),
			Invalid: s.control.Invalid(name)}
		var err error
		rep.Totals, err = totals.Get(ctx, name)
		return rep, err
	}
	sub, err := s.nc.Subscribe(topo.CampaignStatusSubject(), func(m *nats.Msg) {
		var req campaign.StatusRequest
		if json.Unmarshal(m.Data, &req) != nil || !req.All && campaign.ValidName(req.Campaign) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var body []byte
		if req.All {
			all, err := s.allReports(ctx, pipe, totals, report)
			if err != nil {
				s.log.Warn("campaign totals not read", zap.Error(err))
				return
			}
			body, _ = json.Marshal(campaign.Reports{Worker: s.worker, Campaigns: all})
		} else {
			rep, err := report(ctx, req.Campaign)
			if err != nil {
				s.log.Warn("campaign totals not read", zap.String("campaign", req.Campaign), zap.Error(err))
				return
			}
			body, _ = json.Marshal(rep)
		}
		_ = m.Respond(body)
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = sub.Unsubscribe() })
	return nil
}

// allReports are the reports of every campaign this worker knows: with totals,
// a state in the bucket, or jobs in its hands.
func (s *Service) allReports(ctx context.Context, pipe *pipeline.Pipeline, totals campaignTotals,
	report func(context.Context, string) (campaign.Report, error)) ([]campaign.Report, error) {
	names, err := totals.Names(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for n := range s.control.Known() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	for _, n := range pipe.Campaigns() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	out := make([]campaign.Report, 0, len(names))
	for _, n := range names {
		rep, err := report(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// scheduledLister lists an app's pending scheduled tasks (the mPaaS client).
type scheduledLister interface {
	QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]push.ScheduledTask, int, push.CallResult)
}

// ScheduledWindow is how far ahead `enqueue scheduled list` looks: a recurring
// push's window ends at most 180 days after it was made.
const ScheduledWindow = 181 * 24 * time.Hour

// serveAdmin is the workers' NATS service (nats.go/micro, so that `nats micro
// ls` and `nats micro stats pushworker` show the fleet): every worker answers
// stats on <root>.admin.workers.stats (no queue group: one answer per worker),
// and one of them the scheduled-task list, when the worker has an mPaaS client.
func (s *Service) serveAdmin(topo topology.Topology, lister scheduledLister) error {
	svc, err := micro.AddService(s.nc, micro.Config{Name: "pushworker", Version: "1.0.0",
		Description:  "pushworker: each worker's state, and mPaaS scheduled tasks asked of a worker so that operators need no mPaaS credentials",
		StatsHandler: func(*micro.Endpoint) any { return s.Stats() }})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = svc.Stop() })
	s.serviceID = svc.Info().ID
	err = svc.AddEndpoint("stats", micro.HandlerFunc(func(req micro.Request) { _ = req.RespondJSON(s.Stats()) }),
		micro.WithEndpointSubject(topo.WorkersStatsSubject()), micro.WithEndpointQueueGroupDisabled())
	if err != nil || lister == nil {
		return err
	}
	return svc.AddEndpoint("scheduled-list", micro.HandlerFunc(func(req micro.Request) {
		var q struct {
			AppID       string `json:"appId"`
			WorkspaceID string `json:"workspaceId"`
		}
		if err := json.Unmarshal(req.Data(), &q); err != nil || q.AppID == "" || q.WorkspaceID == "" {
			_ = req.Error("400", "want {\"appId\":…,\"workspaceId\":…}", nil)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		now := time.Now()
		var all []push.ScheduledTask
		for page := 1; ; page++ {
			tasks, total, out := lister.QueryScheduled(ctx, q.AppID, q.WorkspaceID, now.Add(-24*time.Hour), now.Add(ScheduledWindow), page, 500)
			if out.Class != push.Success {
				code := out.ResultCode
				if code == "" {
					code = "500"
				}
				_ = req.Error(code, "QueryPushSchedulerList: "+out.Err.Error(), nil)
				return
			}
			all = append(all, tasks...)
			if len(tasks) == 0 || len(all) >= total {
				break
			}
		}
		_ = req.RespondJSON(map[string]any{"appId": q.AppID, "workspaceId": q.WorkspaceID, "tasks": all})
	}), micro.WithEndpointSubject(topo.ScheduledListSubject()))
}

// ControlWait is how long a starting worker waits for the campaign control
// bucket's values before it fetches jobs.
const ControlWait = 10 * time.Second

// MonitorEvery is how often the worker checks Redis and NATS while idle, so that
// readiness tells the truth before a job finds out.
const MonitorEvery = 2 * time.Second

func (s *Service) monitor(ctx context.Context) {
	t := time.NewTicker(MonitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.rdb != nil {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.rdb.Ping(pctx).Err()
			cancel()
			if err != nil && ctx.Err() == nil {
				s.gate.Set(health.CauseRedis, fmt.Errorf("%w: %w", health.ErrUnavailable, err))
			} else if err == nil {
				s.gate.Clear(health.CauseRedis)
			}
		}
		s.metrics.Campaigns(s.control.Counts())
		if s.nc.IsConnected() {
			s.gate.Clear(health.CauseNATS)
		} else {
			s.gate.Set(health.CauseNATS, errors.New("NATS connection "+s.nc.Status().String()))
		}
	}
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
