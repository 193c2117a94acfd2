// Package clock is the time the worker's parts read and wait on. Production uses
// Real; tests inject a Fake, whose Sleep returns at once and moves its time on,
// so that tests of retries, deadlines and delays never sleep.
//
// It imports nothing of this project.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits for d. It reports false when ctx ended first (at once when ctx
	// is already done, whatever d is).
	Sleep(ctx context.Context, d time.Duration) bool
}

// Real is the system's clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// Sleep waits on a timer or ctx.
func (Real) Sleep(ctx context.Context, d time.Duration) bool { return Sleep(ctx, d) }

// Sleep waits for d on the system's clock, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Fake is a clock that moves only when slept on or advanced. It is safe for
// concurrent use.
type Fake struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// NewFake starts a fake clock at t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now is the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep records d and moves the time on by it, at once.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slept = append(f.slept, d)
	f.now = f.now.Add(max(d, 0))
	return true
}

// Advance moves the time on.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Slept lists every Sleep so far, in order.
func (f *Fake) Slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.slept...)
}
