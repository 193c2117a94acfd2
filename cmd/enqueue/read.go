package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/job"
)

// readAll reads every message a stream holds now, in batches, and gives each to f.
func (e *env) readAll(streamName string, f func(jetstream.Msg)) error {
	return e.readNewest(streamName, 0, f)
}

// readNewest reads the messages of the newest n sequences a stream holds now
// (n = 0: all of them), oldest first, in batches, and gives each to f.
func (e *env) readNewest(streamName string, n uint64, f func(jetstream.Msg)) error {
	stream, err := e.js.Stream(e.ctx, streamName)
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
	c, err := stream.OrderedConsumer(e.ctx, cfg)
	if err != nil {
		return err
	}
	for read, seq := uint64(0), uint64(0); read < st.Msgs && seq < st.LastSeq; {
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

// follow reads the results under filter as a stream, from the start, and gives
// each to take until take says it has all it wants. A timeout or the end of the
// command's context ends it with an error saying which.
func (e *env) follow(filter string, timeout time.Duration, take func(*job.Result) (done bool)) error {
	c, err := e.js.OrderedConsumer(e.ctx, e.topo.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	it, err := c.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, it.Stop) // Next returns once the wait is over
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if e.ctx.Err() != nil {
				return e.ctx.Err()
			}
			if ctx.Err() != nil {
				return errTimedOut
			}
			return err
		}
		var r job.Result
		if json.Unmarshal(m.Data(), &r) == nil && take(&r) {
			return nil
		}
	}
}

var errTimedOut = errors.New("timed out")

// printFailedBy prints failed targets by code, in code order.
func (e *env) printFailedBy(indent string, byCode map[string]int) {
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(e.stdout, "%sfailed with %s: %d\n", indent, c, byCode[c])
	}
}
