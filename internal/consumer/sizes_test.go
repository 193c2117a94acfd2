package consumer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// smallPayload is the test server's max_payload: 64 KiB instead of 1 MiB.
const smallPayload = 64 << 10

// A result over the server's max_payload is stored truncated, with the same
// counts, and the job leaves the stream.
func TestAResultTooBigIsStoredTruncated(t *testing.T) {
	t.Parallel()
	big := &job.Result{JobID: "big-1", AppID: "a", WorkspaceID: "w", TaskName: "t", API: job.APITemplate}
	for i := 0; i < 3000; i += 10 {
		c := job.ChunkResult{Status: job.ChunkSent, Attempts: 1, RequestID: "req-" + strconv.Itoa(i), ResultCode: "OK", PushSuccess: true}
		for k := i; k < i+10; k++ {
			c.TargetMsgkey = append(c.TargetMsgkey, job.Target{Target: fmt.Sprintf("user-%06d", k), MsgKey: "k"})
		}
		big.AddChunk(c)
	}
	big.AddSkipped(job.Target{Target: "other", MsgKey: "k"})
	now := time.Now()
	big.Finish(now)
	whole, _ := big.Encode()
	if len(whole) <= smallPayload {
		t.Fatalf("the result is %d bytes: not over the server's %d", len(whole), smallPayload)
	}
	b := newBedWith(t, &server.Options{MaxPayload: smallPayload}, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: "push.results.big-1", Result: big}
	}), 5)
	b.publish("push.jobs.orders", "{}", "")
	m := b.next(b.topo.ResultsStream, 10*time.Second)
	var got job.Result
	if err := json.Unmarshal(m.Data(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Truncated || got.ResultBytes != len(whole) || len(got.Chunks) != 0 || len(got.Skipped) != 0 ||
		got.Targets != 3001 || got.Sent != 3000 || got.Duplicates != 1 || got.Failed != 0 || got.Status != job.StatusSucceeded ||
		got.JobID != "big-1" || got.TaskName != "t" || !got.FinishedAt.Equal(big.FinishedAt.Time.Truncate(time.Millisecond)) {
		t.Fatalf("truncated result: %+v", got)
	}
	if !strings.Contains(string(m.Data()), `"truncated":true`) || !strings.Contains(string(m.Data()), `"chunks":[]`) {
		t.Fatalf("truncated result's JSON: %s", m.Data())
	}
	b.jobsLeft(0)
}

// A dead letter over the server's max_payload is stored with a prefix of its
// body, its length and SHA-256; the job leaves the stream.
func TestADeadLetterTooBigIsStoredTruncated(t *testing.T) {
	t.Parallel()
	body := `{"pad":"` + strings.Repeat("x", smallPayload-600) + `"}`
	b := newBedWith(t, &server.Options{MaxPayload: smallPayload}, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		return consumer.Outcome{Action: consumer.Term, ResultSubject: "push.results.big-2",
			Result:     job.Rejected("big-2", nil, fmt.Errorf("pad: %s", strings.Repeat("e", 700)), d.Number, time.Now()),
			DeadLetter: &consumer.DeadLetter{JobID: "big-2", Body: d.Data, Reason: consumer.ReasonRejected, Error: "pad: " + strings.Repeat("e", 700)}}
	}), 5)
	b.publish("push.jobs.orders", body, "")
	m := b.next(b.topo.DLQStream, 10*time.Second)
	sum := sha256.Sum256([]byte(body))
	h := m.Headers()
	if h.Get(wire.HeaderBodyBytes) != strconv.Itoa(len(body)) || h.Get(wire.HeaderBodySHA256) != hex.EncodeToString(sum[:]) ||
		string(m.Data()) != body[:wire.MaxPrefix] || h.Get(wire.HeaderReason) != "rejected" || !strings.HasPrefix(h.Get(wire.HeaderError), "pad: eee") {
		t.Fatalf("dead letter: %d bytes, headers %v", len(m.Data()), h)
	}
	d := wire.DecodeDeadLetter(1, time.Now(), h, m.Data())
	if !d.Truncated() || d.BodyBytes != len(body) {
		t.Fatalf("decoded: %+v", d)
	}
	if r := b.next(b.topo.ResultsStream, 5*time.Second); r.Subject() != "push.results.big-2" {
		t.Fatalf("result on %s", r.Subject())
	}
	b.jobsLeft(0)
}

// A result the result stream refuses for good, even truncated (here: a
// maximum message size smaller than any result), does not keep the job for
// ever: each delivery hands it back, and the last one dead-letters it.
func TestAResultNeverStoredEndsWithADeadLetter(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	ready := make(chan struct{})
	b := newBed(t, consumer.HandlerFunc(func(_ context.Context, d consumer.Delivery) consumer.Outcome {
		<-ready
		rec.add(d)
		return consumer.Outcome{Action: consumer.Ack, ResultSubject: "push.results.r4", Result: &job.Result{JobID: "r4", Status: job.StatusSucceeded}}
	}), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, b.topo.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 64
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	close(ready)
	b.publish("push.jobs.orders", `{"jobId":"r4"}`, "")
	m := b.next(b.topo.DLQStream, 10*time.Second)
	if h := m.Headers(); m.Subject() != "push.dlq.r4" || string(m.Data()) != `{"jobId":"r4"}` || h.Get(wire.HeaderReason) != wire.ReasonStopped ||
		!strings.Contains(h.Get(wire.HeaderError), "result was not stored") || h.Get(wire.HeaderDeliveries) != "2" {
		t.Fatalf("dead letter on %s: %q %v", m.Subject(), m.Data(), h)
	}
	b.jobsLeft(0)
	if got, _ := rec.deliveries(); len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
}
