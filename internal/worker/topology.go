package worker

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/internal/tracing"
)

// parts makes the parts' configurations from the worker's, with the tracer's
// scope, then lets o.Tune adjust them.
func (s *Worker) parts(o Options, tp trace.TracerProvider) Parts {
	c := s.cfg
	topo := o.Topology.OrDefault()
	handBack := retry.HandBack
	handBack.Initial = c.RetryDelay
	p := Parts{
		Consumer: consumer.Config{Topology: topo, JobsPerLane: c.JobsPerLane, Grace: c.ShutdownGrace,
			Limits: consumer.Limits{JobsMaxBytes: c.JobsMaxBytes, JobsDuplicates: c.DuplicateWindow, ResultsMaxAge: c.ResultsMaxAge,
				DLQMaxAge: c.DLQMaxAge, Replicas: c.Replicas, AckWait: c.AckWait, MaxDeliver: c.MaxDeliver},
			Tracer: tp.Tracer(tracing.Scope)},
		Pipeline: pipeline.Config{MaxInFlight: c.MaxInFlight, Attempts: c.Attempts, HandBack: handBack,
			Rules: jobRules(c, topo), Recheck: c.AckWait / 2, Tracer: tp.Tracer(tracing.Scope)},
	}
	if o.Tune != nil {
		o.Tune(&p)
	}
	return p
}

// openTracing is o.Traces, or the tracer provider the OTEL_* variables ask for.
func (s *Worker) openTracing(ctx context.Context, o Options) (trace.TracerProvider, error) {
	if o.Traces != nil {
		return o.Traces, nil
	}
	tp, shutdown, err := tracing.Setup(ctx, "pushworker", os.Getenv)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx) // what is batched goes out
	})
	if protocol, endpoint, ok := tracing.Exporter(os.Getenv); ok {
		s.log.Info("traces go to OTLP", zap.String("endpoint", dial.RedactURL(endpoint)), zap.String("protocol", protocol))
	}
	return tp, nil
}

// campaignBucket creates or finds the campaign control bucket.
func (s *Worker) campaignBucket(ctx context.Context, js jetstream.JetStream, name string) (kv jetstream.KeyValue, err error) {
	err = s.untilTopology(ctx, "campaign control bucket "+name, func(ctx context.Context) (err error) {
		kv, err = consumer.CreateOrFind(ctx,
			func(ctx context.Context) (jetstream.KeyValue, error) {
				return campaign.Bucket(ctx, js, name, s.cfg.Replicas)
			},
			func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, name) })
		return err
	})
	return kv, err
}

// openConsumer creates or finds the streams and the lanes' consumers, whose
// deliveries h handles.
func (s *Worker) openConsumer(ctx context.Context, js jetstream.JetStream, cfg consumer.Config, h consumer.Handler) (c *consumer.Consumer, err error) {
	err = s.untilTopology(ctx, "streams and consumers", func(ctx context.Context) (err error) {
		c, err = consumer.New(ctx, cfg, js, h, s.gate, s.log, s.metrics)
		return err
	})
	return c, err
}

// topologyAttempt bounds one attempt at the topology: JetStream answers in
// milliseconds once it has a leader; a cluster without one does not answer
// (each request of an attempt waits consumer.AnswerWait).
const topologyAttempt = 30 * time.Second

// untilTopology runs create, which makes part of the topology in JetStream,
// until it succeeds: JetStream may not be able to yet (a cluster still
// electing its leader, a node short of the replicas asked for). Meanwhile the
// worker is unready (cause streams) and says why; it gives up only when ctx
// ends or the configuration can never work.
func (s *Worker) untilTopology(ctx context.Context, what string, create func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, topologyAttempt)
		err := create(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.gate.Clear(pause.CauseStreams)
				s.log.Info("JetStream took the topology", zap.String("what", what), zap.Int("attempts", attempt))
			}
			return nil
		}
		err = fmt.Errorf("%s: %w", what, err)
		if ctx.Err() != nil || consumer.Permanent(err) {
			return err
		}
		s.gate.Set(pause.CauseStreams, err)
		delay := retry.Probe.NextRetry(attempt)
		s.log.Warn("waiting for JetStream to create the topology", zap.String("what", what), zap.Int("attempt", attempt),
			zap.Duration("retry_in", delay), zap.Error(err))
		if !clock.Sleep(ctx, delay) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}
