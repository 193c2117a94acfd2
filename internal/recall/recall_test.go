package recall_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/recall"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/job"
)

var start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// bench is a worker's two handlers behind the mux, as the service wires them,
// on the in-memory stores, the emulator over HTTP and a fake clock: retries
// and delays move the clock, nothing sleeps.
type bench struct {
	h   consumer.Handler
	sim *mpaassim.Server
}

func newBench(t *testing.T) *bench {
	t.Helper()
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak": "sk"}, AcceptAnyTemplate: true})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := push.New(push.Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	policy := retry.Exponential{Initial: 100 * time.Millisecond, Max: time.Second}
	cfg := pipeline.Config{Attempts: 3, Call: policy, Probe: policy, HandBack: retry.Exponential{Initial: 5 * time.Second, Max: time.Minute},
		Clock: clock.NewFake(start)}
	store, limiter, gate := dedupe.NewMemory(time.Hour, time.Minute), ratelimit.NewMemory(100000, 0), pause.NewGate(nil, nil)
	p := pipeline.New(cfg, store, limiter, client, gate, nil, nil)
	t.Cleanup(p.Close)
	return &bench{sim: sim, h: consumer.Mux{Push: p, Recall: recall.New(cfg, store, limiter, client, p.Slots(), gate, nil, nil)}}
}

func newJob(id string, n int) *job.Job {
	t := make(job.Targets, n)
	for i := range t {
		t[i] = job.Target{Target: id + "-u" + string(rune('a'+i/26)) + string(rune('a'+i%26)), MsgKey: "m"}
	}
	return &job.Job{JobID: id, TaskName: "t", AppID: "app", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", TargetMsgkey: t}
}

func delivery(t *testing.T, j *job.Job) consumer.Delivery {
	t.Helper()
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return consumer.Delivery{Lane: "bulk", Subject: "push.jobs.bulk.c", Data: body, Sequence: 7, Number: 1}
}

func adminDelivery(t *testing.T, a *job.Admin, seq uint64) consumer.Delivery {
	t.Helper()
	body, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return consumer.Delivery{Lane: "bulk", Subject: "push.jobs.bulk.c.admin", Data: body, Sequence: seq, Number: 1}
}

// A revoke job makes one call per pair, under claims: a re-run calls nothing
// twice and still reports every pair as revoked.
func TestRevokeJob(t *testing.T) {
	b := newBench(t)
	sent := newJob("j1", 25)
	if out := b.h.Handle(context.Background(), delivery(t, sent)); out.Result.Sent != 25 {
		t.Fatalf("push: %+v", out.Result)
	}
	a := &job.Admin{JobID: "r1", AppID: "app", WorkspaceID: "w", Action: job.ActionRevoke,
		TargetMsgkey: append(append(job.Targets{}, sent.TargetMsgkey...), job.Target{Target: "never-sent", MsgKey: "m"})}
	out := b.h.Handle(context.Background(), adminDelivery(t, a, 9))
	r := out.Result
	if out.Action != consumer.Ack || r.Sent != 25 || r.Failed != 1 || r.Targets != 26 || len(r.Chunks) != 26 || r.Campaign != "c" || r.API != "RevokePushMessage" {
		t.Fatalf("revoke: %+v", r)
	}
	for _, c := range r.Chunks {
		if c.Status == job.ChunkFailed && (c.TargetMsgkey[0].Target != "never-sent" || c.Attempts != 1 || c.ResultCode == "") {
			t.Fatalf("a pair mPaaS cannot revoke fails with its code, without a retry: %+v", c)
		}
	}
	if dl := out.DeadLetter; dl == nil || !strings.Contains(string(dl.Body), `"targetMsgkey":{"never-sent":"m"}`) || strings.Contains(string(dl.Body), "j1-u") {
		t.Fatalf("the dead letter holds only what failed: %+v", out.DeadLetter)
	}
	calls := len(b.sim.Calls())
	again := b.h.Handle(context.Background(), adminDelivery(t, a, 9))
	if again.Result.Sent != 25 || len(b.sim.Calls()) != calls+1 { // only the failed pair is tried again
		t.Fatalf("a re-run must not revoke twice: %+v, %d more calls", again.Result, len(b.sim.Calls())-calls)
	}
	for _, tg := range sent.TargetMsgkey {
		if ok, n := b.sim.Revoked("app", "w", tg.Target, tg.MsgKey); !ok || n != 1 {
			t.Fatalf("%s revoked by %d calls", tg.Target, n)
		}
	}
}

func TestBadAdminJobsAreRejected(t *testing.T) {
	b := newBench(t)
	for _, c := range []struct{ body, field string }{
		{`{"jobId":"a1","appId":"a","workspaceId":"w","action":"recall","targetMsgkey":{"u":"m"}}`, "action"},
		{`{"jobId":"a2","appId":"a","workspaceId":"w","action":"revoke"}`, "targetMsgkey"},
		{`{"jobId":"a3","appId":"a","workspaceId":"w","action":"revoke","taskIds":["12 ab"]}`, "taskIds[0]"},
		{`{"jobId":"a4","appId":"a","workspaceId":"w","action":"cancelScheduled","uniqueIds":["a,b"]}`, "uniqueIds[0]"},
		{`{"jobId":"a5","appId":"a","workspaceId":"w","action":"cancelScheduled"}`, "uniqueIds"},
		{`{"jobId":"a6","workspaceId":"w","action":"revoke","taskIds":["1"]}`, "appId"},
		{`{"jobId":"a7","appId":"a","workspaceId":"w","action":"revoke","taskIds":["1"],"targetMsgs":[]}`, "targetMsgs"},
	} {
		d := consumer.Delivery{Lane: "bulk", Subject: "push.jobs.bulk.admin", Data: []byte(c.body), Sequence: 3, Number: 1}
		out := b.h.Handle(context.Background(), d)
		if out.Action != consumer.Term || out.Result == nil || out.Result.Status != job.StatusRejected || !strings.HasPrefix(out.Result.Error, c.field+":") {
			t.Errorf("%s: want rejected naming %s, got %+v", c.body, c.field, out.Result)
		}
	}
	many := &job.Admin{JobID: "big", AppID: "a", WorkspaceID: "w", Action: job.ActionRevoke}
	for i := range 1001 {
		many.TaskIDs = append(many.TaskIDs, strconv.Itoa(i+1))
	}
	if out := b.h.Handle(context.Background(), adminDelivery(t, many, 4)); out.Result.Status != job.StatusRejected || !strings.Contains(out.Result.Error, "more than the 1000") {
		t.Fatalf("over the cap: %+v", out.Result)
	}
	if len(b.sim.Calls()) != 0 {
		t.Fatal("a rejected admin job must make no call")
	}
}
