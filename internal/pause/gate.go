// Package pause holds the worker's own problems: why it is paused, and the
// gate that stops fetching while any cause is open. The causes are named here
// and nowhere else; /readyz, the logs and the metrics show these names.
//
// It imports nothing of this project.
package pause

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
)

// Cause is one reason the worker waits.
type Cause string

// The causes.
const (
	CauseRedis Cause = "redis" // the dedupe store or the shared rate limit cannot be reached
	// The Redis user may not use the worker's keys (an ACL's NOPERM): set by
	// the store's callers, cleared only when a store call succeeds again, never
	// by a PING that works.
	CauseRedisPermission Cause = "redis-permission"
	CauseNATS            Cause = "nats"              // JetStream cannot be reached
	CauseStreams         Cause = "streams"           // a stream or consumer of the topology is missing and cannot be re-created
	CauseCredentials     Cause = "mpaas-credentials" // mPaaS refuses the AccessKey or the clock
	CauseMPaaS           Cause = "mpaas-unreachable" // no answer from mPaaS at all
)

// Causes lists every cause, for metrics that show each one.
var Causes = []Cause{CauseRedis, CauseRedisPermission, CauseNATS, CauseStreams, CauseCredentials, CauseMPaaS}

// StoreCause is the cause of a store error: a permission refused (NOPERM) is
// not Redis being away, and no PING shows it fixed.
func StoreCause(err error) Cause {
	if err != nil && strings.Contains(err.Error(), "NOPERM") {
		return CauseRedisPermission
	}
	return CauseRedis
}

// ErrUnavailable wraps every error of a store the worker needs (the dedupe store,
// the shared rate limit): the worker's problem, never the job's.
var ErrUnavailable = errors.New("store unavailable")

// Gate holds the worker's own problems (Redis down, mPaaS refusing the
// credentials, NATS unreachable): while any is open the worker fetches no new jobs,
// holds the ones in hand, and reports itself unready.
type Gate struct {
	mu      sync.Mutex
	causes  map[Cause]error
	changed chan struct{} // closed and replaced on every change
	onSet   func(cause Cause, err error)
	onClear func(cause Cause)
}

// NewGate makes an open gate. onSet and onClear (either may be nil) are called on
// changes, for logs and metrics.
func NewGate(onSet func(Cause, error), onClear func(Cause)) *Gate {
	return &Gate{causes: map[Cause]error{}, changed: make(chan struct{}), onSet: onSet, onClear: onClear}
}

// Set records a problem; it is reported once, until cleared.
func (g *Gate) Set(cause Cause, err error) {
	g.mu.Lock()
	_, had := g.causes[cause]
	g.causes[cause] = err
	if !had {
		g.notifyLocked()
	}
	g.mu.Unlock()
	if !had && g.onSet != nil {
		g.onSet(cause, err)
	}
}

// Clear records that a problem is gone.
func (g *Gate) Clear(cause Cause) {
	g.mu.Lock()
	_, had := g.causes[cause]
	delete(g.causes, cause)
	if had {
		g.notifyLocked()
	}
	g.mu.Unlock()
	if had && g.onClear != nil {
		g.onClear(cause)
	}
}

func (g *Gate) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// Causes lists the open problems, sorted.
func (g *Gate) Causes() []Cause {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Cause, 0, len(g.causes))
	for c := range g.causes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Reasons are the open problems with what each last said, by cause.
func (g *Gate) Reasons() map[Cause]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[Cause]string, len(g.causes))
	for c, err := range g.causes {
		out[c] = ""
		if err != nil {
			out[c] = err.Error()
		}
	}
	return out
}

// Open reports whether cause is open now.
func (g *Gate) Open(cause Cause) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.causes[cause]
	return ok
}

// Wait blocks until no problem is open, or ctx ends.
func (g *Gate) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		open, changed := len(g.causes) == 0, g.changed
		g.mu.Unlock()
		if open {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
