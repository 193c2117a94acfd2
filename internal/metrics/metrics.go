// Package metrics exposes what the worker does as Prometheus metrics. It holds no
// configuration value, target or template value: only counts, states and times.
//
// It imports, of this project, only pause, push and topology.
package metrics

import (
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/topology"
)

// Metrics of one worker process.
type Metrics struct {
	Registry    *prometheus.Registry
	jobs        *prometheus.CounterVec
	chunks      *prometheus.CounterVec
	calls       *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	limiterWait *prometheus.HistogramVec
	callSeconds prometheus.Histogram
	inFlight    prometheus.Gauge
	redelivered *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	paused      *prometheus.GaugeVec
	rate        prometheus.Gauge
	ackFailed   *prometheus.CounterVec
	parked      *prometheus.CounterVec
	campaigns   *prometheus.GaugeVec
	inHand      *prometheus.GaugeVec
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	oldest      *prometheus.GaugeVec
	resultFail  prometheus.Counter
	creds       *credentialMetrics

	live live // the same numbers, for the worker's stats endpoint
}

// live are the numbers the worker reports of itself (Live).
type live struct {
	callsInFlight atomic.Int64
	rate          atomic.Uint64 // float64 bits
	throttled     atomic.Int64
	inHand        [2]atomic.Int64 // by lane: default, bulk
}

// Live is a snapshot of what the worker is doing now.
type Live struct {
	CallsInFlight int            `json:"callsInFlight"`
	Rate          float64        `json:"rateLimit"`  // calls per second in force
	Throttled     int64          `json:"throttled"`  // throttled answers since the start
	JobsInHand    map[string]int `json:"jobsInHand"` // by lane
	// Credentials are the AccessKeys this worker signs with, by their ids'
	// first characters: each one's rate in force, calls and throttled answers.
	Credentials []LiveCredential `json:"credentials,omitempty"`
}

// New registers every metric on a registry of its own.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	m := &Metrics{Registry: r}
	m.jobs = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_jobs_total",
		Help: "Jobs that ended, by lane and status (succeeded, partial, failed, rejected, canceled)."}, []string{"lane", "status"})).(*prometheus.CounterVec)
	m.chunks = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_chunks_total",
		Help: "Chunks (calls of at most 10 targets, 100 with PushMultiple) that ended, by lane and status (sent, failed)."}, []string{"lane", "status"})).(*prometheus.CounterVec)
	m.calls = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_mpaas_calls_total",
		Help: "mPaaS calls, by lane, action (PushTemplate, PushMultiple), class (success, transient, job_fault, config_fault) and mPaaS code."}, []string{"lane", "api", "class", "code"})).(*prometheus.CounterVec)
	m.duplicates = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_dedupe_hits_total",
		Help: "Targets skipped because another job sent or is sending the same pair."}, []string{"lane"})).(*prometheus.CounterVec)
	m.limiterWait = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pushworker_limiter_wait_seconds",
		Help: "Time a call waited for a slot of the shared rate limit, by lane.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)},
		[]string{"lane"})).(*prometheus.HistogramVec)
	m.callSeconds = f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pushworker_mpaas_call_seconds",
		Help: "Latency of mPaaS calls.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)})).(prometheus.Histogram)
	m.inFlight = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "pushworker_calls_in_flight",
		Help: "Calls holding one of the worker's call slots (claimed, waiting for the limiter or calling)."})).(prometheus.Gauge)
	m.redelivered = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_redeliveries_total",
		Help: "Jobs received on their second or later delivery."}, []string{"lane"})).(*prometheus.CounterVec)
	m.deadLetters = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_dead_letters_total",
		Help: "Dead letters written, by lane and reason (rejected, failed, stopped)."}, []string{"lane", "reason"})).(*prometheus.CounterVec)
	m.paused = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_paused",
		Help: "1 while the worker waits for this cause (redis, nats, streams, mpaas-credentials, mpaas-unreachable)."}, []string{"cause"})).(*prometheus.GaugeVec)
	m.rate = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "pushworker_rate_limit_calls_per_second",
		Help: "The shared mPaaS rate in force: PUSH_RATE_LIMIT, or less while mPaaS throttles."})).(prometheus.Gauge)
	m.ackFailed = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_acks_failed_total",
		Help: "Acknowledgements the server did not take, by kind (ack, term, retry, release, in_progress); the job then comes back after its AckWait."}, []string{"op"})).(*prometheus.CounterVec)
	m.parked = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_parked_jobs_total",
		Help: "Jobs parked in the parking stream because their campaign was paused (canceled jobs: pushworker_jobs_total{status=\"canceled\"})."}, []string{"lane"})).(*prometheus.CounterVec)
	m.campaigns = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_campaigns",
		Help: "Campaigns with a control value, by state (running, paused, canceled), as this worker sees the bucket."}, []string{"state"})).(*prometheus.GaugeVec)
	m.inHand = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_jobs_in_hand",
		Help: "Jobs this worker holds (delivered, not yet acknowledged or handed back), by lane."}, []string{"lane"})).(*prometheus.GaugeVec)
	m.pending = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_lane_pending_jobs",
		Help: "Jobs waiting on the lane, not yet delivered to any worker (its consumer's pending count, read every few seconds)."}, []string{"lane"})).(*prometheus.GaugeVec)
	m.ackPending = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_lane_ack_pending_jobs",
		Help: "Jobs of the lane delivered to some worker and not yet acknowledged (its consumer's ack-pending count)."}, []string{"lane"})).(*prometheus.GaugeVec)
	m.oldest = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_lane_oldest_waiting_seconds",
		Help: "How long the lane's oldest undelivered job has waited (0 when none waits)."}, []string{"lane"})).(*prometheus.GaugeVec)
	m.resultFail = f(prometheus.NewCounter(prometheus.CounterOpts{Name: "pushworker_result_publish_failures_total",
		Help: "Results the result stream did not take; each such job is handed back and runs again."})).(prometheus.Counter)
	m.creds = newCredentialMetrics(f)
	// Every series a dashboard or an alert reads exists from the start (at 0),
	// so that rate() and increase() see the first event.
	for _, lane := range lanes {
		for _, status := range []string{"succeeded", "partial", "failed", "rejected", "canceled"} {
			m.jobs.WithLabelValues(lane, status)
		}
		for _, status := range []string{"sent", "failed"} {
			m.chunks.WithLabelValues(lane, status)
		}
		for _, reason := range []string{"rejected", "failed", "stopped"} {
			m.deadLetters.WithLabelValues(lane, reason)
		}
		m.parked.WithLabelValues(lane)
		m.redelivered.WithLabelValues(lane)
		m.duplicates.WithLabelValues(lane)
		m.limiterWait.WithLabelValues(lane)
		m.inHand.WithLabelValues(lane).Set(0)
		m.pending.WithLabelValues(lane).Set(0)
		m.ackPending.WithLabelValues(lane).Set(0)
		m.oldest.WithLabelValues(lane).Set(0)
	}
	for _, state := range []string{"running", "paused", "canceled"} {
		m.campaigns.WithLabelValues(state)
	}
	for _, c := range pause.Causes {
		m.paused.WithLabelValues(string(c)).Set(0)
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Call counts a PushTemplate call.
func (m *Metrics) Call(lane string, out push.CallResult) {
	code := out.ResultCode
	if code == "" {
		code = "none"
		if out.HTTPStatus != 0 {
			code = "http_" + strconv.Itoa(out.HTTPStatus)
		}
	}
	m.calls.WithLabelValues(lane, out.API, out.Class.String(), code).Inc()
	if out.Throttled {
		m.live.throttled.Add(1)
	}
	m.callSeconds.Observe(out.Latency.Seconds())
}

// Chunk counts a chunk that ended.
func (m *Metrics) Chunk(lane, status string) { m.chunks.WithLabelValues(lane, status).Inc() }

// Duplicates counts dedupe hits.
func (m *Metrics) Duplicates(lane string, n int) {
	if n > 0 {
		m.duplicates.WithLabelValues(lane).Add(float64(n))
	}
}

// LimiterWait observes a wait for a slot.
func (m *Metrics) LimiterWait(lane string, d time.Duration) {
	m.limiterWait.WithLabelValues(lane).Observe(d.Seconds())
}

// InFlight moves the calls-in-flight gauge.
func (m *Metrics) InFlight(delta int) {
	m.inFlight.Add(float64(delta))
	m.live.callsInFlight.Add(int64(delta))
}

// lanes are the lanes' names, in the order of live.inHand.
var lanes = [2]string{topology.LaneDefault, topology.LaneBulk}

// JobInHand moves the jobs held on lane.
func (m *Metrics) JobInHand(lane string, delta int) {
	m.inHand.WithLabelValues(lane).Add(float64(delta))
	if lane == lanes[1] {
		m.live.inHand[1].Add(int64(delta))
	} else {
		m.live.inHand[0].Add(int64(delta))
	}
}

// Lane sets a lane's backlog.
func (m *Metrics) Lane(lane string, pending uint64, ackPending int, oldest time.Duration) {
	m.pending.WithLabelValues(lane).Set(float64(pending))
	m.ackPending.WithLabelValues(lane).Set(float64(ackPending))
	m.oldest.WithLabelValues(lane).Set(oldest.Seconds())
}

// ResultFailed counts a result the result stream did not take.
func (m *Metrics) ResultFailed() { m.resultFail.Inc() }

// Live is what the worker is doing now.
func (m *Metrics) Live() Live {
	return Live{CallsInFlight: int(m.live.callsInFlight.Load()), Rate: math.Float64frombits(m.live.rate.Load()),
		Throttled:   m.live.throttled.Load(),
		JobsInHand:  map[string]int{lanes[0]: int(m.live.inHand[0].Load()), lanes[1]: int(m.live.inHand[1].Load())},
		Credentials: m.creds.live()}
}

// Job counts a job that ended.
func (m *Metrics) Job(lane, status string) { m.jobs.WithLabelValues(lane, status).Inc() }

// Redelivered counts a redelivery.
func (m *Metrics) Redelivered(lane string) { m.redelivered.WithLabelValues(lane).Inc() }

// DeadLetter counts a dead letter.
func (m *Metrics) DeadLetter(lane, reason string) { m.deadLetters.WithLabelValues(lane, reason).Inc() }

// Paused sets the pause state of a cause.
func (m *Metrics) Paused(cause string, paused bool) {
	v := 0.0
	if paused {
		v = 1
	}
	m.paused.WithLabelValues(cause).Set(v)
}

// AckFailed counts an acknowledgement the server did not take.
func (m *Metrics) AckFailed(op string) { m.ackFailed.WithLabelValues(op).Inc() }

// Parked counts a parked job.
func (m *Metrics) Parked(lane string) { m.parked.WithLabelValues(lane).Inc() }

// Campaigns sets the campaigns by state.
func (m *Metrics) Campaigns(byState map[string]int) {
	for state, n := range byState {
		m.campaigns.WithLabelValues(state).Set(float64(n))
	}
}

// Rate sets the shared rate in force.
func (m *Metrics) Rate(perSecond float64) {
	m.rate.Set(perSecond)
	m.live.rate.Store(math.Float64bits(perSecond))
}
