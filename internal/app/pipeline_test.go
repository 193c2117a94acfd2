package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/app"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

func TestOneJobOneResult(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("order-8812-paid", "one", 1)
	h.publishJob("push.jobs.orders", j)
	r := h.result(10 * time.Second)
	if r.JobID != j.JobID || r.Status != job.StatusSucceeded || r.Sent != 1 || len(r.Chunks) != 1 || r.Deliveries != 1 {
		t.Fatalf("result: %+v", r)
	}
	calls := h.sim.Calls()
	if len(calls) != 1 || r.Chunks[0].RequestID != calls[0].RequestID || r.Chunks[0].ResultCode != "OK" || !r.Chunks[0].PushSuccess {
		t.Fatalf("the result must carry the emulator's request id %q: %+v", calls[0].RequestID, r.Chunks[0])
	}
	if r.AppID != j.AppID || r.TaskName != j.TaskName || r.StartedAt.IsZero() || r.FinishedAt.Before(r.StartedAt.Time) {
		t.Fatalf("result fields: %+v", r)
	}
	h.deliveredOnce(j)
}

func TestTwentyFiveTargetsAreThreeCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("big-25", "big", 25)
	h.publishJob("push.jobs.campaign", j)
	r := h.result(10 * time.Second)
	sizes := []int{}
	for _, c := range r.Chunks {
		sizes = append(sizes, len(c.TargetMsgkey))
	}
	if r.Sent != 25 || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("want chunks of 10, 10, 5 with 25 sent: %v %+v", sizes, r)
	}
	calls := h.callSizes()
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
	h.deliveredOnce(j)
}

func TestBulkLaneIsServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("campaign-7.group-1", "bulk", 12)
	h.publishJob("push.jobs.bulk.campaign-7", j)
	if r := h.result(10 * time.Second); r.JobID != j.JobID || r.Sent != 12 {
		t.Fatalf("bulk result: %+v", r)
	}
	h.deliveredOnce(j)
}

func TestSharedPairsAreSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	a := newJob("share-a", "shared", 10)
	h.publishJob("push.jobs.a", a)
	if r := h.result(10 * time.Second); r.Sent != 10 {
		t.Fatalf("first job: %+v", r)
	}
	b := newJob("share-b", "shared", 12) // the same 10 pairs and 2 new ones
	h.publishJob("push.jobs.b", b)
	r := h.result(10 * time.Second)
	if r.JobID != "share-b" || r.Sent != 2 || r.Duplicates != 10 || len(r.Skipped) != 10 || r.Status != job.StatusSucceeded {
		t.Fatalf("second job must skip the 10 shared pairs: %+v", r)
	}
	if !slices.Equal(r.Skipped, a.TargetMsgkey) {
		t.Fatalf("skipped: %v", r.Skipped)
	}
	h.deliveredOnce(b)
}

func TestSameJobPublishedTwiceIsSentOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{faults: mpaassim.Faults{Latency: 50 * time.Millisecond}})
	h.startWorker()
	j := newJob("twice", "twice", 30)
	h.publishJob("push.jobs.orders", j) // no Nats-Msg-Id: the stream keeps both copies
	h.publishJob("push.jobs.orders", j)
	r := h.result(15 * time.Second)
	if r.JobID != "twice" || r.Duplicates+r.Sent != 30 {
		t.Fatalf("result: %+v", r)
	}
	h.noMoreResults(2 * time.Second) // the copy's result has the same id: the stream drops it
	h.deliveredOnce(j)
}

func TestTransientFaultsAreRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{faults: mpaassim.Faults{Rate5xx: 0.25, RateThrottle: 0.15}})
	h.startWorker()
	var jobs []*job.Job
	var ids []string
	for i := range 6 {
		j := newJob(fmt.Sprintf("faulty-%d", i), fmt.Sprintf("faulty%d", i), 40)
		jobs = append(jobs, j)
		ids = append(ids, j.JobID)
		h.publishJob("push.jobs.orders", j)
	}
	results := h.resultsFor(ids, 60*time.Second)
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
		h.deliveredOnce(j)
	}
	st := h.sim.Stats()
	t.Logf("%d chunks needed more than one attempt; emulator: %v", retried, st.ByCode)
	if retried == 0 {
		t.Fatal("no chunk recorded more than one attempt")
	}
}

func TestPermanentErrorIsOneCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{templates: map[string]string{"another": "x"}})
	h.startWorker()
	j := newJob("no-template", "perm", 3)
	h.publishJob("push.jobs.orders", j)
	r := h.result(10 * time.Second)
	if r.Status != job.StatusFailed || r.Failed != 3 || len(r.Chunks) != 1 {
		t.Fatalf("result: %+v", r)
	}
	c := r.Chunks[0]
	if c.Status != job.ChunkFailed || c.Attempts != 1 || c.ResultCode != "3022" || c.Error == "" {
		t.Fatalf("chunk: %+v", c)
	}
	if n := len(h.sim.Calls()); n != 1 {
		t.Fatalf("a permanent error must cost one call, took %d", n)
	}
	dl := h.deadLetter(5 * time.Second)
	if dl.Headers().Get(consumer.HeaderReason) != "failed" || !strings.Contains(dl.Headers().Get(consumer.HeaderError), "3022") {
		t.Fatalf("dead letter headers: %v", dl.Headers())
	}
	failed, err := job.Decode(dl.Data())
	if err != nil || len(failed.TargetMsgkey) != 3 {
		t.Fatalf("the dead letter must be the job with its failed targets: %v %s", err, dl.Data())
	}
}

func TestInvalidJobsAreRejectedAndTheWorkerGoesOn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	h.publish("push.jobs.orders", []byte("not json at all"), "")
	h.publish("push.jobs.orders", []byte(`{"jobId":"bad-case","APPID":"x"}`), "")
	h.publish("push.jobs.orders", []byte(`{"jobId":"bad-type","taskName":"t","appId":"a","workspaceId":"w","deliveryType":"3",`+
		`"targetMsgkey":{"u":"k"},"expiredSeconds":300,"templateName":"n","replyTo":"push.results.custom"}`), "hdr-id")
	good := newJob("after-bad", "good", 2)
	h.publishJob("push.jobs.orders", good)

	rejected := map[string]job.Result{}
	for range 3 {
		r := h.result(10 * time.Second)
		if r.Status != job.StatusRejected {
			t.Fatalf("want the three rejected results first, got %+v", r)
		}
		rejected[r.JobID] = r
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
		dl := h.deadLetter(5 * time.Second)
		if dl.Headers().Get(consumer.HeaderReason) != "rejected" {
			t.Fatalf("dead letter: %v", dl.Headers())
		}
		if dl.Headers().Get(consumer.HeaderJobID) == "seq-1" && string(dl.Data()) != "not json at all" {
			t.Fatalf("a non-JSON job must be kept as received: %q", dl.Data())
		}
	}
	if r := h.result(10 * time.Second); r.JobID != "after-bad" || r.Status != job.StatusSucceeded {
		t.Fatalf("the worker must go on after bad jobs: %+v", r)
	}
}

func TestJobIDFallsBackToMsgIDThenSequence(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("", "noid", 1)
	body, _ := j.Encode()
	h.publish("push.jobs.orders", body, "producer-id-1")
	if r := h.result(10 * time.Second); r.JobID != "producer-id-1" {
		t.Fatalf("want the Nats-Msg-Id as job id: %+v", r)
	}
	j2 := newJob("", "noid2", 1)
	body, _ = j2.Encode()
	h.publish("push.jobs.orders", body, "not a valid id!")
	if r := h.result(10 * time.Second); r.JobID != "seq-2" {
		t.Fatalf("want seq-2: %+v", r)
	}
}

func TestNotAfterIsHonoured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("too-late", "late", 15)
	past := time.Now().Add(-time.Minute)
	j.NotAfter = &past
	h.publishJob("push.jobs.orders", j)
	r := h.result(10 * time.Second)
	if r.Status != job.StatusFailed || r.Failed != 15 || r.Chunks[0].Error != "deadline passed" {
		t.Fatalf("result: %+v", r)
	}
	if n := len(h.sim.Calls()); n != 0 {
		t.Fatalf("%d calls after the deadline", n)
	}
}

func TestReplyToIsUsed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.startWorker()
	j := newJob("with-reply", "reply", 1)
	j.ReplyTo = "push.results.orders.eu"
	h.publishJob("push.jobs.orders", j)
	m, err := next(h.reader(h.topo.ResultsStream), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject() != "push.results.orders.eu" {
		t.Fatalf("result on %s", m.Subject())
	}
}

// A worker whose connection drops mid-job (no ack, no result) leaves the job to
// another worker, which finishes it. Pairs the first had in flight may be pushed
// twice: at most its calls in flight.
func TestWorkerDroppedMidJobIsFinishedByAnother(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{faults: mpaassim.Faults{Latency: 200 * time.Millisecond}})
	const inFlight = 2
	slow := func(o *app.Options) { o.Processor.MaxInFlight = inFlight }
	a := h.startWorker(slow)
	j := newJob("dropped", "drop", 200) // 20 calls of 200 ms, 2 at a time: about 2 s
	h.publishJob("push.jobs.orders", j)
	time.Sleep(700 * time.Millisecond)
	a.kill()
	h.startWorker(slow)
	r := h.result(30 * time.Second)
	if r.JobID != "dropped" || r.Sent+r.Duplicates != 200 || r.Failed != 0 || r.Deliveries != 2 {
		t.Fatalf("result: %+v", r)
	}
	h.noMoreResults(time.Second)
	twice := h.sim.Deliveries(2)
	t.Logf("pairs delivered twice: %d (bound: %d calls in flight × 10)", len(twice), inFlight)
	if len(twice) > inFlight*job.MaxTargetsPerCall {
		t.Fatalf("%d pairs delivered twice, more than the %d in flight", len(twice), inFlight*10)
	}
	for _, tg := range j.TargetMsgkey {
		if h.sim.Delivered(j.AppID, j.WorkspaceID, tg.Target, tg.MsgKey) == 0 {
			t.Fatalf("%s never delivered", tg.Target)
		}
	}
}

func TestThreeWorkersShareTheRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	const rate = 50
	for range 3 {
		h.startWorker(func(o *app.Options) { o.RateLimit = rate })
	}
	var ids []string
	for i := range 4 {
		j := newJob(fmt.Sprintf("rate-%d", i), fmt.Sprintf("rate%d", i), 500)
		ids = append(ids, j.JobID)
		h.publishJob("push.jobs.bulk.rate", j)
	}
	h.resultsFor(ids, 60*time.Second)
	st := h.sim.Stats()
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
	h := newHarness(t, setup{redisAddr: own.Addr()})
	rw := h.startWorker()
	own.Stop()
	j := newJob("redis-down", "rdown", 30)
	h.publishJob("push.jobs.orders", j)
	time.Sleep(4 * time.Second) // longer than AckWait (3 s): the heartbeat must hold the job
	if n := h.sim.Stats().Calls; n != 0 {
		t.Fatalf("%d mPaaS calls while Redis was down", n)
	}
	if causes := rw.w.Gate().Causes(); !slices.Contains(causes, worker.CauseRedis) {
		t.Fatalf("the worker must say it waits for Redis: %v", causes)
	}
	own.Start()
	r := h.result(20 * time.Second)
	if r.Sent != 30 || r.Deliveries != 1 {
		t.Fatalf("after Redis is back: %+v", r)
	}
	h.deliveredOnce(j)
	if causes := rw.w.Gate().Causes(); len(causes) != 0 {
		t.Fatalf("still paused: %v", causes)
	}
}

// The machine's NATS is the distribution's 2.9: the worker must work on it too.
func TestOnTheMachinesNATS(t *testing.T) {
	t.Parallel()
	url := testenv.MachineNATS(t)
	id := testenv.ID()
	topo := consumer.Topology{Root: "t" + id, JobsStream: "T" + id + "_JOBS", ResultsStream: "T" + id + "_RESULTS",
		DLQStream: "T" + id + "_DLQ", Durable: "w-" + id, BulkDurable: "wb-" + id}
	h := newHarness(t, setup{natsURL: url, topology: topo})
	t.Cleanup(func() {
		// Not t.Context(): it is canceled before cleanups run, and a stream left on
		// the shared server keeps its storage reserved.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []string{topo.JobsStream, topo.ResultsStream, topo.DLQStream} {
			if err := h.js.DeleteStream(ctx, s); err != nil {
				t.Errorf("deleting test stream %s: %v", s, err)
			}
		}
	})
	h.startWorker()
	j := newJob("on-2-9", "m29", 13)
	h.publishJob(topo.Root+".jobs.orders", j)
	if r := h.result(10 * time.Second); r.Sent != 13 {
		t.Fatalf("result: %+v", r)
	}
	b := newJob("on-2-9-bulk", "m29b", 3)
	h.publishJob(topo.Root+".jobs.bulk.c1", b)
	if r := h.result(10 * time.Second); r.JobID != "on-2-9-bulk" {
		t.Fatalf("bulk result: %+v", r)
	}
}

// mPaaS refusing the credentials is the worker's problem: it holds the job without
// spending its deliveries, says so, and finishes once the key works again.
func TestRefusedCredentialsPauseTheWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{faults: mpaassim.Faults{RefuseSignatures: true}})
	rw := h.startWorker()
	j := newJob("creds", "creds", 20)
	h.publishJob("push.jobs.orders", j)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(rw.w.Gate().Causes(), worker.CauseCredentials) {
		if time.Now().After(deadline) {
			t.Fatal("the worker never reported the refused credentials")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // past AckWait (3 s): the job must be held, not redelivered
	h.sim.SetFaults(mpaassim.Faults{})
	r := h.result(20 * time.Second)
	if r.Sent != 20 || r.Deliveries != 1 || r.Failed != 0 {
		t.Fatalf("after the key works again: %+v", r)
	}
	h.deliveredOnce(j)
	if causes := rw.w.Gate().Causes(); len(causes) != 0 {
		t.Fatalf("still paused: %v", causes)
	}
}
