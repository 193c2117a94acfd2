package ops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// withResults adds the world's result stream, removed at the end.
func (w *world) withResults(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { testenv.DeleteStreams(t, w.js, w.topo.ResultsStream) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.js.CreateStream(ctx, jetstream.StreamConfig{Name: w.topo.ResultsStream, Subjects: []string{w.topo.ResultSubjects()},
		AllowDirect: true, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
}

// result stores job id's result on subject, as a worker does.
func (w *world) result(t *testing.T, subject, id, campaignName string) {
	t.Helper()
	r := job.Result{JobID: id, Status: job.StatusSucceeded, Campaign: campaignName, Targets: 1, Sent: 1,
		Chunks: []job.ChunkResult{{Status: job.ChunkSent, ResultCode: "OK", TargetMsgkey: job.Targets{{Target: "u1", MsgKey: "k"}}}}}
	body, _ := r.Encode()
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := w.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

func TestResultByID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", 1<<20)
	w.withResults(t)
	ctx := t.Context()
	prefix := w.topo.ResultPrefix()
	w.result(t, w.topo.ResultSubject("", "ev-1"), "ev-1", "")
	w.result(t, w.topo.ResultSubject("", "order.8812"), "order.8812", "") // a dotted id
	w.result(t, prefix+"spring.j1", "j1", "spring")                       // enqueue load's campaign subject
	// The newest result on <prefix>*.j1 is another job's: the id is checked.
	w.result(t, prefix+"x.j1", "x.j1", "")
	w.result(t, prefix+"orders", "own-1", "") // a replyTo of the job's own, shared
	w.result(t, prefix+"orders", "own-2", "")

	for id, camp := range map[string]string{"ev-1": "", "order.8812": "", "j1": "spring", "own-1": "", "own-2": ""} {
		r, err := w.ops.Result(ctx, id)
		if err != nil {
			t.Fatalf("Result(%s): %v", id, err)
		}
		if r.JobID != id || r.Campaign != camp || r.Status != job.StatusSucceeded || len(r.Chunks) != 1 {
			t.Fatalf("Result(%s) = %+v", id, r)
		}
	}

	_, err := w.ops.Result(ctx, "nobody")
	if !errors.Is(err, ops.ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("an unknown job: %v, want ErrNotFound naming it", err)
	}
	if _, err := w.ops.Result(ctx, "bad..id"); !errors.Is(err, ops.ErrInvalidJobID) {
		t.Fatalf("a bad id: %v, want ErrInvalidJobID", err)
	}

	// ResultOn reads the last message on the subject only: own-1's is not.
	if r, err := w.ops.ResultOn(ctx, prefix+"orders", "own-2"); err != nil || r.JobID != "own-2" {
		t.Fatalf("ResultOn(orders, own-2) = %+v, %v", r, err)
	}
	if _, err := w.ops.ResultOn(ctx, prefix+"orders", "own-1"); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("ResultOn(orders, own-1): %v, want ErrNotFound", err)
	}
}

// A result under a replyTo of the job's own is looked for among the newest
// ResultScan results only; the others are found by subject however old.
func TestResultScanIsBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", 1<<20)
	w.withResults(t)
	w.ops.ResultScan = 3
	prefix := w.topo.ResultPrefix()
	w.result(t, prefix+"orders", "old-own", "")
	w.result(t, w.topo.ResultSubject("", "old-ev"), "old-ev", "")
	for i := range 3 {
		w.result(t, prefix+"orders", fmt.Sprintf("new-%d", i), "")
	}
	_, err := w.ops.Result(t.Context(), "old-own")
	if !errors.Is(err, ops.ErrNotFound) || !strings.Contains(err.Error(), "newest 3") {
		t.Fatalf("a result older than the scan: %v, want ErrNotFound saying how far it looked", err)
	}
	if r, err := w.ops.Result(t.Context(), "old-ev"); err != nil || r.JobID != "old-ev" {
		t.Fatalf("a result on its default subject: %+v, %v", r, err)
	}
	if r, err := w.ops.Result(t.Context(), "new-0"); err != nil || r.JobID != "new-0" {
		t.Fatalf("a result within the scan: %+v, %v", r, err)
	}
}
