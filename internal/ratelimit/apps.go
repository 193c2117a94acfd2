package ratelimit

import (
	"context"
	"errors"
	"fmt"
)

// Limiter is what a call waits on: Redis and Memory, or one credential's
// limit under a cap of all of them (Apps.For). It is an alias of the
// interface literal so that Apps.For has the signature pipeline.AppLimiter
// names without this package importing the pipeline.
type Limiter = interface {
	Wait(ctx context.Context, event bool) error
	Throttled()
}

// ErrNoLimit is a wait for an app that no credential serves.
var ErrNoLimit = errors.New("rate limiter: no credential serves this app")

// Apps are the limits of several credentials (a credentials file): each
// credential's own shared rate, adaptive on its own, so that mPaaS throttling
// one AccessKey slows only the apps it serves; and, when Total is set, one
// rate over all of them.
type Apps struct {
	byApp map[string]Limiter
	place map[string]int // app → its credential's place, in the order of Add
	n     int
	total Limiter // nil: no cap over the credentials
}

// NewApps makes an empty set with an optional cap over all credentials.
func NewApps(total Limiter) *Apps {
	return &Apps{byApp: map[string]Limiter{}, place: map[string]int{}, total: total}
}

// Add gives apps the limit l of one more credential.
func (a *Apps) Add(l Limiter, apps ...string) {
	for _, app := range apps {
		a.byApp[app], a.place[app] = l, a.n
	}
	a.n++
}

// Credential is the place of app's credential, in the order of Add; -1 for none.
func (a *Apps) Credential(app string) int {
	if i, ok := a.place[app]; ok {
		return i
	}
	return -1
}

// Credentials is how many credentials were added.
func (a *Apps) Credentials() int { return a.n }

// For is the limiter of app's calls: its credential's, then the cap.
func (a *Apps) For(app string) Limiter {
	l, ok := a.byApp[app]
	if !ok {
		return noLimit{}
	}
	if a.total == nil {
		return l
	}
	return capped{l, a.total}
}

// Wait is for a call that names no app, which a credentials file has no
// limit for: it fails. Every caller of the worker asks For its app first.
func (a *Apps) Wait(context.Context, bool) error {
	return fmt.Errorf("%w: the call names none", ErrNoLimit)
}

// Throttled without an app names no credential to slow down: nothing to do.
func (a *Apps) Throttled() {}

// capped is a credential's limit under the cap over all credentials: a call
// takes a slot of each, its credential's first. A throttled answer is the
// credential's: mPaaS throttles an AccessKey, not the fleet.
type capped struct{ own, total Limiter }

func (c capped) Wait(ctx context.Context, event bool) error {
	if err := c.own.Wait(ctx, event); err != nil {
		return err
	}
	return c.total.Wait(ctx, event)
}

func (c capped) Throttled() { c.own.Throttled() }

type noLimit struct{}

func (noLimit) Wait(context.Context, bool) error { return ErrNoLimit }
func (noLimit) Throttled()                       {}
