package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// bed is an embedded NATS server and a queue running a handler of the test's.
type bed struct {
	t    *testing.T
	js   jetstream.JetStream
	topo topology.Topology
}

func newBed(t *testing.T, h consumer.Handler, maxDeliver int) *bed {
	t.Helper()
	return newBedWith(t, &server.Options{}, h, maxDeliver)
}

// newBedWith is a bed on a server started from opts (a small MaxPayload, say).
func newBedWith(t *testing.T, opts *server.Options, h consumer.Handler, maxDeliver int) *bed {
	t.Helper()
	ns := testenv.NATSWith(t, opts)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	b := &bed{t: t, js: js, topo: topology.Default()}
	cfg := consumer.Config{FetchWait: 200 * time.Millisecond, Grace: 2 * time.Second,
		Limits: consumer.Limits{AckWait: 2 * time.Second, MaxDeliver: maxDeliver, JobsMaxBytes: 8 << 20, ResultsMaxBytes: 8 << 20, DLQMaxBytes: 8 << 20}}
	ctx, cancel := context.WithCancel(context.Background())
	q, err := consumer.New(ctx, cfg, js, h, pause.NewGate(nil, nil), zap.NewNop(), nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func (b *bed) publish(subject, body, msgID string) {
	b.t.Helper()
	m := &nats.Msg{Subject: subject, Data: []byte(body), Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := b.js.PublishMsg(context.Background(), m); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bed) next(stream string, timeout time.Duration) jetstream.Msg {
	b.t.Helper()
	c, err := b.js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(timeout))
	if err != nil {
		b.t.Fatalf("nothing on %s within %s: %v", stream, timeout, err)
	}
	return m
}

// jobsLeft waits until the job stream holds want messages.
func (b *bed) jobsLeft(want uint64) {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := b.js.Stream(context.Background(), b.topo.JobsStream)
		if err != nil {
			b.t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got == want {
			return
		} else if time.Now().After(deadline) {
			b.t.Fatalf("job stream holds %d messages, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recorder keeps every delivery the handler saw.
type recorder struct {
	mu   sync.Mutex
	seen []consumer.Delivery
	at   []time.Time
}

func (r *recorder) add(d consumer.Delivery) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, d)
	r.at = append(r.at, time.Now())
	return len(r.seen)
}

func (r *recorder) deliveries() ([]consumer.Delivery, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]consumer.Delivery(nil), r.seen...), append([]time.Time(nil), r.at...)
}

func TestAckStoresTheResultThenRemovesTheJob(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		rec.add(d)
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: "push.results.r1",
			Result: &job.Result{JobID: "r1", Status: job.StatusSucceeded, Targets: 1, Sent: 1}}
	}), 3)
	b.publish("push.jobs.orders", `{"any":"bytes"}`, "id-1")
	m := b.next(b.topo.ResultsStream, 5*time.Second)
	if m.Subject() != "push.results.r1" || m.Headers().Get(jetstream.MsgIDHeader) != "r1" {
		t.Fatalf("result on %s with Nats-Msg-Id %q", m.Subject(), m.Headers().Get(jetstream.MsgIDHeader))
	}
	b.jobsLeft(0)
	got, _ := rec.deliveries()
	d := got[0]
	if d.Lane != topology.LaneDefault || d.Subject != "push.jobs.orders" || string(d.Data) != `{"any":"bytes"}` ||
		d.MsgID != "id-1" || d.Sequence != 1 || d.Number != 1 || d.Last {
		t.Fatalf("delivery: %+v", d)
	}
}

func TestTermWithADeadLetter(t *testing.T) {
	t.Parallel()
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		return consumer.Outcome{Action: consumer.Term, DeadLetter: &consumer.DeadLetter{JobID: "bad-1", Body: d.Data,
			Reason: consumer.ReasonRejected, Error: "appId: required"}}
	}), 3)
	b.publish("push.jobs.bulk.spring", "not json", "")
	m := b.next(b.topo.DLQStream, 5*time.Second)
	h := m.Headers()
	if m.Subject() != "push.dlq.bad-1" || string(m.Data()) != "not json" || h.Get(wire.HeaderReason) != "rejected" ||
		h.Get(wire.HeaderError) != "appId: required" || h.Get(wire.HeaderSubject) != "push.jobs.bulk.spring" ||
		h.Get(wire.HeaderDeliveries) != "1" || h.Get(wire.HeaderJobID) != "bad-1" {
		t.Fatalf("dead letter on %s: %q %v", m.Subject(), m.Data(), h)
	}
	b.jobsLeft(0)
}

// Pending runs beside the result: the result is stored while it has not
// returned, the job leaves the stream only after it returned, and while it
// runs, past the AckWait, the job stays this delivery's (no redelivery).
func TestPendingEndsBeforeTheAckAndAfterTheResult(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rec := &recorder{}
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		rec.add(d)
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: "push.results.p1",
			Result:  &job.Result{JobID: "p1", Status: job.StatusSucceeded, Targets: 1, Sent: 1},
			Pending: func() { <-release }}
	}), 3)
	b.publish("push.jobs.orders", "{}", "")
	if m := b.next(b.topo.ResultsStream, 5*time.Second); m.Subject() != "push.results.p1" {
		t.Fatalf("result on %s", m.Subject())
	}
	// The result is in and Pending still waits: the job stays in the stream,
	// this delivery's, past the bed's AckWait of 2 s.
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		s, err := b.js.Stream(context.Background(), b.topo.JobsStream)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 1 {
			t.Fatalf("the job stream holds %d messages before Pending returned, want 1", n)
		}
	}
	close(release)
	b.jobsLeft(0)
	if got, _ := rec.deliveries(); len(got) != 1 {
		t.Fatalf("%d deliveries: the job came back while its Pending ran", len(got))
	}
}

// Retry hands the job back for its delay; the last delivery says so.
func TestRetryRedeliversAfterTheDelayAndMarksTheLast(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		if rec.add(d) < 2 {
			return consumer.Outcome{Action: consumer.Retry, Delay: 700 * time.Millisecond}
		}
		return consumer.Outcome{Action: consumer.Term}
	}), 2)
	b.publish("push.jobs.bulk.c", "{}", "")
	b.jobsLeft(0)
	got, at := rec.deliveries()
	if len(got) != 2 || got[0].Number != 1 || got[0].Last || got[1].Number != 2 || !got[1].Last {
		t.Fatalf("deliveries: %+v", got)
	}
	if gap := at[1].Sub(at[0]); gap < 700*time.Millisecond {
		t.Fatalf("redelivered after %s, before the 700ms delay", gap)
	}
}

// An Ack whose result cannot be stored is not acked: the job comes back.
func TestAResultThatCannotBeStoredHandsTheJobBack(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		n := rec.add(d)
		subject := "nowhere.r2" // no stream takes it: refused
		if n > 1 {
			subject = "push.results.r2"
		}
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: subject, Result: &job.Result{JobID: "r2", Status: job.StatusSucceeded}}
	}), 5)
	b.publish("push.jobs.orders", "{}", "")
	if m := b.next(b.topo.ResultsStream, 5*time.Second); m.Subject() != "push.results.r2" {
		t.Fatalf("result on %s", m.Subject())
	}
	b.jobsLeft(0)
	if got, _ := rec.deliveries(); len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (the first one's result was refused)", len(got))
	}
}

// A result stream deleted under a running worker is re-created, and the result
// stored, instead of retrying for ever as if NATS were down.
func TestADeletedResultStreamIsRecreated(t *testing.T) {
	t.Parallel()
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: "push.results.r3", Result: &job.Result{JobID: "r3", Status: job.StatusSucceeded}}
	}), 3)
	if err := b.js.DeleteStream(context.Background(), b.topo.ResultsStream); err != nil {
		t.Fatal(err)
	}
	b.publish("push.jobs.orders", "{}", "")
	deadline := time.Now().Add(10 * time.Second)
	for _, err := b.js.Stream(context.Background(), b.topo.ResultsStream); err != nil; _, err = b.js.Stream(context.Background(), b.topo.ResultsStream) {
		if time.Now().After(deadline) {
			t.Fatalf("the result stream was not re-created: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := b.next(b.topo.ResultsStream, 10*time.Second); m.Subject() != "push.results.r3" {
		t.Fatalf("result on %s", m.Subject())
	}
	b.jobsLeft(0)
}

// The mux hands the deliveries of admin subjects to the recall handler and
// every other one to the push handler, as the queue delivers them.
func TestMuxRoutesAdminSubjectsToRecall(t *testing.T) {
	t.Parallel()
	pushes, recalls := &recorder{}, &recorder{}
	handler := func(rec *recorder) consumer.Handler {
		return consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
			rec.add(d)
			return consumer.Outcome{Action: consumer.Term}
		})
	}
	b := newBed(t, consumer.Mux{Push: handler(pushes), Recall: handler(recalls)}, 3)
	for _, s := range []string{"push.jobs.orders", "push.jobs.bulk.c", "push.jobs.bulk.c.admin", "push.jobs.bulk.admin"} {
		b.publish(s, "{}", "")
	}
	b.jobsLeft(0)
	subjects := func(rec *recorder) map[string]bool {
		got, _ := rec.deliveries()
		m := map[string]bool{}
		for _, d := range got {
			m[d.Subject] = true
		}
		return m
	}
	if p, r := subjects(pushes), subjects(recalls); len(p) != 2 || !p["push.jobs.orders"] || !p["push.jobs.bulk.c"] ||
		len(r) != 2 || !r["push.jobs.bulk.c.admin"] || !r["push.jobs.bulk.admin"] {
		t.Fatalf("pushes %v, recalls %v", p, r)
	}
}
