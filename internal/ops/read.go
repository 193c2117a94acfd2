package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/job"
)

// ReadNewest reads the messages of the newest n sequences a stream holds now
// (n = 0: all of them), oldest first, in batches, and gives each to f.
func (o *Ops) ReadNewest(ctx context.Context, streamName string, n uint64, f func(jetstream.Msg)) error {
	stream, err := o.js.Stream(ctx, streamName)
	if err != nil {
		return fmt.Errorf("stream %s (has a worker started against this server?): %w", streamName, err)
	}
	st := stream.CachedInfo().State
	if st.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if n > 0 && st.LastSeq >= st.FirstSeq+n {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, st.LastSeq-n+1
	}
	c, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for read, seq := uint64(0), uint64(0); read < st.Msgs && seq < st.LastSeq; {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if meta, err := m.Metadata(); err == nil {
				seq = meta.Sequence.Stream
			}
			f(m)
		}
		if got == 0 {
			return nil // the rest expired meanwhile
		}
		read += uint64(got)
	}
	return nil
}

// Follow reads the results under filter as a stream, from the start, and gives
// each to take until take says it has all it wants. It ends with ErrTimedOut
// after timeout, or with ctx's error.
func (o *Ops) Follow(ctx context.Context, filter string, timeout time.Duration, take func(*job.Result) (done bool)) error {
	c, err := o.js.OrderedConsumer(ctx, o.topo.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	it, err := c.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(tctx, it.Stop) // Next returns once the wait is over
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if tctx.Err() != nil {
				return ErrTimedOut
			}
			return err
		}
		var r job.Result
		if json.Unmarshal(m.Data(), &r) == nil && take(&r) {
			return nil
		}
	}
}
