package retry_test

import (
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/retry"
)

func TestExponentialGrowsToItsMax(t *testing.T) {
	p := retry.Exponential{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.NextRetry(i + 1); got != w*time.Millisecond {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
}

func TestJitterStaysWithinItsShare(t *testing.T) {
	p := retry.Exponential{Initial: time.Second, Max: time.Second, Jitter: 0.2}
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := p.NextRetry(3)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 800*time.Millisecond || hi > 1200*time.Millisecond {
		t.Fatalf("jittered waits from %s to %s, want within 0.8 s–1.2 s", lo, hi)
	}
	if hi-lo < 200*time.Millisecond {
		t.Fatalf("waits from %s to %s: no real jitter", lo, hi)
	}
}

func TestHandBackMatchesTheDocumentedDelays(t *testing.T) {
	// docs/configuration.md (PUSH_RETRY_DELAY): first redelivery after 5 s, doubling, at most 5 minutes.
	for attempt, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 6: 160 * time.Second, 7: 5 * time.Minute, 30: 5 * time.Minute} {
		if got := retry.HandBack.NextRetry(attempt); got != want {
			t.Errorf("delivery %d: %s, want %s", attempt, got, want)
		}
	}
}

func TestBackOffCountsFromReset(t *testing.T) {
	b := retry.BackOff(retry.Exponential{Initial: time.Millisecond})
	b.NextBackOff()
	if got := b.NextBackOff(); got != 2*time.Millisecond {
		t.Fatalf("second wait %s, want 2ms", got)
	}
	b.Reset()
	if got := b.NextBackOff(); got != time.Millisecond {
		t.Fatalf("after Reset %s, want 1ms", got)
	}
}
