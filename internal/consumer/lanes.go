package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LaneState is a lane's backlog as its consumer reports it: what KEDA or an
// HPA scales on.
type LaneState struct {
	Lane       string
	Pending    uint64        // jobs not yet delivered
	AckPending int           // delivered, not yet acknowledged
	OldestWait time.Duration // how long the oldest undelivered job has waited (0: none)
}

// Lanes reads both lanes' consumers, and the oldest undelivered message of
// each (the first one on the lane's subjects after the consumer's last
// delivery).
func (q *Consumer) Lanes(ctx context.Context) ([]LaneState, error) {
	stream, err := q.js.Stream(ctx, q.cfg.Topology.JobsStream)
	if err != nil {
		return nil, err
	}
	var out []LaneState
	for _, l := range q.cfg.Topology.Lanes() {
		c := q.lane(l.Name)
		if c == nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, err
		}
		st := LaneState{Lane: l.Name, Pending: info.NumPending, AckPending: info.NumAckPending}
		if info.NumPending > 0 {
			m, err := stream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(l.Filter))
			switch {
			case err == nil:
				st.OldestWait = max(0, time.Since(m.Time))
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return nil, err
			}
		}
		out = append(out, st)
	}
	return out, nil
}
