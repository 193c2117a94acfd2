package teststack

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// InOrder reads a stream through an ordered consumer and hands each stored
// message once, in stream order. nats.go's ordered consumer read with Next (it
// makes a new server-side consumer for every call) was seen, on a new
// three-node 2.9.10 cluster, to hand the same stream sequence twice; a test
// that counted it would report a second result the stream does not hold. Two
// stored messages (two sequences) are still two.
type InOrder struct {
	c       jetstream.Consumer
	last    uint64 // the stream sequence handed last
	repeats int    // messages the consumer handed again, skipped
}

// NewInOrder reads c, which must be an ordered consumer.
func NewInOrder(c jetstream.Consumer) *InOrder { return &InOrder{c: c} }

// Next is the next stored message after the last one handed, waiting up to wait.
func (r *InOrder) Next(wait time.Duration) (jetstream.Msg, error) {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left < 10*time.Millisecond {
			return nil, nats.ErrTimeout
		}
		m, err := r.c.Next(jetstream.FetchMaxWait(left))
		if err != nil {
			return nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("reading a stored message's metadata: %w", err)
		}
		if meta.Sequence.Stream <= r.last {
			r.repeats++ // handed already
			continue
		}
		r.last = meta.Sequence.Stream
		return m, nil
	}
}

// Repeats is how many messages the consumer handed a second time (skipped).
func (r *InOrder) Repeats() int { return r.repeats }
