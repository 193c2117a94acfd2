// Package producer publishes push jobs from a Go service: each job is validated
// first, published on its lane with Nats-Msg-Id = job id (so a retried publish is
// dropped by the job stream instead of queued twice), and optionally waited for.
//
//	p, _ := producer.New(nc)
//	res, err := p.PublishAndWait(ctx, producer.Events("orders"), j)
//
// Jobs whose targets each have their own template values (mPaaS PushMultiple,
// 100 targets a call) are built with Personal and PersonalJobs.
package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// Lane is where a job goes: the events lane (one user, now) or the bulk lane
// (campaigns). Events never queue behind bulk jobs.
type Lane struct {
	bulk bool
	name string
}

// Events is the default lane: push.jobs.<name>. name is one subject token.
func Events(name string) Lane { return Lane{name: name} }

// Bulk is the bulk lane: push.jobs.bulk.<name>; name is the campaign.
func Bulk(name string) Lane { return Lane{bulk: true, name: name} }

// Subject is the lane's subject under the default topology.
func (l Lane) Subject() string { return l.subject(topology.Default()) }

func (l Lane) subject(t topology.Topology) string {
	if l.bulk {
		return t.BulkSubject(l.name)
	}
	return t.EventsSubject(l.name)
}

func (l Lane) check(t topology.Topology) (string, error) {
	subject := l.subject(t)
	want := map[bool]string{false: topology.LaneDefault, true: topology.LaneBulk}[l.bulk]
	if t.Lane(subject) != want {
		return "", fmt.Errorf("lane %q: want Events(name) or Bulk(name) with a name of one token", subject)
	}
	return subject, nil
}

// ErrNoResult is returned by PublishAndWait when ctx ends before the result comes.
var ErrNoResult = errors.New("no result before the context ended")

// Producer publishes jobs. It is safe for concurrent use.
type Producer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	rules  job.Rules
	topo   topology.Topology
	tracer trace.Tracer
}

// Option configures a Producer.
type Option func(*Producer)

// WithRules validates jobs with these rules (for a worker with a different
// per-job target cap or time zone).
func WithRules(r job.Rules) Option { return func(p *Producer) { p.rules = r } }

// WithTopology publishes under another topology than topology.Default() (the
// workers must use the same).
func WithTopology(t topology.Topology) Option { return func(p *Producer) { p.topo = t } }

// WithTracerProvider makes the producer's publish spans with tp instead of
// OpenTelemetry's global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(p *Producer) { p.tracer = tp.Tracer(tracing.Scope) }
}

// New makes a Producer on a NATS connection. Each publish is a span of the
// caller's trace (from ctx; OpenTelemetry's global provider unless
// WithTracerProvider), and the message carries it in its traceparent and
// tracestate headers, so that the worker's spans continue it.
func New(nc *nats.Conn, opts ...Option) (*Producer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	p := &Producer{nc: nc, js: js}
	for _, o := range opts {
		o(p)
	}
	if p.tracer == nil {
		p.tracer = otel.GetTracerProvider().Tracer(tracing.Scope)
	}
	p.topo = p.topo.OrDefault()
	p.rules.Topology = p.topo
	return p, nil
}

// Publish validates j, gives it a job id when it has none, and publishes it on
// lane. It returns once the job stream has stored the job. A full job queue is an
// error here: try again later with the same job (same id).
func (p *Producer) Publish(ctx context.Context, lane Lane, j *job.Job) error {
	_, err := p.PublishMsg(ctx, lane, j)
	return err
}

// PublishMsg is Publish that also says whether the job stream already had the
// job (a re-publish of the same job id within its duplicate window).
func (p *Producer) PublishMsg(ctx context.Context, lane Lane, j *job.Job) (duplicate bool, err error) {
	m, err := p.message(lane, j)
	if err != nil {
		return false, err
	}
	ctx, span := p.span(ctx, m, j)
	defer span.End()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return false, fmt.Errorf("publishing job %s to %s: %w", j.JobID, m.Subject, err)
	}
	return ack.Duplicate, nil
}

// span starts the publish's span and puts its context in m's headers.
func (p *Producer) span(ctx context.Context, m *nats.Msg, j *job.Job) (context.Context, trace.Span) {
	ctx, span := p.tracer.Start(ctx, "publish "+m.Subject, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes cost allocations: none when tracing is off
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject),
			attribute.String("pushworker.job_id", j.JobID), attribute.Int("pushworker.targets", j.TargetCount()))
	}
	tracing.Inject(ctx, m.Header)
	return ctx, span
}

// PublishTo validates and publishes j on a job subject given whole
// (push.jobs.NAME or push.jobs.bulk.NAME…), as cmd/enqueue's --subject does.
func (p *Producer) PublishTo(ctx context.Context, subject string, j *job.Job) (duplicate bool, err error) {
	switch p.topo.Lane(subject) {
	case topology.LaneDefault:
		return p.PublishMsg(ctx, Events(strings.TrimPrefix(subject, p.topo.EventsSubject(""))), j)
	case topology.LaneBulk:
		return p.PublishMsg(ctx, Bulk(strings.TrimPrefix(subject, p.topo.BulkSubject(""))), j)
	}
	return false, fmt.Errorf("subject %q: want %s (default lane) or %s (bulk lane)", subject,
		p.topo.EventsSubject("NAME"), p.topo.BulkSubject("NAME…"))
}

// PublishAndWait publishes j and waits for its result until ctx ends.
func (p *Producer) PublishAndWait(ctx context.Context, lane Lane, j *job.Job) (*job.Result, error) {
	m, err := p.message(lane, j)
	if err != nil {
		return nil, err
	}
	// Listen before publishing, so that the result cannot come first.
	sub, err := p.nc.SubscribeSync(p.topo.ResultSubject(j.ReplyTo, j.JobID))
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	pctx, span := p.span(ctx, m, j)
	_, err = p.js.PublishMsg(pctx, m)
	span.End()
	if err != nil {
		return nil, fmt.Errorf("publishing job %s to %s: %w", j.JobID, m.Subject, err)
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("job %s: %w", j.JobID, ErrNoResult)
			}
			return nil, err
		}
		var r job.Result
		if json.Unmarshal(msg.Data, &r) == nil && r.JobID == j.JobID {
			return &r, nil
		}
	}
}

func (p *Producer) message(lane Lane, j *job.Job) (*nats.Msg, error) {
	subject, err := lane.check(p.topo)
	if err != nil {
		return nil, err
	}
	if j.JobID == "" {
		j.JobID = NewJobID()
	}
	if err := j.Validate(p.rules); err != nil {
		return nil, err
	}
	body, err := j.Encode()
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{j.JobID}}}, nil
}

// NewJobID is a random job id.
func NewJobID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}
