package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/metrics"
)

// LaneWatch is how often a worker reads the lanes' consumers for the backlog
// metrics.
const LaneWatch = 5 * time.Second

// laneWatch keeps the backlog metrics: pending, ack pending, the oldest waiting
// job per lane. Every worker reads them: a dashboard takes any one worker's
// view (max by lane).
type laneWatch struct {
	consumer *consumer.Consumer
	metrics  *metrics.Metrics
	log      *zap.Logger
}

// Run reads the lanes every LaneWatch until ctx ends.
func (w *laneWatch) Run(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, LaneWatch)
		lanes, err := w.consumer.Lanes(rctx)
		cancel()
		if err == nil {
			for _, l := range lanes {
				w.metrics.Lane(l.Lane, l.Pending, l.AckPending, l.OldestWait)
			}
		} else if ctx.Err() == nil {
			w.log.Debug("lane backlog not read", zap.Error(err))
		}
		if !clock.Sleep(ctx, LaneWatch) {
			return
		}
	}
}
