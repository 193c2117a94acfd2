package pipeline

import "context"

// AppLimiter is a Limiter that holds a limit per credential (a credentials
// file: ratelimit.Apps): each call waits on, and reports throttling to, the
// limit of the credential that serves its app.
type AppLimiter interface {
	Limiter
	// For returns the app's limiter; its type is a literal (Limiter's methods)
	// so that ratelimit.Apps implements it without importing this package.
	For(appID string) interface {
		Wait(ctx context.Context, event bool) error
		Throttled()
	}
}

// LimiterFor is the limiter of a call for app: its credential's when l holds
// one per credential, else l itself.
func LimiterFor(l Limiter, app string) Limiter {
	if a, ok := l.(AppLimiter); ok {
		return a.For(app)
	}
	return l
}
