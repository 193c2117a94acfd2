// Package config is the worker's configuration: every setting of cmd/worker,
// typed, with its default constant (the parts' own defaults are their
// packages' Default* constants), bound through the settings table so that
// --help, the table of docs/configuration.md and the code cannot disagree.
//
// It may import the parts whose defaults it names (consumer, dedupe, dial, pipeline, push, retry,
// settings, job), never internal/worker nor anything of the operators' side.
package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/settings"
	"github.com/mpaas-push/pushworker/job"
)

// Defaults that belong to the worker as a whole (the parts' own defaults are
// their packages' Default* constants, used below).
const (
	DefaultRedisPrefix = "pushworker:"
	DefaultRateLimit   = 100 // mPaaS calls per second over all workers
	DefaultRateFloor   = 1
	DefaultEventsShare = 0.2
	DefaultTimezone    = "UTC+8"
	DefaultLogLevel    = "info"
	DefaultDataDir     = "data"
	DefaultDevHTTPAddr = "127.0.0.1:8080" // dev mode: loopback only
	DefaultHTTPAddr    = ":8080"          // otherwise: every interface, for probes and Prometheus
)

// The settings every command shares, named here too for the worker's code.
const DefaultDevNATSPort = settings.DefaultDevNATSPort

// DevNATSURL is where dev mode's embedded server listens by default.
var DevNATSURL = settings.DevNATSURL

// Table and Setting are the settings package's.
type (
	Table   = settings.Table
	Setting = settings.Setting
)

// Worker is the whole configuration of a worker. Parse fills it from the
// environment and flags; each field's default is the constant its setting names.
type Worker struct {
	NATS        dial.NATSConfig  // URL unset: dev mode (an embedded JetStream server)
	Redis       dial.RedisConfig // URL unset: in-memory stores (dev mode only)
	RedisPrefix string           // default DefaultRedisPrefix

	MPaaSEndpoint string        // default push.DefaultEndpoint (HTTPS)
	MPaaSRegion   string        // default push.DefaultRegion
	AccessKeyID   string        // unset in dev mode: the built-in emulator
	AccessSecret  string        // never logged
	MPaaSCA       string        // CA file; default the system's roots
	MPaaSTimeout  time.Duration // default push.DefaultTimeout
	RateLimit     int           // default DefaultRateLimit
	RateAdaptive  bool          // default true
	RateFloor     int           // default DefaultRateFloor
	EventsShare   float64       // default DefaultEventsShare
	RateBurst     int           // default 0: ratelimit.DefaultBurst of the rate

	// CredentialsFile (MPAAS_CREDENTIALS_FILE) lists several AccessKeys, each
	// serving its apps at its own rate: Credentials, read and checked at start.
	// It replaces AccessKeyID and AccessSecret, which are then unset.
	CredentialsFile string
	Credentials     []Credential
	// RateLimitSet: PUSH_RATE_LIMIT was given. With a credentials file it then
	// caps every credential's calls together; unset, each credential's own
	// limit is all there is.
	RateLimitSet bool

	MaxTargets         int            // default job.DefaultMaxTargets
	MaxScheduledChunks int            // default job.DefaultMaxScheduledChunks
	Zone               *time.Location // default job.MPaaSZone (UTC+8)
	JobsPerLane        int            // default consumer.DefaultJobsPerLane
	MaxInFlight        int            // default pipeline.DefaultMaxInFlight
	Attempts           int            // default pipeline.DefaultAttempts
	AckWait            time.Duration  // default consumer.DefaultAckWait
	MaxDeliver         int            // default consumer.DefaultMaxDeliver
	RetryDelay         time.Duration  // default retry.HandBack.Initial
	SentTTL            time.Duration  // default dedupe.DefaultSentTTL
	LeaseTTL           time.Duration  // default dedupe.DefaultLeaseTTL
	ReadOldDedupe      bool           // also honor the sent marks and leases of the layout before this version

	JobsMaxBytes    int64         // default consumer.DefaultJobsMaxBytes
	DuplicateWindow time.Duration // default consumer.DefaultJobsDuplicates
	ResultsMaxAge   time.Duration // default consumer.DefaultResultsMaxAge
	DLQMaxAge       time.Duration // default consumer.DefaultDLQMaxAge
	Replicas        int           // default consumer.DefaultReplicas

	HTTPAddr      string        // default DefaultDevHTTPAddr in dev mode, DefaultHTTPAddr otherwise
	LogLevel      zapcore.Level // default DefaultLogLevel
	LogFormat     string        // default console in dev mode, json otherwise
	Pprof         bool          // default false
	ShutdownGrace time.Duration // default consumer.DefaultGrace
	DataDir       string        // default DefaultDataDir
	DevNATSPort   int           // default DefaultDevNATSPort
}

// Dev reports dev mode: no NATS_URL (check makes that none of NATS_URL,
// REDIS_URL, MPAAS_AK_ENV and MPAAS_SK_ENV).
func (w *Worker) Dev() bool { return w.NATS.URL == "" }

// Settings is the worker's table, bound to w. Parse through it.
func (w *Worker) Settings() Table {
	var t Table
	settings.NATSSettings(&t, &w.NATS, "", "NATS server URLs, comma-separated; unset: dev mode, an embedded JetStream server on 127.0.0.1:"+strconv.Itoa(DefaultDevNATSPort))
	b := settings.NewBinder("Connections", &t)
	b.String(&w.Redis.URL, "REDIS_URL", "redis-url", "", "redis:// or rediss:// URL (user and password may be in it); unset: in-memory dedupe and rate limit, dev mode only")
	b.Secret(&w.Redis.Password, "REDIS_PASSWORD", "Redis password, if not in REDIS_URL; or REDIS_PASSWORD_FILE")
	b.String(&w.Redis.CA, "REDIS_CA", "redis-ca", "", "CA file to verify Redis's certificate (rediss://)")
	b.String(&w.Redis.SentinelMaster, "REDIS_SENTINEL_MASTER", "redis-sentinel-master", "", "Sentinel master name: REDIS_URL's host and REDIS_ADDRS are then Sentinels")
	b.String(&w.Redis.Addrs, "REDIS_ADDRS", "redis-addrs", "", "more Redis addresses, comma-separated: Cluster nodes (or Sentinels with REDIS_SENTINEL_MASTER)")
	b.String(&w.RedisPrefix, "PUSH_REDIS_PREFIX", "redis-prefix", DefaultRedisPrefix, "prefix of every Redis key the worker writes")

	b = settings.NewBinder("mPaaS", &t)
	b.String(&w.MPaaSEndpoint, "MPAAS_ENDPOINT", "mpaas-endpoint", push.DefaultEndpoint, "host (HTTPS), or a full URL with scheme and port such as http://127.0.0.1:18080")
	b.String(&w.MPaaSRegion, "MPAAS_REGION", "mpaas-region", push.DefaultRegion, "region id")
	b.String(&w.AccessKeyID, "MPAAS_AK_ENV", "mpaas-access-key-id", "", "AccessKey id; unset in dev mode: the built-in emulator")
	b.Secret(&w.AccessSecret, "MPAAS_SK_ENV", "AccessKey secret; or MPAAS_SK_ENV_FILE (never a flag: flags show in the process list)")
	b.String(&w.CredentialsFile, "MPAAS_CREDENTIALS_FILE", "mpaas-credentials-file", "", "several AccessKeys: a YAML or JSON file listing each one's accessKeyId, secretFile or secretEnv, appIds and rateLimit (docs/configuration.md); instead of MPAAS_AK_ENV and MPAAS_SK_ENV")
	b.String(&w.MPaaSCA, "MPAAS_CA", "mpaas-ca", "", "CA file to verify mPaaS's certificate (default: the system's roots)")
	b.Duration(&w.MPaaSTimeout, "PUSH_MPAAS_TIMEOUT", "mpaas-timeout", push.DefaultTimeout, time.Millisecond, "timeout of one mPaaS call")
	b.Int(&w.RateLimit, "PUSH_RATE_LIMIT", "rate-limit", DefaultRateLimit, 1, "mPaaS calls per second, shared by all workers on the same Redis (the ceiling when adaptive); with MPAAS_CREDENTIALS_FILE, when set, the cap of all credentials together")
	b.Bool(&w.RateAdaptive, "PUSH_RATE_ADAPTIVE", "rate-adaptive", true, "lower the shared rate when mPaaS throttles (×0.9, at most once a second) and raise it back (+2 % of PUSH_RATE_LIMIT a second after 2 s without throttling)")
	b.Int(&w.RateFloor, "PUSH_RATE_FLOOR", "rate-floor", DefaultRateFloor, 1, "the adaptive rate never goes below this many calls per second")
	b.Float(&w.EventsShare, "PUSH_EVENTS_SHARE", "events-share", DefaultEventsShare, 0, 1, "share of the rate kept for the default (events) lane while it has calls; the bulk lane borrows it while events are idle")
	b.Int(&w.RateBurst, "PUSH_RATE_BURST", "rate-burst", 0, 0, "calls that may go at once above the rate; 0: rate/40+1, at least 2")

	b = settings.NewBinder("Jobs", &t)
	b.Int(&w.MaxTargets, "PUSH_MAX_TARGETS", "max-targets", job.DefaultMaxTargets, 1, "targets per job; at most "+strconv.Itoa(job.MaxTargetsFor(job.DefaultMaxPayload))+
		" with NATS's default max_payload of 1MiB, more with a bigger one (the worker refuses a value whose results could outgrow the server's max_payload)")
	b.Int(&w.MaxScheduledChunks, "PUSH_MAX_SCHEDULED_CHUNKS", "max-scheduled-chunks", job.DefaultMaxScheduledChunks, 1, "calls (10 targets each) per scheduled job; mPaaS keeps 100 pending scheduled tasks")
	b.Func("PUSH_TIMEZONE", "timezone", DefaultTimezone, "zone of 'today' for recurring pushes: UTC+8, or an IANA name such as Asia/Shanghai",
		func(v string) (err error) { w.Zone, err = zone(v); return err })
	b.Int(&w.JobsPerLane, "PUSH_JOBS_PER_LANE", "jobs-per-lane", consumer.DefaultJobsPerLane, 1, "jobs run at once on each lane")
	b.Int(&w.MaxInFlight, "PUSH_MAX_IN_FLIGHT", "max-in-flight", pipeline.DefaultMaxInFlight, 1, "mPaaS calls in flight at once, over all jobs")
	b.Int(&w.Attempts, "PUSH_ATTEMPTS", "attempts", pipeline.DefaultAttempts, 1, "calls per chunk and delivery for transient failures before the job is handed back")
	b.Duration(&w.AckWait, "PUSH_ACK_WAIT", "ack-wait", consumer.DefaultAckWait, time.Second, "JetStream AckWait; the worker sends InProgress while a job runs")
	b.Int(&w.MaxDeliver, "PUSH_MAX_DELIVER", "max-deliver", consumer.DefaultMaxDeliver, 1, "deliveries of a job; the last one dead-letters what still fails")
	b.Duration(&w.RetryDelay, "PUSH_RETRY_DELAY", "retry-delay", retry.HandBack.Initial, time.Millisecond, "first redelivery delay of a handed-back job; doubles each time, at most "+settings.FormatDuration(retry.HandBack.Max))
	b.Duration(&w.SentTTL, "PUSH_SENT_TTL", "sent-ttl", dedupe.DefaultSentTTL, time.Second, "how long a sent (app, workspace, target, msgKey) is remembered")
	b.Duration(&w.LeaseTTL, "PUSH_LEASE_TTL", "lease-ttl", dedupe.DefaultLeaseTTL, time.Second, "how long a claim holds without a sent mark (a crashed worker's claims expire)")
	b.Bool(&w.ReadOldDedupe, "PUSH_DEDUPE_READ_OLD", "dedupe-read-old", false, "for PUSH_SENT_TTL after upgrading from a version that kept pairs under <prefix>dedupe:: honor its sent marks and leases too (one more read per target)")

	b = settings.NewBinder("Streams", &t)
	b.Bytes(&w.JobsMaxBytes, "PUSH_JOBS_MAX_BYTES", "jobs-max-bytes", consumer.DefaultJobsMaxBytes, "size of the job queue; a full queue refuses new jobs")
	b.Duration(&w.DuplicateWindow, "PUSH_DUPLICATE_WINDOW", "duplicate-window", consumer.DefaultJobsDuplicates, consumer.DefaultJobsDuplicates, "job stream's Nats-Msg-Id dedupe window (at least "+settings.FormatDuration(consumer.DefaultJobsDuplicates)+")")
	b.Duration(&w.ResultsMaxAge, "PUSH_RESULTS_MAX_AGE", "results-max-age", consumer.DefaultResultsMaxAge, time.Second, "how long results are kept")
	b.Duration(&w.DLQMaxAge, "PUSH_DLQ_MAX_AGE", "dlq-max-age", consumer.DefaultDLQMaxAge, time.Second, "how long dead letters are kept")
	b.Int(&w.Replicas, "PUSH_REPLICAS", "replicas", consumer.DefaultReplicas, 1, "stream and consumer replicas: 3 on a clustered JetStream")

	b = settings.NewBinder("Operations", &t)
	b.String(&w.HTTPAddr, "PUSH_HTTP_ADDR", "http-addr", "", "address of /metrics, /healthz and /readyz; unset: "+DefaultDevHTTPAddr+" in dev mode, "+DefaultHTTPAddr+" otherwise")
	b.Func("PUSH_LOG_LEVEL", "log-level", DefaultLogLevel, "debug, info, warn or error", func(v string) error {
		l, err := zapcore.ParseLevel(v)
		if err != nil {
			return fmt.Errorf("want debug, info, warn or error")
		}
		w.LogLevel = l
		return nil
	})
	b.Func("PUSH_LOG_FORMAT", "log-format", "", "json or console; unset: console in dev mode, json otherwise", func(v string) error {
		if v != "" && v != "json" && v != "console" {
			return fmt.Errorf("want json or console")
		}
		w.LogFormat = v
		return nil
	})
	b.Bool(&w.Pprof, "PUSH_PPROF", "pprof", false, "serve Go's /debug/pprof on PUSH_HTTP_ADDR too (diagnostics; keep the address private)")
	b.Duration(&w.ShutdownGrace, "PUSH_SHUTDOWN_GRACE", "shutdown-grace", consumer.DefaultGrace, time.Millisecond, "how long jobs in flight may finish after SIGINT/SIGTERM")
	b.String(&w.DataDir, "PUSH_DATA_DIR", "data-dir", DefaultDataDir, "dev mode: where the embedded NATS server keeps its store")
	b.Int(&w.DevNATSPort, "PUSH_DEV_NATS_PORT", "dev-nats-port", DefaultDevNATSPort, 1, "dev mode: the embedded NATS server's port on 127.0.0.1")
	return t
}

// ParseWorker reads a worker's configuration and checks what spans settings.
func ParseWorker(args []string, getenv func(string) string, usage string, out io.Writer) (*Worker, error) {
	w := &Worker{}
	if err := w.Settings().Parse("worker", args, getenv, usage, out); err != nil {
		return nil, err
	}
	w.RateLimitSet = getenv("PUSH_RATE_LIMIT") != "" || flagGiven(args, "rate-limit")
	if err := w.check(); err != nil {
		return w, err
	}
	if w.CredentialsFile != "" {
		var err error
		if w.Credentials, err = LoadCredentials(w.CredentialsFile, getenv); err != nil {
			return w, err
		}
	}
	return w, nil
}

// flagGiven reports whether args set the flag (-name, --name, with or without =value).
func flagGiven(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func (w *Worker) check() error {
	if err := w.checkMode(); err != nil {
		return err
	}
	// In dev mode too: MPAAS_ENDPOINT may point a dev worker at the developer's own emulator.
	if _, err := push.ParseEndpoint(w.MPaaSEndpoint); err != nil {
		return err
	}
	return nil
}

// checkMode allows two setups only: dev mode (none of the four settings
// below) and production (all four). Half a production setup would push for
// real without the shared dedupe and rate limit, or to the emulator
// unnoticed, so any other mix is an error naming what is set and what is missing.
//
// The AccessKey comes either from MPAAS_AK_ENV and MPAAS_SK_ENV or from a
// credentials file, never both: with MPAAS_CREDENTIALS_FILE the four are
// NATS_URL, REDIS_URL and the file (a file in dev mode would send to the
// built-in emulator what was meant for several accounts).
func (w *Worker) checkMode() error {
	type setting struct {
		name string
		set  bool
	}
	vars := []setting{{"NATS_URL", w.NATS.URL != ""}, {"REDIS_URL", w.Redis.URL != ""}, {"MPAAS_AK_ENV", w.AccessKeyID != ""}, {"MPAAS_SK_ENV", w.AccessSecret != ""}}
	if w.CredentialsFile != "" {
		var both []string
		for _, v := range vars[2:] {
			if v.set {
				both = append(both, v.name)
			}
		}
		if len(both) > 0 {
			return fmt.Errorf("MPAAS_CREDENTIALS_FILE and %s are set: the AccessKeys come from one of them; unset %s, or list that key in the file",
				and(both), map[bool]string{true: "it", false: "them"}[len(both) == 1])
		}
		vars = []setting{vars[0], vars[1], {"MPAAS_CREDENTIALS_FILE", true}}
	}
	var set, unset []string
	for _, v := range vars {
		if v.set {
			set = append(set, v.name)
		} else {
			unset = append(unset, v.name)
		}
	}
	if len(set) == 0 || len(unset) == 0 {
		return nil
	}
	return fmt.Errorf("%s but %s not: set %s for production, or unset %s for dev mode",
		are(set, "set"), are(unset, ""), map[bool]string{true: "it", false: "them"}[len(unset) == 1], and(set))
}

// are is "A is set", "A and B are set" (what empty: "A is", "A and B are").
func are(names []string, what string) string {
	s := and(names) + " are"
	if len(names) == 1 {
		s = names[0] + " is"
	}
	if what != "" {
		s += " " + what
	}
	return s
}

// and joins names as "A", "A and B", "A, B and C".
func and(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// zone reads "UTC+8"-style offsets or IANA names.
func zone(s string) (*time.Location, error) {
	if s == "" || s == DefaultTimezone {
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
		return nil, fmt.Errorf("want UTC+8 or a zone name such as Asia/Shanghai")
	}
	return loc, nil
}
