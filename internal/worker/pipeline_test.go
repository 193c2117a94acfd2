package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

func TestOneJobOneResult(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("order-8812-paid", "one", 1)
	h.PublishJob("push.jobs.orders", j)
	r := h.Result(10 * time.Second)
	if r.JobID != j.JobID || r.Status != job.StatusSucceeded || r.Sent != 1 || len(r.Chunks) != 1 || r.Deliveries != 1 {
		t.Fatalf("result: %+v", r)
	}
	calls := h.Sim.Calls()
	if len(calls) != 1 || r.Chunks[0].RequestID != calls[0].RequestID || r.Chunks[0].ResultCode != "OK" || !r.Chunks[0].PushSuccess {
		t.Fatalf("the result must carry the emulator's request id %q: %+v", calls[0].RequestID, r.Chunks[0])
	}
	if r.AppID != j.AppID || r.TaskName != j.TaskName || r.StartedAt.IsZero() || r.FinishedAt.Before(r.StartedAt.Time) {
		t.Fatalf("result fields: %+v", r)
	}
	h.DeliveredOnce(j)
}

func TestTwentyFiveTargetsAreThreeCalls(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("big-25", "big", 25)
	h.PublishJob("push.jobs.campaign", j)
	r := h.Result(10 * time.Second)
	sizes := []int{}
	for _, c := range r.Chunks {
		sizes = append(sizes, len(c.TargetMsgkey))
	}
	if r.Sent != 25 || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("want chunks of 10, 10, 5 with 25 sent: %v %+v", sizes, r)
	}
	calls := h.CallSizes()
	slices.Sort(calls)
	if !slices.Equal(calls, []int{5, 10, 10}) {
		t.Fatalf("the emulator saw calls of %v", calls)
	}
	// The chunks keep the job's order.
	var order job.Targets
	for _, c := range r.Chunks {
		order = append(order, c.TargetMsgkey...)
	}
	if !slices.Equal(order, j.TargetMsgkey) {
		t.Fatal("chunks do not keep the job's order")
	}
	h.DeliveredOnce(j)
}

// A targetMsgs job of 250 targets is sent with PushMultiple in calls of 100, 100
// and 50, in the job's order, every parameter and each target's own values
// arriving equal; its result says so.
func TestTargetMsgsJobIsCallsOfAHundred(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Templates: map[string]string{"个性化": "#name#，你赢得了 #money# 元"}})
	h.StartWorker()
	j := teststack.NewMultipleJob("personal-250", "p", 250)
	j.TemplateName = "个性化"
	j.TargetMsgs[7].TemplateKeyValue = job.Object(`{"name":"Zoë \"Z\" <&>","money":"1,5"}`)
	j.TargetMsgs[9].ExtendedParams = job.Object(`{"url":"https://a/?x=1&y=2"}`)
	j.ExtendedParams, j.ChannelID, j.TenantID, j.NotifyType = job.Object(`{"k":"v"}`), "渠道", "tenant-1", "notify"
	h.PublishJob("push.jobs.bulk.spring-2026.part1", j)
	r := h.Result(20 * time.Second)
	sizes := []int{}
	var order job.Targets
	for _, c := range r.Chunks {
		sizes = append(sizes, len(c.TargetMsgkey))
		order = append(order, c.TargetMsgkey...)
	}
	if r.Status != job.StatusSucceeded || r.Sent != 250 || !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Fatalf("want chunks of 100, 100, 50 with 250 sent: %v %+v", sizes, r)
	}
	if r.API != job.APIMultiple || r.Campaign != "spring-2026" {
		t.Fatalf("result api %q campaign %q", r.API, r.Campaign)
	}
	if !slices.Equal(order, j.Pairs()) {
		t.Fatal("chunks do not keep the job's order")
	}
	for _, c := range r.Chunks {
		if c.Data == "" {
			t.Fatalf("a PushMultiple chunk's data is the task id: %+v", c)
		}
	}
	calls := h.Sim.Calls()
	if got := h.CallSizes(); len(calls) != 3 || !slices.Equal(slices.Sorted(slices.Values(got)), []int{50, 100, 100}) {
		t.Fatalf("the emulator saw calls of %v", got)
	}
	for _, c := range calls {
		first := c.Params["TargetMsg.1.Target"]
		start := slices.IndexFunc(j.TargetMsgs, func(m job.TargetMsg) bool { return m.Target == first })
		for i := 1; c.Params[fmt.Sprintf("TargetMsg.%d.Target", i)] != ""; i++ {
			if want := j.TargetMsgs[start+i-1].Target; c.Params[fmt.Sprintf("TargetMsg.%d.Target", i)] != want {
				t.Fatalf("call %s: TargetMsg.%d is not %s: a call takes the job's targets in order", c.RequestID, i, want)
			}
		}
		if c.Action != job.APIMultiple || c.Params["ChannelId"] != "渠道" || c.Params["TenantId"] != "tenant-1" ||
			c.Params["ExtendedParams"] != `{"k":"v"}` || c.Params["NotifyType"] != "notify" || c.Params["TemplateKeyValue"] != "" {
			t.Fatalf("call parameters: %v", c.Params)
		}
	}
	got := map[string]mpaassim.Delivery{}
	for _, d := range h.Sim.Deliveries(1) {
		got[d.Target] = d
	}
	for _, m := range j.TargetMsgs {
		d := got[m.Target]
		if d.Count != 1 || d.TemplateKeyValue != m.TemplateKeyValue.String() || d.ExtendedParams != m.ExtendedParams.String() {
			t.Fatalf("%s arrived as %+v, want values %s %s", m.Target, d, m.TemplateKeyValue, m.ExtendedParams)
		}
	}
}

func TestBulkLaneIsServed(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("campaign-7.group-1", "bulk", 12)
	h.PublishJob("push.jobs.bulk.campaign-7", j)
	if r := h.Result(10 * time.Second); r.JobID != j.JobID || r.Sent != 12 {
		t.Fatalf("bulk result: %+v", r)
	}
	h.DeliveredOnce(j)
}

func TestSharedPairsAreSkipped(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	a := teststack.NewJob("share-a", "shared", 10)
	h.PublishJob("push.jobs.a", a)
	if r := h.Result(10 * time.Second); r.Sent != 10 {
		t.Fatalf("first job: %+v", r)
	}
	b := teststack.NewJob("share-b", "shared", 12) // the same 10 pairs and 2 new ones
	h.PublishJob("push.jobs.b", b)
	r := h.Result(10 * time.Second)
	if r.JobID != "share-b" || r.Sent != 2 || r.Duplicates != 10 || len(r.Skipped) != 10 || r.Status != job.StatusSucceeded {
		t.Fatalf("second job must skip the 10 shared pairs: %+v", r)
	}
	if !slices.Equal(r.Skipped, a.TargetMsgkey) {
		t.Fatalf("skipped: %v", r.Skipped)
	}
	h.DeliveredOnce(b)
}

func TestSameJobPublishedTwiceIsSentOnce(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Latency: 50 * time.Millisecond}})
	h.StartWorker()
	j := teststack.NewJob("twice", "twice", 30)
	h.PublishJob("push.jobs.orders", j) // no Nats-Msg-Id: the stream keeps both copies
	h.PublishJob("push.jobs.orders", j)
	r := h.Result(15 * time.Second)
	if r.JobID != "twice" || r.Duplicates+r.Sent != 30 {
		t.Fatalf("result: %+v", r)
	}
	h.NoMoreResults(2 * time.Second) // the copy's result has the same id: the stream drops it
	h.DeliveredOnce(j)
}

func TestTransientFaultsAreRetried(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Rate5xx: 0.25, RateThrottle: 0.15}})
	h.StartWorker()
	var jobs []*job.Job
	var ids []string
	for i := range 6 {
		j := teststack.NewJob(fmt.Sprintf("faulty-%d", i), fmt.Sprintf("faulty%d", i), 40)
		jobs = append(jobs, j)
		ids = append(ids, j.JobID)
		h.PublishJob("push.jobs.orders", j)
	}
	results := h.ResultsFor(ids, 60*time.Second)
	retried := 0
	for _, r := range results {
		if r.Status != job.StatusSucceeded || r.Sent != 40 {
			t.Fatalf("with retries every pair must be sent: %+v", r)
		}
		for _, c := range r.Chunks {
			if c.Attempts > 1 {
				retried++
			}
		}
	}
	for _, j := range jobs {
		h.DeliveredOnce(j)
	}
	st := h.Sim.Stats()
	t.Logf("%d chunks needed more than one attempt; emulator: %v", retried, st.ByCode)
	if retried == 0 {
		t.Fatal("no chunk recorded more than one attempt")
	}
}

func TestPermanentErrorIsOneCall(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Templates: map[string]string{"another": "x"}})
	h.StartWorker()
	j := teststack.NewJob("no-template", "perm", 3)
	h.PublishJob("push.jobs.orders", j)
	r := h.Result(10 * time.Second)
	if r.Status != job.StatusFailed || r.Failed != 3 || len(r.Chunks) != 1 {
		t.Fatalf("result: %+v", r)
	}
	c := r.Chunks[0]
	if c.Status != job.ChunkFailed || c.Attempts != 1 || c.ResultCode != "3022" || c.Error == "" {
		t.Fatalf("chunk: %+v", c)
	}
	if n := len(h.Sim.Calls()); n != 1 {
		t.Fatalf("a permanent error must cost one call, took %d", n)
	}
	dl := h.DeadLetter(5 * time.Second)
	if dl.Headers().Get(wire.HeaderReason) != "failed" || !strings.Contains(dl.Headers().Get(wire.HeaderError), "3022") {
		t.Fatalf("dead letter headers: %v", dl.Headers())
	}
	failed, err := job.Decode(dl.Data())
	if err != nil || len(failed.TargetMsgkey) != 3 {
		t.Fatalf("the dead letter must be the job with its failed targets: %v %s", err, dl.Data())
	}
}

func TestInvalidJobsAreRejectedAndTheWorkerGoesOn(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	h.Publish("push.jobs.orders", []byte("not json at all"), "")
	h.Publish("push.jobs.orders", []byte(`{"jobId":"bad-case","APPID":"x"}`), "")
	h.Publish("push.jobs.orders", []byte(`{"jobId":"bad-type","taskName":"t","appId":"a","workspaceId":"w","deliveryType":"3",`+
		`"targetMsgkey":{"u":"k"},"expiredSeconds":300,"templateName":"n","replyTo":"push.results.custom"}`), "hdr-id")
	good := teststack.NewJob("after-bad", "good", 2)
	h.PublishJob("push.jobs.orders", good)

	// The worker takes the four jobs at once, so the good one may end first.
	rejected := map[string]job.Result{}
	goodDone := false
	for range 4 {
		r := h.Result(10 * time.Second)
		if r.JobID == good.JobID {
			goodDone = r.Status == job.StatusSucceeded
			continue
		}
		if r.Status != job.StatusRejected {
			t.Fatalf("want the three bad jobs rejected, got %+v", r)
		}
		rejected[r.JobID] = r
	}
	if !goodDone || len(rejected) != 3 {
		t.Fatalf("the good job must succeed beside the three rejected: good %v, rejected %v", goodDone, rejected)
	}
	if r := rejected["seq-1"]; !strings.Contains(r.Error, "not a JSON object") || r.Targets != 0 {
		t.Fatalf("non-JSON: %+v", r)
	}
	if r := rejected["bad-case"]; !strings.HasPrefix(r.Error, "APPID: unknown field") {
		t.Fatalf("case variant: %+v", r)
	}
	if r := rejected["bad-type"]; r.Targets != 1 || r.Failed != 1 || !strings.HasPrefix(r.Error, "deliveryType: must be an integer") {
		t.Fatalf("wrong type: %+v", r)
	}
	for range 3 {
		dl := h.DeadLetter(5 * time.Second)
		if dl.Headers().Get(wire.HeaderReason) != "rejected" {
			t.Fatalf("dead letter: %v", dl.Headers())
		}
		if dl.Headers().Get(wire.HeaderJobID) == "seq-1" && string(dl.Data()) != "not json at all" {
			t.Fatalf("a non-JSON job must be kept as received: %q", dl.Data())
		}
	}
}

func TestJobIDFallsBackToMsgIDThenSequence(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("", "noid", 1)
	body, _ := j.Encode()
	h.Publish("push.jobs.orders", body, "producer-id-1")
	if r := h.Result(10 * time.Second); r.JobID != "producer-id-1" {
		t.Fatalf("want the Nats-Msg-Id as job id: %+v", r)
	}
	j2 := teststack.NewJob("", "noid2", 1)
	body, _ = j2.Encode()
	h.Publish("push.jobs.orders", body, "not a valid id!")
	if r := h.Result(10 * time.Second); r.JobID != "seq-2" {
		t.Fatalf("want seq-2: %+v", r)
	}
}

func TestNotAfterIsHonoured(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("too-late", "late", 15)
	past := time.Now().Add(-time.Minute)
	j.NotAfter = &past
	h.PublishJob("push.jobs.orders", j)
	r := h.Result(10 * time.Second)
	if r.Status != job.StatusFailed || r.Failed != 15 || r.Chunks[0].Error != "deadline passed" {
		t.Fatalf("result: %+v", r)
	}
	if n := len(h.Sim.Calls()); n != 0 {
		t.Fatalf("%d calls after the deadline", n)
	}
}

func TestReplyToIsUsed(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	j := teststack.NewJob("with-reply", "reply", 1)
	j.ReplyTo = "push.results.orders.eu"
	h.PublishJob("push.jobs.orders", j)
	m, err := h.Reader(h.Topo.ResultsStream).Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject() != "push.results.orders.eu" {
		t.Fatalf("result on %s", m.Subject())
	}
}

// A deployment under another subject root takes replyTo subjects under its own
// root (they were refused when the rule was spelled with push.results.).
func TestAnotherRootTakesItsOwnReplyTo(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Topology: topology.Default().Suffixed("alt")})
	h.StartWorker()
	j := teststack.NewJob("alt-reply", "alt", 2)
	j.ReplyTo = h.Topo.ResultPrefix() + "orders"
	h.PublishJob(h.Topo.EventsSubject("orders"), j)
	m, err := h.Reader(h.Topo.ResultsStream).Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject() != "pushalt.results.orders" || !strings.Contains(string(m.Data()), `"status":"succeeded"`) {
		t.Fatalf("result on %s: %s", m.Subject(), m.Data())
	}
}

// A worker whose connection drops mid-job (no ack, no result) leaves the job to
// another worker, which finishes it. Pairs the first had in flight may be pushed
// twice: at most its calls in flight.
func TestWorkerDroppedMidJobIsFinishedByAnother(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Latency: 200 * time.Millisecond}})
	const inFlight = 2
	slow := func(w *teststack.WorkerSetup) { w.Config.MaxInFlight = inFlight }
	a := h.StartWorker(slow)
	j := teststack.NewJob("dropped", "drop", 200) // 20 calls of 200 ms, 2 at a time: about 2 s
	h.PublishJob("push.jobs.orders", j)
	time.Sleep(700 * time.Millisecond)
	a.Kill()
	h.StartWorker(slow)
	r := h.Result(30 * time.Second)
	if r.JobID != "dropped" || r.Sent+r.Duplicates != 200 || r.Failed != 0 || r.Deliveries != 2 {
		t.Fatalf("result: %+v", r)
	}
	h.NoMoreResults(time.Second)
	twice := h.Sim.Deliveries(2)
	t.Logf("pairs delivered twice: %d (bound: %d calls in flight × 10)", len(twice), inFlight)
	if len(twice) > inFlight*job.MaxTargetsPerCall {
		t.Fatalf("%d pairs delivered twice, more than the %d in flight", len(twice), inFlight*10)
	}
	for _, tg := range j.TargetMsgkey {
		if h.Sim.Delivered(j.AppID, j.WorkspaceID, tg.Target, tg.MsgKey) == 0 {
			t.Fatalf("%s never delivered", tg.Target)
		}
	}
}

func TestThreeWorkersShareTheRate(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	const rate = 50
	for range 3 {
		h.StartWorker(func(w *teststack.WorkerSetup) { w.Config.RateLimit = rate })
	}
	var ids []string
	for i := range 4 {
		j := teststack.NewJob(fmt.Sprintf("rate-%d", i), fmt.Sprintf("rate%d", i), 500)
		ids = append(ids, j.JobID)
		h.PublishJob("push.jobs.bulk.rate", j)
	}
	h.ResultsFor(ids, 60*time.Second)
	st := h.Sim.Stats()
	t.Logf("%d calls; busiest second %d, mean %.1f/s (limit %d/s)", st.Calls, st.MaxCallsInOneSecond, st.MeanCallsPerSecond, rate)
	if float64(st.MaxCallsInOneSecond) > 1.1*rate {
		t.Fatalf("a one-second window saw %d calls, over 1.1× %d", st.MaxCallsInOneSecond, rate)
	}
	if st.MeanCallsPerSecond < 0.9*rate {
		t.Fatalf("mean %.1f calls/s, under 0.9× %d", st.MeanCallsPerSecond, rate)
	}
}

// With Redis down the worker sends nothing, keeps the job without spending its
// deliveries, and finishes it when Redis is back (empty).
func TestRedisDownPausesTheWorker(t *testing.T) {
	t.Parallel()
	own := testenv.StartRedis(t)
	h := teststack.New(t, teststack.Setup{RedisAddr: own.Addr()})
	rw := h.StartWorker()
	own.Stop()
	j := teststack.NewJob("redis-down", "rdown", 30)
	h.PublishJob("push.jobs.orders", j)
	time.Sleep(4 * time.Second) // longer than AckWait (3 s): the heartbeat must hold the job
	if n := h.Sim.Stats().Calls; n != 0 {
		t.Fatalf("%d mPaaS calls while Redis was down", n)
	}
	if causes := rw.Gate().Causes(); !slices.Contains(causes, pause.CauseRedis) {
		t.Fatalf("the worker must say it waits for Redis: %v", causes)
	}
	own.Start()
	r := h.Result(20 * time.Second)
	if r.Sent != 30 || r.Deliveries != 1 {
		t.Fatalf("after Redis is back: %+v", r)
	}
	h.DeliveredOnce(j)
	if causes := rw.Gate().Causes(); len(causes) != 0 {
		t.Fatalf("still paused: %v", causes)
	}
}

// The machine's NATS is the distribution's 2.9: the worker must work on it too.
func TestOnTheMachinesNATS(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{NATSURL: testenv.MachineNATS(t)}) // a topology of the test's own, deleted at the end
	h.StartWorker()
	j := teststack.NewJob("on-2-9", "m29", 13)
	h.PublishJob(h.Topo.EventsSubject("orders"), j)
	if r := h.Result(10 * time.Second); r.Sent != 13 {
		t.Fatalf("result: %+v", r)
	}
	b := teststack.NewJob("on-2-9-bulk", "m29b", 3)
	h.PublishJob(h.Topo.BulkSubject("c1"), b)
	if r := h.Result(10 * time.Second); r.JobID != "on-2-9-bulk" {
		t.Fatalf("bulk result: %+v", r)
	}

	// Campaign control on 2.9: the bucket's watch, parking, a stream count by subject.
	ctx := context.Background()
	kv, err := h.JS.KeyValue(ctx, h.Topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "c2", campaign.State{State: campaign.Paused}.Encode()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	h.PublishJob(h.Topo.BulkSubject("c2"), teststack.NewJob("on-2-9-parked", "m29p", 2))
	parked, err := h.JS.Stream(ctx, h.Topo.ParkedStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := parked.Info(ctx, jetstream.WithSubjectFilter(h.Topo.CampaignParked("c2")))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Subjects[h.Topo.ParkedSubject("c2", "on-2-9-parked")] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the paused campaign's job was not parked: %+v", info.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.NoMoreResults(500 * time.Millisecond)
}

// mPaaS refusing the credentials is the worker's problem: it holds the job without
// spending its deliveries, says so, and finishes once the key works again.
func TestRefusedCredentialsPauseTheWorker(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{RefuseSignatures: true}})
	rw := h.StartWorker()
	j := teststack.NewJob("creds", "creds", 20)
	h.PublishJob("push.jobs.orders", j)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(rw.Gate().Causes(), pause.CauseCredentials) {
		if time.Now().After(deadline) {
			t.Fatal("the worker never reported the refused credentials")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // past AckWait (3 s): the job must be held, not redelivered
	h.Sim.SetFaults(mpaassim.Faults{})
	r := h.Result(20 * time.Second)
	if r.Sent != 20 || r.Deliveries != 1 || r.Failed != 0 {
		t.Fatalf("after the key works again: %+v", r)
	}
	h.DeliveredOnce(j)
	if causes := rw.Gate().Causes(); len(causes) != 0 {
		t.Fatalf("still paused: %v", causes)
	}
}

// Recall through a real worker: the pairs of a PushTemplate job and the push
// task of a PushMultiple job are revoked by an admin job on the campaign's
// admin subject, even after the campaign was canceled.
func TestRevokeAdminJob(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	tj := teststack.NewJob("rv-t", "rvt", 30)
	h.PublishJob(h.Topo.BulkSubject("recall"), tj)
	mj := teststack.NewMultipleJob("rv-m", "rvm", 250)
	h.PublishJob(h.Topo.BulkSubject("recall"), mj)
	results := h.ResultsFor([]string{"rv-t", "rv-m"}, 20*time.Second)
	var tasks []string
	for _, c := range results["rv-m"].Chunks {
		tasks = append(tasks, c.Data)
	}
	kv, err := h.JS.KeyValue(context.Background(), h.Topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "recall", campaign.State{State: campaign.Canceled}.Encode()); err != nil {
		t.Fatal(err)
	}
	a := &job.Admin{JobID: "rv-1", AppID: tj.AppID, WorkspaceID: tj.WorkspaceID, Action: job.ActionRevoke, TargetMsgkey: tj.TargetMsgkey, TaskIDs: tasks}
	body, _ := a.Encode()
	h.Publish(h.Topo.AdminSubject("recall"), body, a.JobID)
	r := h.Result(20 * time.Second)
	if r.JobID != "rv-1" || r.Status != job.StatusSucceeded || r.Sent != 33 || r.Targets != 33 || r.Campaign != "recall" {
		t.Fatalf("revoke result: %+v", r)
	}
	if st := h.Sim.Stats(); st.Recall.RevokedPairs != 30 || st.Recall.RevokedTasks != 3 || st.ByAPI["RevokePushTask"].Calls != 3 {
		t.Fatalf("emulator: %+v %+v", st.Recall, st.ByAPI)
	}
}
