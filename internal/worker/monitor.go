package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/pause"
)

// MonitorEvery is how often the worker checks Redis and NATS while idle, so that
// readiness tells the truth before a job finds out.
const MonitorEvery = 2 * time.Second

// monitor checks Redis and NATS every MonitorEvery, and sets or clears their
// causes at the gate; it also keeps the campaigns' gauges.
type monitor struct {
	rdb     redis.UniversalClient // nil in dev mode
	nc      *nats.Conn
	gate    *pause.Gate
	metrics *metrics.Metrics
	control *campaign.Watcher
}

// Run checks until ctx ends.
func (m *monitor) Run(ctx context.Context) {
	t := time.NewTicker(MonitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.rdb != nil {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := m.rdb.Ping(pctx).Err()
			cancel()
			if err != nil && ctx.Err() == nil {
				m.gate.Set(pause.CauseRedis, fmt.Errorf("%w: %w", pause.ErrUnavailable, err))
			} else if err == nil {
				m.gate.Clear(pause.CauseRedis)
			}
		}
		m.metrics.Campaigns(m.control.Counts())
		if m.nc.IsConnected() {
			m.gate.Clear(pause.CauseNATS)
		} else {
			m.gate.Set(pause.CauseNATS, errors.New("NATS connection "+m.nc.Status().String()))
		}
	}
}
