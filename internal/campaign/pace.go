package campaign

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
)

// CallSize is the most targets one call of a campaign paced at perSecond may
// carry: a twentieth of a second's worth (at least 1). With a burst of one call
// a one-second window sees at most the pace plus one call, 1.05 × the pace,
// which leaves the promised 1.1 × a margin for the calls' own jitter.
func CallSize(perSecond float64, jobCallSize int) int {
	if perSecond <= 0 {
		return jobCallSize
	}
	return min(jobCallSize, max(1, int(perSecond/20)))
}

// Pace holds each paced campaign's targets per second over every worker that
// shares its Redis: one GCRA key per campaign, a call of n targets taking n.
type Pace struct {
	lim    ratelimit.GCRA
	prefix string
}

// NewPace keeps the keys under prefix (the worker's Redis prefix + "pace:").
func NewPace(rdb redis.UniversalClient, prefix string) *Pace {
	return &Pace{lim: ratelimit.NewGCRA(rdb), prefix: prefix}
}

func limitOf(perSecond float64, n int) ratelimit.Limit {
	l := ratelimit.Limit{Rate: int(math.Round(perSecond)), Period: time.Second, Burst: max(n, 1)}
	if perSecond < 1 {
		l.Rate, l.Period = 1, time.Duration(float64(time.Second)/perSecond)
	}
	return l
}

// Wait takes n targets of the campaign's pace, sleeping until they are free.
func (p *Pace) Wait(ctx context.Context, name string, perSecond float64, n int) error {
	if perSecond <= 0 {
		return nil
	}
	for {
		res, err := p.lim.AllowN(ctx, p.prefix+name, limitOf(perSecond, n), n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: campaign pace: %w", pause.ErrUnavailable, err)
		}
		if res.Allowed >= n {
			return nil
		}
		if !clock.Sleep(ctx, max(res.RetryAfter, time.Millisecond)) {
			return ctx.Err()
		}
	}
}

// MemoryPace is Pace for one process (dev mode).
type MemoryPace struct {
	mu   sync.Mutex
	lims map[string]*rate.Limiter
}

// NewMemoryPace makes an in-process pace.
func NewMemoryPace() *MemoryPace { return &MemoryPace{lims: map[string]*rate.Limiter{}} }

// Wait takes n targets of the campaign's pace.
func (m *MemoryPace) Wait(ctx context.Context, name string, perSecond float64, n int) error {
	if perSecond <= 0 {
		return nil
	}
	m.mu.Lock()
	l := m.lims[name]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(perSecond), max(n, 1))
		m.lims[name] = l
	}
	if l.Limit() != rate.Limit(perSecond) || l.Burst() < n {
		l.SetLimit(rate.Limit(perSecond))
		l.SetBurst(max(n, l.Burst()))
	}
	m.mu.Unlock()
	return l.WaitN(ctx, n)
}
