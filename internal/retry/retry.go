// Package retry is the one retry policy of the worker and the loader: how long
// to wait before the next try of anything that failed for a passing reason (an
// mPaaS call, a probe of Redis, a publish, a fetch, a job handed back).
//
// It imports nothing of this project.
package retry

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy says how long to wait before try attempt+1, after attempt failures
// (attempt ≥ 1). Like River's ClientRetryPolicy it is one method, so a test or
// a caller can give its own.
type Policy interface {
	NextRetry(attempt int) time.Duration
}

// Exponential waits Initial after the first failure, Multiplier times longer
// after each next one, never more than Max; Jitter (0–1) spreads each wait over
// ±Jitter of itself so that many workers retrying together do not stay in step.
type Exponential struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64 // 0 means 2
	Jitter     float64
}

// NextRetry implements Policy.
func (e Exponential) NextRetry(attempt int) time.Duration {
	mult := e.Multiplier
	if mult <= 0 {
		mult = 2
	}
	d := float64(e.Initial) * math.Pow(mult, float64(max(attempt, 1)-1))
	if e.Max > 0 {
		d = min(d, float64(e.Max))
	}
	if e.Jitter > 0 {
		d += d * e.Jitter * (2*rand.Float64() - 1)
	}
	return time.Duration(d)
}

// The policies of the worker's loops. Each is the default of a setting or of a
// part's Config; a zero Initial means no wait (tests).
var (
	// Call retries one mPaaS call that failed for a passing reason, within one delivery.
	Call = Exponential{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5}
	// Probe waits between checks of a worker problem (Redis down, credentials refused).
	Probe = Exponential{Initial: 250 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2}
	// StoreProbe waits between retries of a Redis operation while Redis cannot
	// be reached: short, so that the worker is back within half a second of a
	// failover (the first retry after one can still find the old map of a
	// cluster's slots, and asks for the new one). A probe is the operation
	// itself, one per call in flight: 32 × 4 a second at most, while Redis is down.
	StoreProbe = Exponential{Initial: 50 * time.Millisecond, Max: 250 * time.Millisecond, Jitter: 0.2}
	// Publish retries a publish (a result, a dead letter, a loader's job) while
	// JetStream cannot be reached or the stream is full.
	Publish = Exponential{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	// Load retries a loader's publish that the full job queue refused, or whose
	// ack timed out. It starts short: the loader awaits its acks in order, so every
	// refused job of a burst waits its own first delay.
	Load = Exponential{Initial: 50 * time.Millisecond, Max: 2 * time.Second}
	// Fetch waits after a failed fetch of jobs.
	Fetch = Exponential{Initial: 500 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	// HandBack delays the redelivery of a job handed back (NakWithDelay); it
	// counts deliveries, so the delay grows with each one: 5 s, 10 s, … 5 min.
	HandBack = Exponential{Initial: 5 * time.Second, Max: 5 * time.Minute}
)

// BackOff runs p through cenkalti/backoff's interface, for loops written with
// backoff.Retry or NextBackOff. It counts its own attempts from Reset.
func BackOff(p Policy) backoff.BackOff { return &counted{p: p} }

type counted struct {
	p       Policy
	attempt int
}

func (c *counted) NextBackOff() time.Duration {
	c.attempt++
	return c.p.NextRetry(c.attempt)
}

func (c *counted) Reset() { c.attempt = 0 }
