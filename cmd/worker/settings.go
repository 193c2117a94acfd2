package main

import (
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/connect"
)

// DevNATSPort is where dev mode's embedded NATS server listens (loopback only).
const DevNATSPort = "14222"

// settings is every setting of the worker; the README lists them all (a test checks).
var settings = append(append([]config.Setting{
	{Group: "Connections", Env: "NATS_URL", Flag: "nats-url", Help: "NATS server URLs, comma-separated; unset: dev mode, an embedded JetStream server on 127.0.0.1:" + DevNATSPort},
}, append(connect.NATSSettings, connect.RedisSettings...)...), []config.Setting{
	{Group: "Connections", Env: "PUSH_REDIS_PREFIX", Flag: "redis-prefix", Default: "pushworker:", Help: "prefix of every Redis key the worker writes"},

	{Group: "mPaaS", Env: "MPAAS_ENDPOINT", Flag: "mpaas-endpoint", Default: "mpaas.cn-hangzhou.aliyuncs.com", Help: "host (HTTPS), or a full URL with scheme and port such as http://127.0.0.1:18080"},
	{Group: "mPaaS", Env: "MPAAS_REGION", Flag: "mpaas-region", Default: "cn-hangzhou", Help: "region id"},
	{Group: "mPaaS", Env: "MPAAS_AK_ENV", Flag: "mpaas-access-key-id", Help: "AccessKey id; unset in dev mode: the built-in emulator"},
	{Group: "mPaaS", Env: "MPAAS_SK_ENV", Secret: true, Help: "AccessKey secret; or MPAAS_SK_ENV_FILE (never a flag: flags show in the process list)"},
	{Group: "mPaaS", Env: "MPAAS_CA", Flag: "mpaas-ca", Help: "CA file to verify mPaaS's certificate (default: the system's roots)"},
	{Group: "mPaaS", Env: "PUSH_MPAAS_TIMEOUT", Flag: "mpaas-timeout", Default: "10s", Help: "timeout of one PushTemplate call"},
	{Group: "mPaaS", Env: "PUSH_RATE_LIMIT", Flag: "rate-limit", Default: "100", Help: "mPaaS calls per second, shared by all workers on the same Redis (the ceiling when adaptive)"},
	{Group: "mPaaS", Env: "PUSH_RATE_ADAPTIVE", Flag: "rate-adaptive", Default: "true", Help: "lower the shared rate when mPaaS throttles (×0.9, at most once a second) and raise it back (+2 % of PUSH_RATE_LIMIT a second after 2 s without throttling)"},
	{Group: "mPaaS", Env: "PUSH_RATE_FLOOR", Flag: "rate-floor", Default: "1", Help: "the adaptive rate never goes below this many calls per second"},
	{Group: "mPaaS", Env: "PUSH_EVENTS_SHARE", Flag: "events-share", Default: "0.2", Help: "share of the rate kept for the default (events) lane while it has calls; the bulk lane borrows it while events are idle"},
	{Group: "mPaaS", Env: "PUSH_RATE_BURST", Flag: "rate-burst", Default: "0", Help: "calls that may go at once above the rate; 0: rate/40+1, at least 2"},

	{Group: "Jobs", Env: "PUSH_MAX_TARGETS", Flag: "max-targets", Default: "1000", Help: "targets per job"},
	{Group: "Jobs", Env: "PUSH_MAX_SCHEDULED_CHUNKS", Flag: "max-scheduled-chunks", Default: "10", Help: "calls (10 targets each) per scheduled job; mPaaS keeps 100 pending scheduled tasks"},
	{Group: "Jobs", Env: "PUSH_TIMEZONE", Flag: "timezone", Default: "UTC+8", Help: "zone of 'today' for recurring pushes: UTC+8, or an IANA name such as Asia/Shanghai"},
	{Group: "Jobs", Env: "PUSH_JOBS_PER_LANE", Flag: "jobs-per-lane", Default: "8", Help: "jobs run at once on each lane"},
	{Group: "Jobs", Env: "PUSH_MAX_IN_FLIGHT", Flag: "max-in-flight", Default: "32", Help: "mPaaS calls in flight at once, over all jobs"},
	{Group: "Jobs", Env: "PUSH_ATTEMPTS", Flag: "attempts", Default: "4", Help: "calls per chunk and delivery for transient failures before the job is handed back"},
	{Group: "Jobs", Env: "PUSH_ACK_WAIT", Flag: "ack-wait", Default: "30s", Help: "JetStream AckWait; the worker sends InProgress while a job runs"},
	{Group: "Jobs", Env: "PUSH_MAX_DELIVER", Flag: "max-deliver", Default: "5", Help: "deliveries of a job; the last one dead-letters what still fails"},
	{Group: "Jobs", Env: "PUSH_RETRY_DELAY", Flag: "retry-delay", Default: "5s", Help: "first redelivery delay of a handed-back job; doubles each time, at most 5m"},
	{Group: "Jobs", Env: "PUSH_SENT_TTL", Flag: "sent-ttl", Default: "72h", Help: "how long a sent (app, workspace, target, msgKey) is remembered"},
	{Group: "Jobs", Env: "PUSH_LEASE_TTL", Flag: "lease-ttl", Default: "5m", Help: "how long a claim holds without a sent mark (a crashed worker's claims expire)"},

	{Group: "Streams", Env: "PUSH_JOBS_MAX_BYTES", Flag: "jobs-max-bytes", Default: "1GiB", Help: "size of the job queue; a full queue refuses new jobs"},
	{Group: "Streams", Env: "PUSH_DUPLICATE_WINDOW", Flag: "duplicate-window", Default: "2m", Help: "job stream's Nats-Msg-Id dedupe window (at least 2m)"},
	{Group: "Streams", Env: "PUSH_RESULTS_MAX_AGE", Flag: "results-max-age", Default: "24h", Help: "how long results are kept"},
	{Group: "Streams", Env: "PUSH_DLQ_MAX_AGE", Flag: "dlq-max-age", Default: "336h", Help: "how long dead letters are kept"},
	{Group: "Streams", Env: "PUSH_REPLICAS", Flag: "replicas", Default: "1", Help: "stream and consumer replicas: 3 on a clustered JetStream"},

	{Group: "Operations", Env: "PUSH_HTTP_ADDR", Flag: "http-addr", Help: "address of /metrics, /healthz and /readyz; unset: 127.0.0.1:8080 in dev mode, :8080 otherwise"},
	{Group: "Operations", Env: "PUSH_LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error"},
	{Group: "Operations", Env: "PUSH_LOG_FORMAT", Flag: "log-format", Help: "json or console; unset: console in dev mode, json otherwise"},
	{Group: "Operations", Env: "PUSH_PPROF", Flag: "pprof", Default: "false", Help: "serve Go's /debug/pprof on PUSH_HTTP_ADDR too (diagnostics; keep the address private)"},
	{Group: "Operations", Env: "PUSH_SHUTDOWN_GRACE", Flag: "shutdown-grace", Default: "20s", Help: "how long jobs in flight may finish after SIGINT/SIGTERM"},
	{Group: "Operations", Env: "PUSH_DATA_DIR", Flag: "data-dir", Default: "data", Help: "dev mode: where the embedded NATS server keeps its store"},
	{Group: "Operations", Env: "PUSH_DEV_NATS_PORT", Flag: "dev-nats-port", Default: DevNATSPort, Help: "dev mode: the embedded NATS server's port on 127.0.0.1"},
}...)
