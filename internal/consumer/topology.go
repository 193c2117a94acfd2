// Package consumer is the worker's JetStream side: the streams and durable
// consumers, the fetch loops of both lanes, heartbeats while a job runs, and the
// result, dead letter and acknowledgement that end every job.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology names the streams, subjects and consumers (interface.md §1). Tests give
// their own names to share a server.
type Topology struct {
	Root          string // subject root; "push" gives push.jobs.*, push.results.>, push.dlq.>
	JobsStream    string
	ResultsStream string
	DLQStream     string
	Durable       string // the default lane's consumer
	BulkDurable   string // the bulk lane's consumer
}

// DefaultTopology is the public interface.
func DefaultTopology() Topology {
	return Topology{Root: "push", JobsStream: "PUSH_JOBS", ResultsStream: "PUSH_RESULTS", DLQStream: "PUSH_DLQ",
		Durable: "push-worker", BulkDurable: "push-worker-bulk"}
}

// Subjects of the topology.
func (t Topology) DefaultLaneSubjects() string { return t.Root + ".jobs.*" }
func (t Topology) BulkLaneSubjects() string    { return t.Root + ".jobs.bulk.>" }
func (t Topology) ResultSubjects() string      { return t.Root + ".results.>" }
func (t Topology) ResultPrefix() string        { return t.Root + ".results." }
func (t Topology) DLQPrefix() string           { return t.Root + ".dlq." }

// Limits are the sizes and times of the streams and consumers.
type Limits struct {
	JobsMaxBytes     int64         // the job queue's size; a full queue refuses new jobs
	JobsDuplicates   time.Duration // publish dedupe window by Nats-Msg-Id; at least 2 min
	ResultsMaxAge    time.Duration
	ResultsMaxBytes  int64
	ResultsDupWindow time.Duration
	DLQMaxAge        time.Duration
	DLQMaxBytes      int64
	Replicas         int // 1, or 3 on a clustered JetStream
	AckWait          time.Duration
	MaxDeliver       int
	MaxAckPending    int
}

// DefaultLimits are the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		JobsMaxBytes: 1 << 30, JobsDuplicates: 2 * time.Minute,
		ResultsMaxAge: 24 * time.Hour, ResultsMaxBytes: 1 << 30, ResultsDupWindow: 10 * time.Minute,
		DLQMaxAge: 14 * 24 * time.Hour, DLQMaxBytes: 1 << 30,
		Replicas: 1, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000,
	}
}

// ErrWrongRetention is returned when a job stream exists with another retention:
// it is never silently adopted.
var ErrWrongRetention = errors.New("job stream has the wrong retention")

// Ensure creates or updates the three streams and both consumers. Every worker
// runs it at start; it is safe to run from many at once.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology, l Limits) (defaultLane, bulkLane jetstream.Consumer, err error) {
	if l.JobsDuplicates < 2*time.Minute {
		return nil, nil, fmt.Errorf("the job stream's duplicate window must be at least 2 minutes, not %s", l.JobsDuplicates)
	}
	streams := []jetstream.StreamConfig{
		{
			Name: t.JobsStream, Subjects: []string{t.DefaultLaneSubjects(), t.BulkLaneSubjects()},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew,
			MaxBytes: l.JobsMaxBytes, Duplicates: l.JobsDuplicates, Replicas: l.Replicas,
			Description: "push jobs (pushworker)",
		},
		{
			Name: t.ResultsStream, Subjects: []string{t.ResultSubjects()},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
			MaxAge: l.ResultsMaxAge, MaxBytes: l.ResultsMaxBytes, Duplicates: l.ResultsDupWindow, Replicas: l.Replicas,
			Description: "push results (pushworker)",
		},
		{
			Name: t.DLQStream, Subjects: []string{t.Root + ".dlq.>"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
			MaxAge: l.DLQMaxAge, MaxBytes: l.DLQMaxBytes, Duplicates: 2 * time.Minute, Replicas: l.Replicas,
			Description: "push dead letters (pushworker)",
		},
	}
	for _, cfg := range streams {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return nil, nil, err
		}
	}
	consumers := []jetstream.ConsumerConfig{
		{Durable: t.Durable, FilterSubject: t.DefaultLaneSubjects()},
		{Durable: t.BulkDurable, FilterSubject: t.BulkLaneSubjects()},
	}
	var out []jetstream.Consumer
	for _, cfg := range consumers {
		cfg.AckPolicy = jetstream.AckExplicitPolicy
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		cfg.AckWait = l.AckWait
		cfg.MaxDeliver = l.MaxDeliver
		cfg.MaxAckPending = l.MaxAckPending
		cfg.Replicas = l.Replicas
		c, err := ensureConsumer(ctx, js, t.JobsStream, cfg)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c)
	}
	return out[0], out[1], nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	if s, err := js.Stream(ctx, cfg.Name); err == nil {
		if have := s.CachedInfo().Config.Retention; have != cfg.Retention {
			if cfg.Retention == jetstream.WorkQueuePolicy {
				return fmt.Errorf("%w: stream %s exists with %s retention and JetStream cannot change it to %s; "+
					"drain and delete it (nats stream rm %s), or point the worker at another server",
					ErrWrongRetention, cfg.Name, have, cfg.Retention, cfg.Name)
			}
			return fmt.Errorf("stream %s exists with %s retention, not %s", cfg.Name, have, cfg.Retention)
		}
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		// Two workers starting together may both find no stream and both create it;
		// the second then updates instead.
		if _, err = js.CreateOrUpdateStream(ctx, cfg); err == nil || !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("creating or updating stream %s: %w", cfg.Name, err)
	}
	return nil
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var (
		c   jetstream.Consumer
		err error
	)
	for attempt := 0; attempt < 3; attempt++ {
		if c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg); err == nil || !errors.Is(err, jetstream.ErrConsumerExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating or updating consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}
