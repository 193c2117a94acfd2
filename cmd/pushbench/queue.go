package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/loader"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// startQueueOnly runs, in place of the worker processes, the worker's own
// queue (internal/consumer: the fetch loop, the result's publish, the ack) with
// a handler that answers every job at once with a sent result: no Redis, no
// mPaaS call. The events' publish → result, and nats-server's CPU per job, are
// then what JetStream's way in and out costs alone: the floor under what a
// worker adds to an event, and under its queue's share of a campaign.
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
		res.AddChunk(job.ChunkResult{TargetMsgkey: j.Pairs(), Status: job.ChunkSent, Attempts: 1, ResultCode: "OK", PushSuccess: true})
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

// warmUp runs a campaign of --warmup targets through the workers before the
// measured one, and waits for its results: the measured campaign then meets
// workers, streams and a Redis that have run one already, as a worker's second
// campaign of the day does. Its calls are not counted (the emulator is reset
// after it).
func (b *bench) warmUp(ctx context.Context) error {
	nc, js, results, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	msgs, stop, err := stream(results)
	if err != nil {
		return err
	}
	defer stop()
	run := "warm" + strconv.FormatInt(time.Now().UnixNano(), 36)
	jobs := (b.o.warmup + b.o.jobSize - 1) / b.o.jobSize
	pub := loader.NewPublisher(ctx, js, b.campaignSubject(), 0)
	for i := range jobs {
		n := min(b.o.jobSize, b.o.warmup-i*b.o.jobSize)
		j := b.newJob(fmt.Sprintf("%s.%d", run, i), "bench", "w", "m-"+run, i*b.o.jobSize, n)
		body, _ := j.Encode()
		if err := pub.Publish(ctx, j.JobID, j.TargetCount(), body); err != nil {
			return err
		}
	}
	if err := pub.Close(); err != nil {
		return err
	}
	b.logf("warm-up: %d jobs of %d targets", jobs, b.o.jobSize)
	for got := 0; got < jobs; {
		select {
		case m := <-msgs:
			var r resultFigures
			if json.Unmarshal(m.Data(), &r) == nil && strings.HasPrefix(r.JobID, run+".") {
				got++
			}
		case <-ctx.Done():
			return fmt.Errorf("warm-up: %d of %d results: %w", got, jobs, ctx.Err())
		}
	}
	return nil
}
