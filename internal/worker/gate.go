package worker

import (
	"context"
	"sort"
	"sync"
)

// Gate holds the worker's own problems (Redis down, mPaaS refusing the
// credentials, NATS unreachable): while any is open the worker fetches no new jobs,
// holds the ones in hand, and reports itself unready.
type Gate struct {
	mu      sync.Mutex
	causes  map[string]error
	changed chan struct{} // closed and replaced on every change
	onSet   func(cause string, err error)
	onClear func(cause string)
}

// NewGate makes an open gate. onSet and onClear (either may be nil) are called on
// changes, for logs and metrics.
func NewGate(onSet func(string, error), onClear func(string)) *Gate {
	return &Gate{causes: map[string]error{}, changed: make(chan struct{}), onSet: onSet, onClear: onClear}
}

// Set records a problem; it is reported once, until cleared.
func (g *Gate) Set(cause string, err error) {
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
func (g *Gate) Clear(cause string) {
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
func (g *Gate) Causes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.causes))
	for c := range g.causes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
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
