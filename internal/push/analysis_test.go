package push_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// want is what the emulator counts of pushed pairs with its default shares.
func want(pushed int64) job.Figures {
	arrived := int64(float64(pushed) * mpaassim.DefaultArrivalShare)
	opened := int64(float64(arrived) * mpaassim.DefaultOpenShare)
	return job.Figures{Pushed: pushed, Succeeded: pushed, Arrived: arrived, Opened: opened, Ignored: arrived - opened}
}

// The analytics over the wire: no figures until the emulator's delay has
// passed, then the figures of what was pushed (a PushMultiple task by its
// id, PushTemplate pushes by window and type), whatever form the answer takes:
// ResultContent as a JSON string, lower-case keys in the other naming, a hex
// task id. Each of these decodes to zeros or fails in the v1 SDK's types.
func TestAnalyticsOverTheWire(t *testing.T) {
	for _, form := range []string{"", "string", "lower"} {
		for _, hex := range []bool{false, true} {
			t.Run(fmt.Sprintf("form %q hex %v", form, hex), func(t *testing.T) {
				sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true, HexTaskIDs: hex,
					Analysis: mpaassim.Analysis{Delay: time.Hour, Form: form}})
				c := newClient(t, srv.URL)
				ctx := context.Background()
				mj := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
				for i := range 37 {
					mj.TargetMsgs = append(mj.TargetMsgs, job.TargetMsg{Target: fmt.Sprint("u", i), MsgKey: "k"})
				}
				from := time.Now()
				pm := c.Push(ctx, mj, mj.Pairs())
				if pm.Class != push.Success || pm.Data == "" {
					t.Fatalf("PushMultiple: %+v", pm)
				}
				tj := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
				for i := range 10 {
					tj.TargetMsgkey = append(tj.TargetMsgkey, job.Target{Target: fmt.Sprint("v", i), MsgKey: "k"})
				}
				if out := c.Push(ctx, tj, tj.TargetMsgkey); out.Class != push.Success {
					t.Fatal(out.Err)
				}
				to := time.Now()

				a, out := c.TaskDetail(ctx, "a", "w", pm.Data)
				if out.Class != push.Success || out.API != push.APITaskDetail || a.Ready {
					t.Fatalf("before the delay: %+v %+v", a, out)
				}
				if a, out := c.CoreIndex(ctx, "a", "w", push.TypeTemplate, from, to); out.Class != push.Success || a.Ready {
					t.Fatalf("before the delay: %+v %+v", a, out)
				}

				sim.SetAnalysis(mpaassim.Analysis{Form: form})
				a, out = c.TaskDetail(ctx, "a", "w", pm.Data)
				if out.Class != push.Success || !a.Ready || a.Figures != want(37) {
					t.Fatalf("task: %+v %+v, want %+v", a, out, want(37))
				}
				a, out = c.CoreIndex(ctx, "a", "w", push.TypeTemplate, from, to)
				if out.Class != push.Success || out.API != push.APICoreIndex || !a.Ready || a.Figures != want(10) {
					t.Fatalf("TEMPLATE window: %+v %+v, want %+v", a, out, want(10))
				}
				if a, out := c.CoreIndex(ctx, "a", "w", push.TypeTemplate, to.Add(time.Second), to.Add(time.Hour)); out.Class != push.Success || a.Ready {
					t.Fatalf("a window with no push: %+v %+v", a, out)
				}
				if a, out := c.TaskDetail(ctx, "a", "w", "no-such-task"); out.Class != push.Success || a.Ready {
					t.Fatalf("an unknown task: %+v %+v", a, out)
				}
			})
		}
	}
}

// Bad questions fail as the request's fault, without a call when the client
// can tell; mPaaS's own refusals keep their code.
func TestAnalyticsBadQuestions(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	ctx := context.Background()
	now := time.Now()
	for name, out := range map[string]push.CallResult{
		"91 days":   second(c.CoreIndex(ctx, "a", "w", push.TypeTemplate, now.Add(-91*24*time.Hour), now)),
		"backwards": second(c.CoreIndex(ctx, "a", "w", push.TypeTemplate, now, now.Add(-time.Second))),
		"no type":   second(c.CoreIndex(ctx, "a", "w", "TEMPLATES", now.Add(-time.Hour), now)),
		"no task":   second(c.TaskDetail(ctx, "a", "w", "")),
	} {
		if out.Class != push.JobFault || out.Err == nil {
			t.Errorf("%s: %+v", name, out)
		}
	}
	if n := sim.Stats().Calls; n != 0 {
		t.Fatalf("%d calls made for questions the client can refuse", n)
	}
	sim.SetFaults(mpaassim.Faults{FailNext: 1})
	if _, out := c.TaskDetail(ctx, "a", "w", "1"); out.Class != push.Transient || out.ResultCode != "ServiceUnavailable" {
		t.Fatalf("a 503: %+v", out)
	}
}

func second(_ push.Analysis, out push.CallResult) push.CallResult { return out }
