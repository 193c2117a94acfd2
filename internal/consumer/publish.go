package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// publishResult stores the result in the result stream. Nats-Msg-Id = job id:
// a re-run's result is dropped as a duplicate, and then fresh is false. A
// result too big to store is stored truncated (job.Result.Truncate): a job
// never stays in the stream for want of room for its result.
func (q *Consumer) publishResult(ctx context.Context, subject string, r *job.Result) (fresh bool, err error) {
	body, err := r.Encode()
	if err != nil {
		return false, err
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{r.JobID}}}
	ack, err := q.publishAck(ctx, m)
	if tooBig(err) {
		q.log.Warn("result too big to store whole: storing it without its chunks and skipped targets",
			zap.String("job", job.Clip(r.JobID)), zap.Int("bytes", len(body)), zap.Error(err))
		if m.Data, err = r.Truncate(len(body)).Encode(); err != nil {
			return false, err
		}
		ack, err = q.publishAck(ctx, m)
	}
	return err == nil && !ack.Duplicate, err
}

// publishDeadLetter stores the dead letter; one too big to store whole is
// stored with a prefix of its body (wire.DeadLetter.Truncate).
func (q *Consumer) publishDeadLetter(ctx context.Context, subject string, dl *DeadLetter, msg jetstream.Msg) error {
	d := wire.DeadLetter{JobID: dl.JobID, Reason: dl.Reason, Error: dl.Error, Subject: subject, Body: dl.Body}
	if meta, err := msg.Metadata(); err == nil {
		d.Deliveries = meta.NumDelivered
	}
	to := q.cfg.Topology.DLQSubject(dl.JobID)
	err := q.publish(ctx, d.Msg(to))
	if tooBig(err) {
		q.log.Warn("dead letter too big to store whole: storing a prefix of its body with its length and SHA-256",
			zap.String("job", job.Clip(dl.JobID)), zap.Int("bytes", len(dl.Body)), zap.Error(err))
		err = q.publish(ctx, d.Truncate().Msg(to))
	}
	return err
}

// tooBig reports a publish refused for the message's size: over the server's
// max_payload (the client refuses it) or a stream's maximum message size.
func tooBig(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// publishParked stores a paused campaign's job as received, with the subject it
// came on and its job id (see wire.Parked).
func (q *Consumer) publishParked(ctx context.Context, msg jetstream.Msg, out Outcome) error {
	p := wire.Parked{JobID: out.JobID, Subject: msg.Subject(), Body: msg.Data()}
	if meta, err := msg.Metadata(); err == nil {
		p.Seq = meta.Sequence.Stream
	}
	return q.publish(ctx, p.ParkMsg(out.ParkSubject))
}

// ErrRefused wraps a publish that the server refused for the message itself (too
// big, a subject no stream takes): trying again changes nothing.
var ErrRefused = errors.New("publish refused")

// publish retries while JetStream cannot be reached, until ctx ends. A stream
// deleted under the worker is re-created (or the gate says which is gone).
func (q *Consumer) publish(ctx context.Context, m *nats.Msg) error {
	_, err := q.publishAck(ctx, m)
	return err
}

func (q *Consumer) publishAck(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := q.js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			if attempt > 1 {
				q.gate.Clear(pause.CauseNATS)
			}
			return ack, nil
		}
		var apiErr *jetstream.APIError
		switch {
		case errors.Is(err, jetstream.ErrNoStreamResponse) && q.js.Conn().IsConnected():
			// Connected, yet no stream answered: the stream for this subject is gone.
			q.recreate(ctx, fmt.Errorf("no stream answered a publish to %s: %w", m.Subject, err))
		case errors.As(err, &apiErr), errors.Is(err, nats.ErrMaxPayload):
			return nil, fmt.Errorf("%w: publishing to %s: %w", ErrRefused, m.Subject, err)
		default:
			q.gate.Set(pause.CauseNATS, err)
		}
		if !clock.Sleep(ctx, q.cfg.Publish.NextRetry(attempt)) {
			return nil, fmt.Errorf("publishing to %s: %w", m.Subject, err)
		}
	}
}
