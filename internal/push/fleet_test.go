package push_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// A fleet signs each app's calls with that app's key, pushes and the
// questions a delivery report asks alike, and refuses an app no key serves.
func TestFleetRoutesEveryCallByApp(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true, Keys: map[string]string{"LTAI-one": "s1", "LTAI-two": "s2"}})
	f, err := push.NewFleet(push.Config{Endpoint: srv.URL, Timeout: 2 * time.Second},
		[]push.FleetKey{{AccessKeyID: "LTAI-one", AccessKeySecret: "s1", AppIDs: []string{"app-a"}},
			{AccessKeyID: "LTAI-two", AccessKeySecret: "s2", AppIDs: []string{"app-b", "app-c"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctx := context.Background()
	tasks := map[string]string{}
	for _, app := range []string{"app-a", "app-b", "app-c"} {
		j := &job.Job{TaskName: "t", AppID: app, WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
		for i := range 3 {
			j.TargetMsgs = append(j.TargetMsgs, job.TargetMsg{Target: fmt.Sprint(app, i), MsgKey: "k"})
		}
		out := f.Push(ctx, j, j.Pairs())
		if out.Class != push.Success || out.Data == "" {
			t.Fatalf("%s: %+v", app, out)
		}
		tasks[app] = out.Data
	}
	for app, task := range tasks {
		if a, out := f.TaskDetail(ctx, app, "w", task); out.Class != push.Success || !a.Ready || a.Figures.Pushed != 3 {
			t.Fatalf("%s task %s: %+v %+v", app, task, a, out)
		}
	}
	if a, out := f.CoreIndex(ctx, "app-b", "w", push.TypeMultiple, time.Now().Add(-time.Minute), time.Now()); out.Class != push.Success || !a.Ready || a.Figures.Pushed != 3 {
		t.Fatalf("app-b's window: %+v %+v", a, out)
	}
	if _, out := f.TaskDetail(ctx, "app-x", "w", "1"); out.Class != push.JobFault || !errors.Is(out.Err, push.ErrNoCredential) {
		t.Fatalf("an app no key serves: %+v", out)
	}
	st := sim.Stats()
	if st.ByKey["LTAI-one"].Calls != 2 || st.ByKey["LTAI-two"].Calls != 5 {
		t.Fatalf("calls by key (one: a's push and its question; two: b's and c's pushes, questions and b's window): %+v", st.ByKey)
	}
}
