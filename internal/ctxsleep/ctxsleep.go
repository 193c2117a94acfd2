// Package ctxsleep waits for a while or until a context ends, whichever is first.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits for d. It reports false when ctx ended first (and at once when ctx
// is already done, whatever d is).
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
