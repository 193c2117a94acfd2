package push_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// movableClock is the emulator's clock, which a test moves forward.
type movableClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *movableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *movableClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// Revoke what went out: a PushTemplate pair, a PushMultiple task; not what is
// older than 7 days, which fails with mPaaS's code as the job's fault (no retry).
func TestRevokeOverTheWire(t *testing.T) {
	clk := &movableClock{}
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true, Now: clk.now, TimestampWindow: 30 * 24 * time.Hour})
	c := newClient(t, srv.URL)
	ctx := context.Background()
	tj := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
		TargetMsgkey: job.Targets{{Target: "u1", MsgKey: "k1"}}}
	if out := c.Push(ctx, tj, tj.TargetMsgkey); out.Class != push.Success {
		t.Fatal(out.Err)
	}
	mj := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
		TargetMsgs: []job.TargetMsg{{Target: "u2", MsgKey: "k2"}, {Target: "u3", MsgKey: "k3"}}}
	pm := c.Push(ctx, mj, mj.Pairs())
	if pm.Class != push.Success || pm.Data == "" {
		t.Fatalf("PushMultiple: %+v", pm)
	}
	if out := c.RevokeMessage(ctx, "a", "w", "u1", "k1"); out.Class != push.Success || out.API != push.APIRevokeMessage || out.RequestID == "" {
		t.Fatalf("revoke message: %+v", out)
	}
	if out := c.RevokeTask(ctx, "a", "w", pm.Data); out.Class != push.Success {
		t.Fatalf("revoke task: %+v", out)
	}
	if out := c.RevokeMessage(ctx, "a", "w", "u2", "k2"); out.Class != push.JobFault {
		t.Fatalf("a PushMultiple pair has no per-target revoke: %+v", out)
	}
	if ok, n := sim.Revoked("a", "w", "u1", "k1"); !ok || n != 1 || sim.Stats().Recall.RevokedTasks != 1 {
		t.Fatalf("emulator: %+v", sim.Stats().Recall)
	}
	// Eight days later nothing can be revoked any more: the job's fault, with the code.
	if out := c.Push(ctx, tj, job.Targets{{Target: "u9", MsgKey: "k9"}}); out.Class != push.Success {
		t.Fatal(out.Err)
	}
	clk.advance(8 * 24 * time.Hour)
	out := c.RevokeMessage(ctx, "a", "w", "u9", "k9")
	if out.Class != push.JobFault || out.ResultCode == "" || out.ResultCode == "OK" {
		t.Fatalf("too old: %+v", out)
	}
}

// Scheduled tasks: at most 100 pending per app (the 101st call is refused with a
// code), listed a page at a time, canceled by id.
func TestScheduledTasksOverTheWire(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	ctx := context.Background()
	at := time.Now().Add(time.Hour)
	var ids []string
	for i := range 101 {
		j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
			TargetMsgkey: job.Targets{{Target: fmt.Sprintf("u%d", i), MsgKey: "k"}}, StrategyType: job.Int64(1),
			StrategyContent: job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at.UnixMilli()))}
		out := c.Push(ctx, j, j.TargetMsgkey)
		if i == 100 {
			if out.Class != push.JobFault || out.ResultCode == "" {
				t.Fatalf("the 101st pending task must be refused with a code: %+v", out)
			}
			break
		}
		if out.Class != push.Success || len(out.Data) != 32 {
			t.Fatalf("scheduled %d: %+v", i, out)
		}
		ids = append(ids, out.Data)
	}
	var listed []push.ScheduledTask
	for page := 1; ; page++ {
		tasks, total, out := c.QueryScheduled(ctx, "a", "w", time.Now(), at.Add(time.Minute), page, 30)
		if out.Class != push.Success || total != 100 {
			t.Fatalf("query page %d: %d total, %+v", page, total, out)
		}
		listed = append(listed, tasks...)
		if len(tasks) < 30 {
			break
		}
	}
	if len(listed) != 100 || listed[0].PushTime.UnixMilli() != at.UnixMilli() || listed[0].Type != 1 {
		t.Fatalf("listed %d tasks, first %+v", len(listed), listed[0])
	}
	if out := c.CancelScheduled(ctx, "a", "w", ids[:60]); out.Class != push.Success {
		t.Fatalf("cancel: %+v", out)
	}
	if out := c.CancelScheduled(ctx, "a", "w", ids[:1]); out.Class != push.JobFault {
		t.Fatalf("a canceled task cannot be canceled again: %+v", out)
	}
	if _, total, _ := c.QueryScheduled(ctx, "a", "w", time.Now(), at.Add(time.Minute), 1, 500); total != 40 || sim.Stats().Recall.CanceledTasks != 60 {
		t.Fatalf("after canceling 60: %d listed, %+v", total, sim.Stats().Recall)
	}
}
