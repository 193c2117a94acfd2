package metrics

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// credentialMetrics are the series of every credential, labeled by its AccessKey
// id's first characters (config.KeyPrefix), never the secret.
type credentialMetrics struct {
	rate      *prometheus.GaugeVec
	calls     *prometheus.CounterVec
	throttled *prometheus.CounterVec

	mu  sync.Mutex
	all map[string]*Credential
}

func newCredentialMetrics(f func(prometheus.Collector) prometheus.Collector) *credentialMetrics {
	return &credentialMetrics{all: map[string]*Credential{},
		rate: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushworker_credential_rate_limit_calls_per_second",
			Help: "A credential's shared rate in force (its rateLimit, or PUSH_RATE_LIMIT with one AccessKey), lowered while mPaaS throttles its AccessKey, by credential (the AccessKey id's first characters)."}, []string{"credential"})).(*prometheus.GaugeVec),
		calls: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_credential_calls_total",
			Help: "mPaaS calls that took a slot of a credential's limit, by credential (the AccessKey id's first characters)."}, []string{"credential"})).(*prometheus.CounterVec),
		throttled: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushworker_credential_throttled_total",
			Help: "Throttled answers (Throttling*, 8011) to a credential's calls, by credential (the AccessKey id's first characters)."}, []string{"credential"})).(*prometheus.CounterVec),
	}
}

// Credential counts one credential's calls; its methods are cheap and safe for
// concurrent use.
type Credential struct {
	name      string
	rateG     prometheus.Gauge
	callsC    prometheus.Counter
	throttleC prometheus.Counter
	rate      atomic.Uint64 // float64 bits
	calls     atomic.Int64
	throttled atomic.Int64
}

// Credential is the counter of the credential shown as name, made at its first
// use with its rate set to ceiling.
func (m *Metrics) Credential(name string, ceiling float64) *Credential {
	cm := m.creds
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if c := cm.all[name]; c != nil {
		return c
	}
	c := &Credential{name: name, rateG: cm.rate.WithLabelValues(name), callsC: cm.calls.WithLabelValues(name),
		throttleC: cm.throttled.WithLabelValues(name)}
	c.Rate(ceiling)
	cm.all[name] = c
	return c
}

// Rate sets the credential's shared rate in force.
func (c *Credential) Rate(perSecond float64) {
	c.rateG.Set(perSecond)
	c.rate.Store(math.Float64bits(perSecond))
}

// Call counts a call that took a slot.
func (c *Credential) Call() { c.callsC.Inc(); c.calls.Add(1) }

// Throttled counts a throttled answer.
func (c *Credential) Throttled() { c.throttleC.Inc(); c.throttled.Add(1) }

// LiveCredential is one credential as the worker reports it.
type LiveCredential struct {
	Credential string  `json:"credential"` // the AccessKey id's first characters
	Rate       float64 `json:"rateLimit"`  // calls per second in force
	Calls      int64   `json:"calls"`      // calls since the start
	Throttled  int64   `json:"throttled"`  // throttled answers since the start
}

func (cm *credentialMetrics) live() []LiveCredential {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	out := make([]LiveCredential, 0, len(cm.all))
	for _, c := range cm.all {
		out = append(out, LiveCredential{Credential: c.name, Rate: math.Float64frombits(c.rate.Load()),
			Calls: c.calls.Load(), Throttled: c.throttled.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Credential < out[j].Credential })
	return out
}
