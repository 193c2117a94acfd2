package main

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// startQueueOnly runs, in place of the worker processes, the worker's own
// queue (internal/consumer: the fetch loop, the result's publish, the ack) with
// a handler that answers every job at once with a sent result: no Redis, no
// mPaaS call. The events' publish → result is then what JetStream's way in and
// out costs alone, the floor under what a worker adds to an event.
func (b *bench) startQueueOnly(ctx context.Context) error {
	nc, err := nats.Connect(b.natsURL)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	handler := consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		j, err := job.Decode(d.Data)
		if err != nil {
			return consumer.Outcome{Action: consumer.Term}
		}
		now := time.Now()
		res := job.NewResult(j, d.Number, now)
		res.AddChunk(job.ChunkResult{TargetMsgkey: j.TargetMsgkey, Status: job.ChunkSent, Attempts: 1, ResultCode: "OK", PushSuccess: true})
		return consumer.Outcome{Result: res.Finish(time.Now()), ResultSubject: topology.Default().ResultSubject(j.ReplyTo, j.JobID), Action: consumer.Ack}
	})
	qctx, stop := context.WithCancel(ctx)
	q, err := consumer.New(qctx, consumer.Config{JobsPerLane: b.o.jobsPerLane}, js, handler, pause.NewGate(nil, nil), zap.NewNop(), nil)
	if err != nil {
		stop()
		nc.Close()
		return err
	}
	var running sync.WaitGroup
	running.Add(1)
	go func() {
		defer running.Done()
		q.Run(qctx)
	}()
	b.closers = append(b.closers, func() {
		stop()
		running.Wait()
		nc.Close()
	})
	b.logf("the queue alone runs in the bench (--queue-only): no worker process")
	return nil
}
