package loader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/tracing"
)

// Publisher publishes jobs asynchronously with backpressure: at most MaxBytes of
// jobs wait for their acks. A publish the stream refuses because it is full, or
// that times out, is sent again with the same Nats-Msg-Id until it is stored, so
// a retry never enqueues a job twice.
type Publisher struct {
	js      jetstream.JetStream
	subject string
	budget  chan struct{} // one token per KiB in flight
	acks    chan pending
	done    chan struct{}
	failed  chan struct{} // closed with err set: Publish takes no more jobs
	err     error
	errOnce sync.Once

	// Only what the stream acknowledged is counted: a job published but not
	// acknowledged (the load stopped first) is not.
	Stored           atomic.Int64 // jobs newly stored
	StoredTargets    atomic.Int64 // their targets
	Duplicates       atomic.Int64 // jobs the stream already had (a rerun)
	DuplicateTargets atomic.Int64 // their targets
	Retries          atomic.Int64 // publishes sent again (full stream, timeouts)
	FullWaits        atomic.Int64 // of those, because the job queue was full

	// OnAck, when set before the first Publish, is called with the id of each job
	// the stream acknowledged (stored or duplicate), from one goroutine.
	OnAck func(id string)

	retry retry.Policy // the wait before a refused or timed-out publish goes again
}

type pending struct {
	msg     *nats.Msg
	fut     jetstream.PubAckFuture
	cost    int
	targets int
}

// DefaultMaxBytes bounds the jobs in flight, and with it the loader's memory.
const DefaultMaxBytes = 4 << 20

// NewPublisher publishes to subject. js should come from jetstream.New with
// WithPublishAsyncMaxPending set.
func NewPublisher(ctx context.Context, js jetstream.JetStream, subject string, maxBytes int) *Publisher {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	p := &Publisher{js: js, subject: subject, budget: make(chan struct{}, maxBytes>>10),
		acks: make(chan pending, 1<<16), done: make(chan struct{}), failed: make(chan struct{}), retry: retry.Load}
	go p.collect(ctx)
	return p
}

// Publish sends one job of targets targets; it blocks while too many bytes wait
// for acks.
func (p *Publisher) Publish(ctx context.Context, id string, targets int, body []byte) error {
	cost := max(1, len(body)>>10)
	cost = min(cost, cap(p.budget))
	for range cost {
		select {
		case p.budget <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.failed:
			return p.err
		}
	}
	m := &nats.Msg{Subject: p.subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	tracing.Inject(ctx, m.Header) // the load's span, when the caller has one, is each job's parent
	fut, err := p.send(ctx, m)
	if err != nil {
		return err
	}
	select {
	case p.acks <- pending{m, fut, cost, targets}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.failed:
		return p.err
	}
}

// send publishes, waiting while the client's own async window is stalled.
func (p *Publisher) send(ctx context.Context, m *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		fut, err := p.js.PublishMsgAsync(m)
		if err == nil {
			return fut, nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return nil, fmt.Errorf("publishing %s: %w", m.Header.Get(jetstream.MsgIDHeader), err)
		}
		if !clock.Sleep(ctx, 20*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// collect waits for the acks in order, retrying refused publishes.
func (p *Publisher) collect(ctx context.Context) {
	defer close(p.done)
	for pe := range p.acks {
		if err := p.await(ctx, &pe); err != nil {
			p.fail(err)
			p.settle(&pe)
			return
		}
		for range pe.cost {
			<-p.budget
		}
	}
}

// SettleWait is how long a failed or canceled load waits for the acks of the
// jobs it had already sent, to count those the stream stored.
const SettleWait = 2 * time.Second

// settle counts, without sending anything again, the jobs from first on that the
// stream acknowledges within SettleWait, until Close.
func (p *Publisher) settle(first *pending) {
	deadline := time.NewTimer(SettleWait)
	defer deadline.Stop()
	late := false
	count := func(pe *pending) {
		var ack *jetstream.PubAck
		if late {
			select {
			case ack = <-pe.fut.Ok():
			default:
			}
		} else {
			select {
			case ack = <-pe.fut.Ok():
			case <-pe.fut.Err():
			case <-deadline.C:
				late = true
			}
		}
		if ack != nil {
			p.count(ack, pe)
		}
	}
	count(first)
	for pe := range p.acks {
		count(&pe)
	}
}

func (p *Publisher) count(ack *jetstream.PubAck, pe *pending) {
	targets := pe.targets
	if p.OnAck != nil {
		p.OnAck(pe.msg.Header.Get(jetstream.MsgIDHeader))
	}
	if ack.Duplicate {
		p.Duplicates.Add(1)
		p.DuplicateTargets.Add(int64(targets))
	} else {
		p.Stored.Add(1)
		p.StoredTargets.Add(int64(targets))
	}
}

func (p *Publisher) await(ctx context.Context, pe *pending) error {
	for attempt := 1; ; attempt++ {
		select {
		case ack := <-pe.fut.Ok():
			p.count(ack, pe)
			return nil
		case err := <-pe.fut.Err():
			if !retryable(err) {
				return fmt.Errorf("publishing %s: %w", pe.msg.Header.Get(jetstream.MsgIDHeader), err)
			}
			p.Retries.Add(1)
			if isFull(err) {
				p.FullWaits.Add(1)
			}
			if !clock.Sleep(ctx, p.retry.NextRetry(attempt)) {
				return ctx.Err()
			}
			fut, serr := p.send(ctx, pe.msg)
			if serr != nil {
				return serr
			}
			pe.fut = fut
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errCodeStoreFailed is JetStream's "storing the message failed", which a full
// stream with discard-new answers ("maximum bytes exceeded").
const errCodeStoreFailed jetstream.ErrorCode = 10077

// retryable: the job queue is full (the workers will drain it), or the ack did not
// come in time (the same Nats-Msg-Id makes the retry safe).
func retryable(err error) bool {
	return isFull(err) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// isFull: the server could not store the message. With discard-new that is the
// full stream ("maximum bytes exceeded"); any other storage failure is worth the
// same retry.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed
}

func (p *Publisher) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		close(p.failed)
	})
}

// Close waits until every job is stored (or refused for good).
func (p *Publisher) Close() error {
	close(p.acks)
	<-p.done
	return p.err
}
