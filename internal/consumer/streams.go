package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/topology"
)

// Limits are the sizes and times of the streams and consumers. Each zero field
// takes its Default* constant.
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

// Defaults of Limits (docs/configuration.md's settings table shows the same values: the
// configuration takes them from here).
const (
	DefaultJobsMaxBytes     = 1 << 30
	DefaultJobsDuplicates   = 2 * time.Minute
	DefaultResultsMaxAge    = 24 * time.Hour
	DefaultResultsMaxBytes  = 1 << 30
	DefaultResultsDupWindow = 10 * time.Minute
	DefaultDLQMaxAge        = 14 * 24 * time.Hour
	DefaultDLQMaxBytes      = 1 << 30
	DefaultReplicas         = 1
	DefaultAckWait          = 30 * time.Second
	DefaultMaxDeliver       = 5
	DefaultMaxAckPending    = 1000

	// Parked jobs wait as long as their campaign is paused, within these bounds.
	DefaultParkedMaxAge   = 14 * 24 * time.Hour
	DefaultParkedMaxBytes = 1 << 30
)

// withDefaults fills each zero field with its own default, so that a caller who
// sets only AckWait keeps every other field at its default.
func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	num := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.JobsMaxBytes, DefaultJobsMaxBytes)
	dur(&l.JobsDuplicates, DefaultJobsDuplicates)
	dur(&l.ResultsMaxAge, DefaultResultsMaxAge)
	def(&l.ResultsMaxBytes, DefaultResultsMaxBytes)
	dur(&l.ResultsDupWindow, DefaultResultsDupWindow)
	dur(&l.DLQMaxAge, DefaultDLQMaxAge)
	def(&l.DLQMaxBytes, DefaultDLQMaxBytes)
	num(&l.Replicas, DefaultReplicas)
	dur(&l.AckWait, DefaultAckWait)
	num(&l.MaxDeliver, DefaultMaxDeliver)
	num(&l.MaxAckPending, DefaultMaxAckPending)
	return l
}

// ErrWrongRetention is returned when a job stream exists with another retention:
// it is never silently adopted.
var ErrWrongRetention = errors.New("job stream has the wrong retention")

// Ensure creates or updates the four streams and both consumers. Every worker
// runs it at start; it is safe to run from many at once.
// ErrConfig marks a topology that no retry can create: a limit out of range.
var ErrConfig = errors.New("invalid topology configuration")

// Permanent reports whether creating the topology failed for a reason that
// retrying cannot change: the worker's own limits, or JetStream refusing the
// configuration itself (a bad request, subjects that overlap another stream's,
// JetStream not enabled on the server or the account). A cluster that has no leader yet, a
// timeout or too few peers for the replicas are not: they pass.
func Permanent(err error) bool {
	if errors.Is(err, ErrConfig) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jetstream.JSErrCodeBadRequest, jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount,
			jetstream.JSErrCodeOverlappingFilterSubjects, jetstream.JSErrCodeDuplicateFilterSubjects, jetstream.JSErrCodeConsumerEmptyFilter:
			return true
		}
		// 10065: subjects overlap with an existing stream.
		return api.ErrorCode == 10065
	}
	return false
}

func Ensure(ctx context.Context, js jetstream.JetStream, t topology.Topology, l Limits) (defaultLane, bulkLane jetstream.Consumer, err error) {
	t, l = t.OrDefault(), l.withDefaults()
	if l.JobsDuplicates < 2*time.Minute {
		return nil, nil, fmt.Errorf("%w: the job stream's duplicate window must be at least 2 minutes, not %s", ErrConfig, l.JobsDuplicates)
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
			Name: t.DLQStream, Subjects: []string{t.DLQSubjects()},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
			MaxAge: l.DLQMaxAge, MaxBytes: l.DLQMaxBytes, Duplicates: 2 * time.Minute, Replicas: l.Replicas,
			Description: "push dead letters (pushworker)",
		},
		{
			Name: t.ParkedStream, Subjects: []string{t.ParkedSubjects()},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew,
			MaxAge: DefaultParkedMaxAge, MaxBytes: DefaultParkedMaxBytes, Duplicates: 2 * time.Minute, Replicas: l.Replicas,
			Description: "jobs of paused campaigns, as received (pushworker)",
		},
	}
	for _, cfg := range streams {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return nil, nil, err
		}
	}
	var out []jetstream.Consumer
	for _, lane := range t.Lanes() {
		cfg := jetstream.ConsumerConfig{Durable: lane.Consumer, FilterSubject: lane.Filter}
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

// ensureStream creates the stream when it is missing and updates it only when
// its settings differ: workers starting together on a topology that exists send
// JetStream no update at all, and on a new cluster only creates, of which one
// wins. (Concurrent updates of one stream crashed a nats-server 2.9.10 with a
// nil pointer in stream.updateWithAdvisory.)
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var s jetstream.Stream
		ictx, cancel := context.WithTimeout(ctx, AnswerWait)
		s, err = js.Stream(ictx, cfg.Name)
		cancel()
		switch {
		case err == nil:
			have := s.CachedInfo().Config
			if have.Retention != cfg.Retention {
				if cfg.Retention == jetstream.WorkQueuePolicy {
					return fmt.Errorf("%w: stream %s exists with %s retention and JetStream cannot change it to %s; "+
						"drain and delete it (nats stream rm %s), or point the worker at another server",
						ErrWrongRetention, cfg.Name, have.Retention, cfg.Retention, cfg.Name)
				}
				return fmt.Errorf("stream %s exists with %s retention, not %s", cfg.Name, have.Retention, cfg.Retention)
			}
			if sameStream(have, cfg) {
				return nil
			}
			_, err = CreateOrFind(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.UpdateStream(ctx, cfg) },
				func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, cfg.Name) })
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = CreateOrFind(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.CreateStream(ctx, cfg) },
				func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, cfg.Name) })
		}
		// Another worker created it first: read it again.
		if err == nil || !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("creating or updating stream %s: %w", cfg.Name, err)
	}
	return nil
}

// sameStream: have already holds every setting the worker asks for.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage && have.Discard == want.Discard &&
		set(have.MaxBytes, want.MaxBytes) && set(have.MaxAge, want.MaxAge) && set(have.Duplicates, want.Duplicates) &&
		max(have.Replicas, 1) == max(want.Replicas, 1) && have.Description == want.Description
}

// set: want is the server's default (the zero value) or what have holds.
func set[T comparable](have, want T) bool {
	var zero T
	return want == zero || have == want
}

// ensureConsumer creates the durable consumer when it is missing and updates
// it only when its settings differ.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var (
		c   jetstream.Consumer
		err error
	)
	for attempt := 0; attempt < 3; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, AnswerWait)
		c, err = js.Consumer(ictx, stream, cfg.Durable)
		cancel()
		find := func(ctx context.Context) (jetstream.Consumer, error) { return js.Consumer(ctx, stream, cfg.Durable) }
		switch {
		case err == nil && sameConsumer(c.CachedInfo().Config, cfg):
			return c, nil
		case err == nil:
			c, err = CreateOrFind(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return js.UpdateConsumer(ctx, stream, cfg) }, find)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			c, err = CreateOrFind(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return js.CreateConsumer(ctx, stream, cfg) }, find)
		}
		if err == nil || !errors.Is(err, jetstream.ErrConsumerExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating or updating consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// sameConsumer: have already holds every setting the worker asks for.
func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject && have.AckPolicy == want.AckPolicy && have.DeliverPolicy == want.DeliverPolicy &&
		set(have.AckWait, want.AckWait) && set(have.MaxDeliver, want.MaxDeliver) && set(have.MaxAckPending, want.MaxAckPending) &&
		max(have.Replicas, 1) == max(want.Replicas, 1)
}

// AnswerWait is how long CreateOrFind waits for JetStream's answer to a create.
const AnswerWait = 3 * time.Second

// CreateOrFind runs create with a deadline of its own (AnswerWait) and, when
// JetStream does not answer in time, asks with find whether what it asked for
// is there. A new nats-server 2.9 cluster left creates unanswered although it
// did them (three workers creating the same streams at once, most requests
// timed out while every stream was made), so that each stream cost a worker a
// whole attempt at its start. What find returns was made by another worker or
// by this request: the next start updates it if its settings differ.
func CreateOrFind[T any](ctx context.Context, create, find func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, AnswerWait)
	v, err := create(cctx)
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return v, err
	}
	fctx, cancel := context.WithTimeout(ctx, AnswerWait)
	defer cancel()
	if found, ferr := find(fctx); ferr == nil {
		return found, nil
	}
	return v, err
}
