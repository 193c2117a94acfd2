package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/job"
)

func broadcastJob(id string) *job.Job {
	return &job.Job{JobID: id, TaskName: "t", AppID: "app", WorkspaceID: "w", DeliveryType: 1, ExpiredSeconds: 60,
		TemplateName: "n", Broadcast: &job.Broadcast{MsgKey: "release"}}
}

// A broadcast is one call; published again it reports that call, under
// another job id it is a duplicate: one PushBroadcast in all.
func TestBroadcastIsOneCallOnce(t *testing.T) {
	b := newBench(t, mpaassim.Faults{})
	out := handle(b.p, context.Background(), delivery(t, broadcastJob("b1"), 1, false))
	r := out.Result
	if out.Action != consumer.Ack || r == nil || r.API != job.APIBroadcast || r.Sent != 1 || r.Targets != 1 || len(r.Chunks) != 1 ||
		len(r.Chunks[0].TargetMsgkey) != 0 || r.Chunks[0].Data == "" {
		t.Fatalf("outcome %+v, result %+v", out, r)
	}
	again := delivery(t, broadcastJob("b1"), 1, false)
	again.Sequence = 8 // the same job published again
	if r2 := handle(b.p, context.Background(), again).Result; r2 == nil || r2.Sent != 1 || r2.Chunks[0].Data != r.Chunks[0].Data {
		t.Fatalf("the same job again: %+v", r2)
	}
	if r3 := handle(b.p, context.Background(), delivery(t, broadcastJob("b2"), 1, false)).Result; r3 == nil || r3.Duplicates != 1 || r3.Sent != 0 {
		t.Fatalf("another job of the msgKey: %+v", r3)
	}
	if n := b.sim.Broadcasts("app", "w", "release"); n != 1 {
		t.Fatalf("%d broadcasts", n)
	}
}

// A broadcast call that may have gone out (no answer) is neither retried nor
// made by a later delivery, which finds its claim: the job is handed back, and
// its last delivery fails it unsent, with a dead letter.
func TestBroadcastWithNoAnswerIsNotCalledAgain(t *testing.T) {
	b := newBench(t, mpaassim.Faults{RateTimeout: 1, TimeoutHold: 3 * time.Second})
	j := broadcastJob("b1")
	if out := handle(b.p, context.Background(), delivery(t, j, 1, false)); out.Action != consumer.Retry {
		t.Fatalf("first delivery: %+v", out)
	}
	b.sim.SetFaults(mpaassim.Faults{})
	if out := handle(b.p, context.Background(), delivery(t, j, 2, false)); out.Action != consumer.Retry {
		t.Fatalf("second delivery: %+v", out)
	}
	out := handle(b.p, context.Background(), delivery(t, j, 3, true))
	if out.Result == nil || out.Result.Status != job.StatusFailed || out.Result.Chunks[0].Error != pipeline.ErrBroadcastHeld || out.DeadLetter == nil {
		t.Fatalf("last delivery: %+v", out)
	}
	if st := b.sim.Stats(); st.ByAPI[job.APIBroadcast].Calls != 1 {
		t.Fatalf("%d PushBroadcast calls, want 1", st.ByAPI[job.APIBroadcast].Calls)
	}
}
