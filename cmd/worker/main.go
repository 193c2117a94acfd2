// Command worker pulls push jobs from NATS JetStream and sends them through mPaaS
// PushTemplate. With nothing configured it runs in dev mode: an embedded JetStream
// server, in-memory dedupe and rate limit, and the built-in mPaaS emulator.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mpaas-push/pushworker/internal/app"
	"github.com/mpaas-push/pushworker/internal/cli"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/connect"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

const usage = `Usage: worker [flags]

Pulls push jobs from NATS JetStream (push.jobs.* and push.jobs.bulk.>), sends each
through mPaaS PushTemplate in calls of at most 10 targets, never pushing the same
(appId, workspaceId, target, msgKey) twice, under one rate limit shared by every
worker on the same Redis, and publishes one result per job on push.results.>.

With nothing set it runs in dev mode: an embedded JetStream server on
127.0.0.1:` + DevNATSPort + `, in-memory dedupe and rate limit, and the built-in mPaaS
emulator, which accepts any template. Every setting is an environment variable; most
are also flags, which win over the environment.
`

func main() { cli.Main("worker", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := config.NewSet(settings)
	if err := cfg.Parse("worker", args, getenv, usage, stderr); err != nil {
		return err
	}
	dev := cfg.String("NATS_URL") == ""
	if !dev && cfg.String("REDIS_URL") == "" {
		return errors.New("NATS_URL is set but REDIS_URL is not: workers share dedupe and the rate limit through Redis; " +
			"set REDIS_URL, or unset NATS_URL for dev mode")
	}
	log, err := newLogger(cfg, dev, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	redis.SetLogger(discardRedisLog{}) // go-redis's own logger prints to stderr; its errors reach our log through the worker

	parts, cleanup, err := assemble(ctx, cfg, getenv, dev, log)
	defer cleanup()
	if err != nil {
		return err
	}
	m := metrics.New()
	parts.opts.Observers = app.Observers{Worker: m, Consumer: m, Gate: m.Paused, Rate: m.Rate}
	m.Rate(float64(parts.opts.RateLimit))
	w, err := app.New(ctx, parts.opts)
	if err != nil {
		return err
	}
	httpAddr := cfg.String("PUSH_HTTP_ADDR")
	if httpAddr == "" {
		httpAddr = defaultHTTPAddr(dev)
	}
	srv, err := serveHTTP(httpAddr, m, w.Gate(), parts.opts.NATS, cfg.String("PUSH_PPROF") == "true")
	if err != nil {
		return fmt.Errorf("PUSH_HTTP_ADDR %s: %w", httpAddr, err)
	}
	log.Info("worker started", zap.String("nats", parts.natsDesc), zap.String("redis", parts.redisDesc),
		zap.String("mpaas", parts.mpaasDesc), zap.Int("rate_limit", parts.opts.RateLimit),
		zap.String("http", "http://"+srv.addr+"/metrics /healthz /readyz"))

	w.Run(ctx)
	log.Info("stopped fetching; jobs in flight finished or handed back")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// defaultHTTPAddr keeps a dev worker's endpoints on loopback; in production they
// listen on every interface for the orchestrator's probes and Prometheus.
func defaultHTTPAddr(dev bool) string {
	if dev {
		return "127.0.0.1:8080"
	}
	return ":8080"
}

// parts are what run wires together.
type parts struct {
	opts                           app.Options
	natsDesc, redisDesc, mpaasDesc string
}

// assemble connects to (or, in dev mode, starts) NATS, Redis and mPaaS. cleanup
// closes whatever was opened, even on error.
func assemble(ctx context.Context, cfg *config.Set, getenv func(string) string, dev bool, log *zap.Logger) (*parts, func(), error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	p := &parts{}
	o := &p.opts
	var err error
	if o.RateLimit, err = cfg.Int("PUSH_RATE_LIMIT"); err != nil {
		return nil, cleanup, err
	}
	if o.RateBurst, err = cfg.Int("PUSH_RATE_BURST"); err != nil {
		return nil, cleanup, err
	}
	if o.RateFloor, err = cfg.Int("PUSH_RATE_FLOOR"); err != nil {
		return nil, cleanup, err
	}
	if o.EventsShare, err = strconv.ParseFloat(cfg.String("PUSH_EVENTS_SHARE"), 64); err != nil || o.EventsShare < 0 || o.EventsShare >= 1 {
		return nil, cleanup, fmt.Errorf("PUSH_EVENTS_SHARE=%q: want a share from 0 to below 1, such as 0.2", cfg.String("PUSH_EVENTS_SHARE"))
	}
	switch v := cfg.String("PUSH_RATE_ADAPTIVE"); v {
	case "true", "false":
		o.RateAdaptive = v == "true"
	default:
		return nil, cleanup, fmt.Errorf("PUSH_RATE_ADAPTIVE=%q: want true or false", v)
	}
	o.RedisPrefix = cfg.String("PUSH_REDIS_PREFIX")
	if o.SentTTL, err = cfg.Duration("PUSH_SENT_TTL"); err != nil {
		return nil, cleanup, err
	}
	if o.LeaseTTL, err = cfg.Duration("PUSH_LEASE_TTL"); err != nil {
		return nil, cleanup, err
	}
	if o.Consumer, err = consumerConfig(cfg); err != nil {
		return nil, cleanup, err
	}
	if o.Processor, err = processorConfig(cfg); err != nil {
		return nil, cleanup, err
	}
	o.Log = log

	// mPaaS: the credentials, or in dev mode the built-in emulator.
	keyID := cfg.String("MPAAS_AK_ENV")
	secret, err := cfg.Secret("MPAAS_SK_ENV", getenv)
	if err != nil {
		return nil, cleanup, err
	}
	if (keyID == "") != (secret == "") {
		return nil, cleanup, errors.New("set both MPAAS_AK_ENV and MPAAS_SK_ENV (or MPAAS_SK_ENV_FILE), or neither in dev mode")
	}
	endpoint := cfg.String("MPAAS_ENDPOINT")
	if keyID == "" {
		if !dev {
			return nil, cleanup, errors.New("MPAAS_AK_ENV and MPAAS_SK_ENV are required outside dev mode (NATS_URL is set)")
		}
		keyID, secret = "dev-access-key", "dev-access-secret"
		addr, stop, err := startEmulator(keyID, secret)
		if err != nil {
			return nil, cleanup, fmt.Errorf("dev mode: starting the mPaaS emulator: %w", err)
		}
		closers = append(closers, stop)
		endpoint = "http://" + addr
		log.Info("dev mode: pushes go to the built-in mPaaS emulator, which accepts any template (MPAAS_AK_ENV is unset)",
			zap.String("endpoint", endpoint), zap.String("stats", endpoint+"/sim/stats"))
	}
	mpaasTimeout, err := cfg.Duration("PUSH_MPAAS_TIMEOUT")
	if err != nil {
		return nil, cleanup, err
	}
	pc := push.Config{Endpoint: endpoint, Region: cfg.String("MPAAS_REGION"), AccessKeyID: keyID, AccessKeySecret: secret,
		Timeout: mpaasTimeout, MaxConns: o.Processor.MaxInFlight * 2}
	if ca := cfg.String("MPAAS_CA"); ca != "" {
		pool, err := connect.LoadCA(ca)
		if err != nil {
			return nil, cleanup, fmt.Errorf("MPAAS_CA: %w", err)
		}
		pc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := push.New(pc)
	if err != nil {
		return nil, cleanup, err
	}
	closers = append(closers, client.Close)
	o.Pusher = client
	p.mpaasDesc = client.Endpoint().URL()

	// NATS: the configured servers, or in dev mode an embedded one.
	url := cfg.String("NATS_URL")
	if dev {
		dir := filepath.Join(cfg.String("PUSH_DATA_DIR"), "nats")
		port, err := cfg.Int("PUSH_DEV_NATS_PORT")
		if err != nil {
			return nil, cleanup, err
		}
		ns, err := startEmbeddedNATS(dir, port)
		if err != nil {
			return nil, cleanup, fmt.Errorf("dev mode: starting the embedded NATS server on 127.0.0.1:%d: %w", port, err)
		}
		closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
		url = ns.ClientURL()
		log.Info("dev mode: embedded NATS JetStream server (NATS_URL is unset)", zap.String("url", url), zap.String("store", dir))
	}
	natsOpts, err := connect.NATSOptions(cfg, getenv)
	if err != nil {
		return nil, cleanup, err
	}
	nc, err := connect.NATS(url, natsOpts)
	if err != nil {
		return nil, cleanup, err
	}
	closers = append(closers, func() { _ = nc.Drain() })
	o.NATS = nc
	p.natsDesc = connect.RedactURLs(url)

	// Redis, or in dev mode memory.
	if cfg.String("REDIS_URL") == "" {
		log.Info("dev mode: in-memory dedupe and rate limit (REDIS_URL is unset): one worker only, nothing survives a restart")
		p.redisDesc = "in-memory"
	} else {
		rdb, err := connect.Redis(ctx, cfg, getenv)
		if err != nil {
			return nil, cleanup, err
		}
		closers = append(closers, func() { _ = rdb.Close() })
		o.Redis = rdb
		p.redisDesc = connect.RedactURL(cfg.String("REDIS_URL"))
	}
	return p, cleanup, nil
}

func consumerConfig(cfg *config.Set) (consumer.Config, error) {
	c := consumer.Config{Topology: consumer.DefaultTopology(), Limits: consumer.DefaultLimits()}
	var err error
	l := &c.Limits
	get := func(dst *time.Duration, env string) {
		if err == nil {
			*dst, err = cfg.Duration(env)
		}
	}
	geti := func(dst *int, env string) {
		if err == nil {
			*dst, err = cfg.Int(env)
		}
	}
	get(&l.AckWait, "PUSH_ACK_WAIT")
	get(&l.JobsDuplicates, "PUSH_DUPLICATE_WINDOW")
	get(&l.ResultsMaxAge, "PUSH_RESULTS_MAX_AGE")
	get(&l.DLQMaxAge, "PUSH_DLQ_MAX_AGE")
	get(&c.RetryDelay, "PUSH_RETRY_DELAY")
	get(&c.Grace, "PUSH_SHUTDOWN_GRACE")
	geti(&l.MaxDeliver, "PUSH_MAX_DELIVER")
	geti(&l.Replicas, "PUSH_REPLICAS")
	geti(&c.JobsPerLane, "PUSH_JOBS_PER_LANE")
	geti(&c.Rules.MaxTargets, "PUSH_MAX_TARGETS")
	geti(&c.Rules.MaxScheduledChunks, "PUSH_MAX_SCHEDULED_CHUNKS")
	if err != nil {
		return c, err
	}
	if l.JobsMaxBytes, err = cfg.Bytes("PUSH_JOBS_MAX_BYTES"); err != nil {
		return c, err
	}
	if l.MaxDeliver < 1 || l.AckWait < time.Second {
		return c, errors.New("PUSH_MAX_DELIVER must be at least 1 and PUSH_ACK_WAIT at least 1s")
	}
	if c.Rules.Zone, err = zone(cfg.String("PUSH_TIMEZONE")); err != nil {
		return c, err
	}
	return c, nil
}

func processorConfig(cfg *config.Set) (worker.Config, error) {
	var p worker.Config
	var err error
	if p.MaxInFlight, err = cfg.Int("PUSH_MAX_IN_FLIGHT"); err != nil {
		return p, err
	}
	if p.Attempts, err = cfg.Int("PUSH_ATTEMPTS"); err != nil {
		return p, err
	}
	return p, nil
}

// zone reads "UTC+8"-style offsets or IANA names.
func zone(s string) (*time.Location, error) {
	if s == "" || s == "UTC+8" {
		return job.MPaaSZone, nil
	}
	if rest, ok := strings.CutPrefix(s, "UTC"); ok {
		var h int
		if _, err := fmt.Sscanf(rest, "%d", &h); err == nil && h >= -12 && h <= 14 {
			return time.FixedZone(s, h*3600), nil
		}
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("PUSH_TIMEZONE=%q: want UTC+8 or a zone name such as Asia/Shanghai", s)
	}
	return loc, nil
}

func newLogger(cfg *config.Set, dev bool, out io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.String("PUSH_LOG_LEVEL"))
	if err != nil {
		return nil, fmt.Errorf("PUSH_LOG_LEVEL=%q: want debug, info, warn or error", cfg.String("PUSH_LOG_LEVEL"))
	}
	format := cfg.String("PUSH_LOG_FORMAT")
	if format == "" {
		format = map[bool]string{true: "console", false: "json"}[dev]
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("PUSH_LOG_FORMAT=%q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), level)), nil
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// startEmbeddedNATS is dev mode's JetStream server, on loopback only.
func startEmbeddedNATS(storeDir string, port int) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("not ready in 10s (is port %d taken? run one dev worker at a time)", port)
	}
	return ns, nil
}

// startEmulator serves the mPaaS emulator on a free loopback port.
func startEmulator(keyID, secret string) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mpaassim.New(mpaassim.Config{Keys: map[string]string{keyID: secret}, AcceptAnyTemplate: true}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

// httpServer serves /metrics, /healthz and /readyz.
type httpServer struct {
	*http.Server
	addr string
}

func serveHTTP(addr string, m *metrics.Metrics, gate *worker.Gate, nc *nats.Conn, profiling bool) (*httpServer, error) {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		causes := gate.Causes()
		if !nc.IsConnected() && !containsString(causes, consumer.CauseNATS) {
			causes = append(causes, consumer.CauseNATS)
		}
		if len(causes) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: waiting for %s\n", strings.Join(causes, ", "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &httpServer{Server: srv, addr: l.Addr().String()}, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
