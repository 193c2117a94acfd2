package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// broadcastJob is a broadcast of the app's release to every Android device.
func broadcastJob(id string) *job.Job {
	return &job.Job{JobID: id, TaskName: "release 2.0", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 1, ExpiredSeconds: 3600, TemplateName: "新版本", TemplateKeyValue: job.Object(`{"version":"2.0"}`),
		Broadcast: &job.Broadcast{MsgKey: "release-2.0", PushStatus: job.Int64(1)}}
}

// A broadcast goes out once, however its job is published and delivered: the
// worker holding it is killed mid-call (its call reached the emulator), the
// job is delivered again while that call runs and after it, it is published
// again with the same Nats-Msg-Id, without one, and under another job id. One
// PushBroadcast call reaches the emulator; the revoke of its campaign makes
// one RevokePushTask call, with the task id of that call.
func TestBroadcastGoesOutOnceAndIsRevokedAsATask(t *testing.T) {
	t.Parallel()
	const app, ws, campaign = "ONEX570DA89211721", "test", "release"
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Latency: 1500 * time.Millisecond}})
	quick := func(w *teststack.WorkerSetup) {
		// A delivery given up on after 1 s, while the killed worker's call takes 1.5 s.
		w.Config.AckWait, w.Config.MaxDeliver, w.Config.RetryDelay = time.Second, 10, 300*time.Millisecond
	}
	a := h.StartWorker(quick)
	subject := h.Topo.BulkSubject(campaign)
	first := broadcastJob("bc-1")
	body, err := first.Encode()
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(subject, body, "bc-1")
	deadline := time.Now().Add(10 * time.Second)
	for h.Sim.Stats().ByAPI[job.APIBroadcast].Calls == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no PushBroadcast call reached the emulator")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Kill() // mid-call: the emulator holds its answer for 1.5 s
	h.StartWorker(quick)

	r := h.Result(30 * time.Second)
	if r.JobID != "bc-1" || r.API != job.APIBroadcast || r.Status != job.StatusSucceeded || r.Targets != 1 || r.Sent != 1 ||
		len(r.Chunks) != 1 || len(r.Chunks[0].TargetMsgkey) != 0 || r.Chunks[0].Data == "" || r.Campaign != campaign {
		t.Fatalf("result of the killed worker's job: %+v", r)
	}
	t.Logf("bc-1: deliveries %d, task %s", r.Deliveries, r.Chunks[0].Data)
	if r.Deliveries < 2 {
		t.Fatalf("the job was delivered %d times: the kill did not make it delivered again", r.Deliveries)
	}

	h.Publish(subject, body, "bc-1") // the same Nats-Msg-Id: the job stream drops it
	h.Publish(subject, body, "")     // the same job id, another message: its result repeats bc-1's, and the result stream drops it
	other := broadcastJob("bc-2")    // another job id, the same msgKey: a duplicate
	h.PublishJob(subject, other)
	r2 := h.Result(30 * time.Second)
	if r2.JobID != "bc-2" || r2.Duplicates != 1 || r2.Sent != 0 || len(r2.Chunks) != 0 ||
		!reflect.DeepEqual(r2.Skipped, job.Targets{{Target: job.BroadcastTarget, MsgKey: "release-2.0"}}) {
		t.Fatalf("result of the same broadcast under another job id: %+v", r2)
	}
	waitJobsDone(t, h)
	h.NoMoreResults(500 * time.Millisecond)
	if n, calls := h.Sim.Broadcasts(app, ws, "release-2.0"), h.Sim.Stats().ByAPI[job.APIBroadcast].Calls; n != 1 || calls != 1 {
		t.Fatalf("the emulator accepted %d broadcasts in %d PushBroadcast calls, want 1 and 1", n, calls)
	}

	o, err := ops.New(h.NC, h.Topo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plan, err := o.PlanRecall(ctx, job.ActionRevoke, campaign, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Calls(); !reflect.DeepEqual(got, map[string]int{job.APIRevokeTask: 1}) || plan.Sources[0].TaskIDs[0] != r.Chunks[0].Data {
		t.Fatalf("revoke plan: %v %+v", got, plan.Sources[0])
	}
	if err := o.Recall(ctx, plan); err != nil {
		t.Fatal(err)
	}
	pr, err := o.FollowRecall(ctx, plan, 20*time.Second, nil)
	if err != nil || pr.Succeeded != 1 || pr.Failed != 0 {
		t.Fatalf("revoke: %+v, %v", pr, err)
	}
	st := h.Sim.Stats()
	if st.ByAPI[job.APIRevokeTask].Calls != 1 || st.Recall.RevokedTasks != 1 || st.ByAPI[job.APIRevokeMessage].Calls != 0 {
		t.Fatalf("recall calls: %+v, %+v", st.ByAPI, st.Recall)
	}
}

// waitJobsDone waits until the job stream holds no job (a work-queue stream
// drops a job once it is acknowledged).
func waitJobsDone(t *testing.T, h *teststack.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.JS.Stream(ctx, h.Topo.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d jobs still in the stream", info.State.Msgs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// simpleJob is a PushSimple job of n targets with every parameter PushSimple takes.
func simpleJob(id string, n int) *job.Job {
	t := make(job.Targets, n)
	for i := range t {
		t[i] = job.Target{Target: fmt.Sprintf("%s-u%02d", id, i), MsgKey: "ship-" + id}
	}
	return &job.Job{JobID: id, TaskName: "shipped", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: t, ExpiredSeconds: 600, Title: "已发货", Content: "订单 8812 已发货 & 在路上",
		PushStyle: job.Int64(2), ImageUrls: job.Object(`{"defaultUrl":"https://img/a.png"}`), IconUrls: job.Object(`{"defaultUrl":"https://img/i.png"}`),
		URI: "app://orders/8812", PushAction: job.Int64(1), Silent: job.Int64(0), NotifyType: "notify", Classification: "0",
		ExtendedParams: job.Object(`{"orderId":"8812"}`), StrategyType: job.Int64(0),
		SmsStrategy: job.Int64(2), SmsSignName: "签名", SmsTemplateCode: "SMS_1", SmsTemplateParam: job.Object(`{"code":"1"}`)}
}

// A PushSimple job of 25 targets goes out in calls of 10, 10 and 5, each with
// every parameter of the job; revoking it makes one RevokePushMessage per pair.
func TestPushSimpleJobGoesInCallsOfTenWithEveryParameter(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := simpleJob("simple-25", 25)
	h.PublishJob(h.Topo.EventsSubject("orders"), j)
	r := h.Result(30 * time.Second)
	if r.JobID != j.JobID || r.API != job.APISimple || r.Status != job.StatusSucceeded || r.Sent != 25 || len(r.Chunks) != 3 {
		t.Fatalf("result: %+v", r)
	}
	sizes := h.CallSizes()
	slices.Sort(sizes)
	if !reflect.DeepEqual(sizes, []int{5, 10, 10}) {
		t.Fatalf("call sizes %v, want 10, 10 and 5", sizes)
	}
	want := map[string]string{"TaskName": "shipped", "AppId": j.AppID, "WorkspaceId": "test", "DeliveryType": "3",
		"ExpiredSeconds": "600", "Title": "已发货", "Content": "订单 8812 已发货 & 在路上", "PushStyle": "2",
		"ImageUrls": `{"defaultUrl":"https://img/a.png"}`, "IconUrls": `{"defaultUrl":"https://img/i.png"}`, "Uri": "app://orders/8812",
		"PushAction": "1", "Silent": "0", "NotifyType": "notify", "Classification": "0", "ExtendedParams": `{"orderId":"8812"}`,
		"StrategyType": "0", "SmsStrategy": "2", "SmsSignName": "签名", "SmsTemplateCode": "SMS_1", "SmsTemplateParam": `{"code":"1"}`}
	seen := 0
	for _, c := range h.Sim.Calls() {
		if c.Action != job.APISimple || c.Code != "OK" {
			t.Fatalf("call %s answered %s", c.Action, c.Code)
		}
		var targets map[string]string
		if err := json.Unmarshal([]byte(c.Params["TargetMsgkey"]), &targets); err != nil {
			t.Fatal(err)
		}
		seen += len(targets)
		for k, v := range want {
			if c.Params[k] != v {
				t.Errorf("call parameter %s = %q, want %q", k, c.Params[k], v)
			}
		}
		if len(c.Params) != len(want)+1 {
			t.Errorf("call has %d parameters, want %d: %v", len(c.Params), len(want)+1, c.Params)
		}
	}
	if seen != 25 {
		t.Fatalf("calls carried %d targets", seen)
	}
	h.DeliveredOnce(j)

	o, err := ops.New(h.NC, h.Topo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plan, err := o.PlanRecall(ctx, job.ActionRevoke, "", []string{j.JobID})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Calls(); !reflect.DeepEqual(got, map[string]int{job.APIRevokeMessage: 25}) {
		t.Fatalf("revoke plan: %v", got)
	}
	if err := o.Recall(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if pr, err := o.FollowRecall(ctx, plan, 20*time.Second, nil); err != nil || pr.Succeeded != 25 {
		t.Fatalf("revoke: %+v, %v", pr, err)
	}
	for _, p := range j.TargetMsgkey {
		if revoked, _ := h.Sim.Revoked(j.AppID, j.WorkspaceID, p.Target, p.MsgKey); !revoked {
			t.Fatalf("%s not revoked", p.Target)
		}
	}
}

// Bad PushSimple and broadcast jobs are rejected with an error naming the
// field, and dead-lettered; the worker goes on.
func TestBadSimpleAndBroadcastJobsAreRejected(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	cases := []struct {
		id     string
		mutate func(*job.Job)
		error  string
	}{
		{"no-title", func(j *job.Job) { j.Title = "" }, "title: required"},
		{"style2-no-image", func(j *job.Job) { j.ImageUrls = nil }, "imageUrls: required when pushStyle is 2"},
		{"sms-no-sign", func(j *job.Job) { j.SmsSignName = "" }, "smsSignName: required when smsStrategy is not 0"},
		{"bc-no-msgkey", nil, "broadcast.msgKey: required"},
		{"bc-with-targets", nil, "targetMsgkey: not with broadcast"},
	}
	for _, c := range cases {
		j := simpleJob(c.id, 3)
		if c.mutate != nil {
			c.mutate(j)
		} else {
			j = broadcastJob(c.id)
			if c.id == "bc-no-msgkey" {
				j.Broadcast.MsgKey = ""
			} else {
				j.TargetMsgkey = job.Targets{{Target: "u1", MsgKey: "k1"}}
			}
		}
		h.PublishJob(h.Topo.EventsSubject("orders"), j)
		r := h.Result(10 * time.Second)
		if r.JobID != c.id || r.Status != job.StatusRejected || !strings.HasPrefix(r.Error, c.error) || r.API != "" {
			t.Fatalf("%s: result %+v", c.id, r)
		}
		if dl := h.DeadLetter(10 * time.Second); !strings.Contains(string(dl.Data()), `"`+c.id+`"`) {
			t.Fatalf("%s: dead letter %s", c.id, dl.Data())
		}
	}
	if st := h.Sim.Stats(); st.Calls != 0 {
		t.Fatalf("%d calls for rejected jobs", st.Calls)
	}
}
