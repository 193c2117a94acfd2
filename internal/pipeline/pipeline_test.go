package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/retry"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

var start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// bench is a pipeline on the in-memory stores, the emulator over HTTP and a
// fake clock: retries and delays move the clock, nothing sleeps.
type bench struct {
	p     *pipeline.Pipeline
	sim   *mpaassim.Server
	clock *clock.Fake
	gate  *pause.Gate
}

// The policies without jitter, so that the test knows every wait.
var (
	callPolicy = retry.Exponential{Initial: 100 * time.Millisecond, Max: time.Second}
	handBack   = retry.Exponential{Initial: 5 * time.Second, Max: time.Minute}
)

func newBench(t *testing.T, faults mpaassim.Faults) *bench {
	t.Helper()
	return newBenchWith(t, faults, nil)
}

// states is a campaign control the test sets by hand.
type states map[string]campaign.State

func (s states) Get(name string) campaign.State {
	if st, ok := s[name]; ok {
		return st
	}
	return campaign.State{State: campaign.Running}
}

// emulator is the mPaaS emulator over HTTP, with the faults, and a client of it.
func emulator(t *testing.T, faults mpaassim.Faults) (*mpaassim.Server, *push.Client) {
	t.Helper()
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak": "sk"}, AcceptAnyTemplate: true, Faults: faults})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := push.New(push.Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return sim, client
}

func newBenchWith(t *testing.T, faults mpaassim.Faults, control campaign.States) *bench {
	t.Helper()
	sim, client := emulator(t, faults)
	b := &bench{sim: sim, clock: clock.NewFake(start), gate: pause.NewGate(nil, nil)}
	b.p = pipeline.New(pipeline.Config{Attempts: 3, Call: callPolicy, Probe: callPolicy, HandBack: handBack, Clock: b.clock, Campaigns: control},
		dedupe.NewMemory(time.Hour, time.Minute), ratelimit.NewMemory(100000, 0), client, b.gate, nil, nil)
	return b
}

func newJob(id string, n int) *job.Job {
	t := make(job.Targets, n)
	for i := range t {
		t[i] = job.Target{Target: id + "-u" + string(rune('a'+i/26)) + string(rune('a'+i%26)), MsgKey: "m"}
	}
	return &job.Job{JobID: id, TaskName: "t", AppID: "app", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", TargetMsgkey: t}
}

func delivery(t *testing.T, j *job.Job, number int, last bool) consumer.Delivery {
	t.Helper()
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return consumer.Delivery{Lane: "bulk", Subject: "push.jobs.bulk.c", Data: body, Sequence: 7, Number: number, Last: last}
}

func calls(sim *mpaassim.Server) []int {
	var sizes []int
	for _, c := range sim.Calls() {
		var m map[string]string
		_ = json.Unmarshal([]byte(c.Params["TargetMsgkey"]), &m)
		sizes = append(sizes, len(m))
	}
	slices.Sort(sizes)
	return sizes
}

func TestAJobEndsInItsResult(t *testing.T) {
	b := newBench(t, mpaassim.Faults{})
	j := newJob("j1", 25)
	out := handle(b.p, context.Background(), delivery(t, j, 1, false))
	if out.Action != consumer.Ack || out.Result == nil || out.DeadLetter != nil || out.ResultSubject != "push.results.j1" {
		t.Fatalf("outcome: %+v", out)
	}
	if r := out.Result; r.Status != job.StatusSucceeded || r.Sent != 25 || len(r.Chunks) != 3 || r.Deliveries != 1 {
		t.Fatalf("result: %+v", r)
	}
	if got := calls(b.sim); !slices.Equal(got, []int{5, 10, 10}) {
		t.Fatalf("calls of %v targets, want 10, 10 and 5", got)
	}
	// The same job again (a redelivery after a lost ack): nothing is sent twice,
	// and its one result still reports every target as sent.
	again := handle(b.p, context.Background(), delivery(t, j, 2, false))
	if again.Result.Sent != 25 || len(b.sim.Calls()) != 3 {
		t.Fatalf("the re-run sent again or lost the count: %+v, %d calls", again.Result, len(b.sim.Calls()))
	}
}

func TestAnInvalidJobIsRejectedWithItsBytes(t *testing.T) {
	b := newBench(t, mpaassim.Faults{})
	d := consumer.Delivery{Lane: "default", Data: []byte(`{"jobId":"x","appId":""}`), Sequence: 42, Number: 1}
	out := handle(b.p, context.Background(), d)
	if out.Action != consumer.Term || out.Result == nil || out.Result.Status != job.StatusRejected || out.ResultSubject != "push.results.x" {
		t.Fatalf("outcome: %+v", out)
	}
	if dl := out.DeadLetter; dl == nil || dl.Reason != consumer.ReasonRejected || string(dl.Body) != string(d.Data) || dl.JobID != "x" {
		t.Fatalf("dead letter: %+v", out.DeadLetter)
	}
	garbage := handle(b.p, context.Background(), consumer.Delivery{Data: []byte("not json"), Sequence: 42, Number: 1})
	if garbage.ResultSubject != "push.results.seq-42" || garbage.Result.JobID != "seq-42" {
		t.Fatalf("a job that cannot be read answers under seq-<n>: %+v", garbage)
	}
	if len(b.sim.Calls()) != 0 {
		t.Fatal("an invalid job made a call")
	}
}

// A chunk that keeps failing is retried by the call policy, then handed back by
// the hand-back policy; on the last delivery it fails and is dead-lettered.
func TestTransientFailuresFollowThePolicies(t *testing.T) {
	b := newBench(t, mpaassim.Faults{Rate5xx: 1})
	j := newJob("j2", 3)
	out := handle(b.p, context.Background(), delivery(t, j, 2, false))
	if out.Action != consumer.Retry || out.Delay != 10*time.Second || out.Result != nil {
		t.Fatalf("want a hand-back after 10s (second delivery): %+v", out)
	}
	if got, want := b.clock.Slept(), []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("waits between calls %v, want %v", got, want)
	}
	last := handle(b.p, context.Background(), delivery(t, j, 4, true))
	if last.Action != consumer.Ack || last.Result.Status != job.StatusFailed || last.Result.Failed != 3 {
		t.Fatalf("last delivery: %+v", last)
	}
	if dl := last.DeadLetter; dl == nil || dl.Reason != consumer.ReasonFailed {
		t.Fatalf("the failed targets must be dead-lettered: %+v", dl)
	}
	if n := len(b.sim.Calls()); n != 6 {
		t.Fatalf("%d calls, want 3 attempts × 2 deliveries", n)
	}
}

func TestTargetsPastTheDeadlineAreNotSent(t *testing.T) {
	b := newBench(t, mpaassim.Faults{})
	j := newJob("j3", 12)
	j.NotAfter = ptr(start.Add(time.Minute))
	b.clock.Advance(2 * time.Minute)
	out := handle(b.p, context.Background(), delivery(t, j, 1, false))
	if out.Result == nil || out.Result.Failed != 12 || out.Result.Chunks[0].Error != "deadline passed" || len(b.sim.Calls()) != 0 {
		t.Fatalf("outcome: %+v", out.Result)
	}
}

// Refused credentials are the worker's problem: the gate shuts with that cause,
// and a worker that stops meanwhile hands the job back at once.
func TestRefusedCredentialsShutTheGate(t *testing.T) {
	b := newBench(t, mpaassim.Faults{RefuseSignatures: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan consumer.Outcome)
	go func() { done <- handle(b.p, ctx, delivery(t, newJob("j4", 2), 1, false)) }()
	deadline := time.Now().Add(5 * time.Second)
	for !b.gate.Open(pause.CauseCredentials) {
		if time.Now().After(deadline) {
			t.Fatal("the gate never said mpaas-credentials")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if out := <-done; out.Action != consumer.Release || out.Result != nil {
		t.Fatalf("a stopping worker must hand the job back now: %+v", out)
	}
}

func ptr[T any](v T) *T { return &v }

// A paused campaign's job is parked before any claim or call; a canceled one's
// ends without a call, what an earlier delivery sent still counting as sent.
func TestPausedParksAndCanceledEndsWithoutACall(t *testing.T) {
	control := states{}
	b := newBenchWith(t, mpaassim.Faults{}, control)
	control["c"] = campaign.State{State: campaign.Paused}
	out := handle(b.p, context.Background(), delivery(t, newJob("j1", 25), 1, false))
	if out.Action != consumer.Park || out.ParkSubject != "push.parked.c.j1" || out.JobID != "j1" || out.Result != nil || len(b.sim.Calls()) != 0 {
		t.Fatalf("a paused campaign's job must be parked, untouched: %+v, %d calls", out, len(b.sim.Calls()))
	}

	control["c"] = campaign.State{State: campaign.Running}
	sent := newJob("j2", 25)
	if out := handle(b.p, context.Background(), delivery(t, sent, 1, false)); out.Result.Sent != 25 {
		t.Fatalf("running: %+v", out.Result)
	}
	control["c"] = campaign.State{State: campaign.Canceled}
	again := handle(b.p, context.Background(), consumer.Delivery{Lane: "bulk", Subject: "push.jobs.bulk.c", Data: delivery(t, sent, 1, false).Data,
		Sequence: 8, Number: 1, ParkedAs: "j2"})
	if r := again.Result; r.Status != job.StatusSucceeded || r.Sent != 25 || r.Campaign != "c" {
		t.Fatalf("a job that had sent everything is not canceled: %+v", r)
	}
	out = handle(b.p, context.Background(), delivery(t, newJob("j3", 25), 1, false))
	r := out.Result
	if out.Action != consumer.Ack || r.Status != job.StatusCanceled || r.Failed != 25 || r.Targets != 25 || len(b.sim.Calls()) != 3 {
		t.Fatalf("canceled: %+v, %d calls", r, len(b.sim.Calls()))
	}
	if out.DeadLetter != nil {
		t.Fatalf("a canceled job's unsent targets must not be dead-lettered: %+v", out.DeadLetter)
	}
	for _, c := range r.Chunks {
		if c.Error != "campaign canceled" || c.Attempts != 0 {
			t.Fatalf("chunk %+v", c)
		}
	}
}

// The chunks of a scheduled job's result carry its strategyType, on the first
// delivery and on a later one that reports what the first sent; an immediate
// job's carry none.
func TestChunksCarryTheJobsStrategyType(t *testing.T) {
	b := newBench(t, mpaassim.Faults{})
	at := time.Now().Add(time.Hour).UnixMilli()
	tj := newJob("st-t", 12)
	tj.StrategyType, tj.StrategyContent = job.Int64(1), job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))
	mj := &job.Job{JobID: "st-m", TaskName: "t", AppID: "app", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
		StrategyType: job.Int64(1), StrategyContent: job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))}
	for i := range 150 {
		mj.TargetMsgs = append(mj.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("m%d", i), MsgKey: "k"})
	}
	for _, j := range []*job.Job{tj, mj} {
		for n := 1; n <= 2; n++ {
			out := handle(b.p, context.Background(), delivery(t, j, n, false))
			if out.Result == nil || len(out.Result.Chunks) != 2 {
				t.Fatalf("%s delivery %d: %+v", j.JobID, n, out.Result)
			}
			for _, c := range out.Result.Chunks {
				if c.StrategyType != 1 || !c.Scheduled() || c.Status != job.ChunkSent {
					t.Fatalf("%s delivery %d: chunk %+v", j.JobID, n, c)
				}
			}
		}
	}
	out := handle(b.p, context.Background(), delivery(t, newJob("st-now", 3), 1, false))
	if c := out.Result.Chunks[0]; c.StrategyType != 0 || c.Scheduled() {
		t.Fatalf("an immediate push's chunk: %+v", c)
	}
}

// A stop (the delivery's context ends) while calls are on the wire: the calls
// finish and their pushes are marked sent, so the next delivery, on this worker
// or another, pushes none of those pairs again.
func TestAStopLetsCallsOnTheWireFinish(t *testing.T) {
	sim, client := emulator(t, mpaassim.Faults{Latency: 300 * time.Millisecond})
	p := pipeline.New(pipeline.Config{MaxInFlight: 2, Attempts: 3, Call: callPolicy, Probe: callPolicy, HandBack: handBack},
		dedupe.NewMemory(time.Hour, time.Minute), ratelimit.NewMemory(100000, 0), client, pause.NewGate(nil, nil), nil, nil)
	t.Cleanup(p.Close)
	j := newJob("stop", 100) // 10 calls, 2 at a time
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // two calls are on the wire by then
	out := handle(p, ctx, delivery(t, j, 1, false))
	if out.Action != consumer.Release || out.Result != nil {
		t.Fatalf("a stopped delivery is handed back: %+v", out)
	}
	first := len(sim.Calls())
	if first == 0 || first >= 10 {
		t.Fatalf("the calls on the wire finish, no new one starts: %d calls", first)
	}
	again := handle(p, context.Background(), delivery(t, j, 2, false))
	if r := again.Result; r == nil || r.Sent != 100 || len(sim.Calls()) != 10 || sim.Stats().DuplicatePairs != 0 {
		t.Fatalf("the next delivery reports every pair sent and pushes none again: %+v, %d calls (%d before the stop), %d pairs twice",
			again.Result, len(sim.Calls()), first, sim.Stats().DuplicatePairs)
	}
}

// Events keep their share of the call slots under a saturating campaign: bulk
// calls take at most three quarters of them, so an event's call goes out while
// every bulk call is still on the wire, not after one of them ends.
func TestEventsKeepTheirCallSlotsUnderACampaign(t *testing.T) {
	const latency = time.Second
	_, client := emulator(t, mpaassim.Faults{Latency: latency})
	p := pipeline.New(pipeline.Config{MaxInFlight: 8, Attempts: 3, Call: callPolicy, Probe: callPolicy, HandBack: handBack},
		dedupe.NewMemory(time.Hour, time.Minute), ratelimit.NewMemory(100000, 0), client, pause.NewGate(nil, nil), nil, nil)
	t.Cleanup(p.Close)
	bulkDone := make(chan struct{})
	go func() {
		defer close(bulkDone)
		handle(p, context.Background(), delivery(t, newJob("campaign", 120), 1, false)) // 12 calls: more than every slot
	}()
	time.Sleep(100 * time.Millisecond) // the campaign takes every slot it may, long before a call ends
	event := newJob("event", 1)
	body, _ := event.Encode()
	start := time.Now()
	out := handle(p, context.Background(), consumer.Delivery{Lane: topology.LaneDefault, Subject: "push.jobs.orders", Data: body, Sequence: 9, Number: 1})
	took := time.Since(start)
	<-bulkDone
	if out.Result == nil || out.Result.Sent != 1 {
		t.Fatalf("the event: %+v", out)
	}
	// Its own call takes a second; waiting for a bulk call to end first would
	// add about 0.9 s more.
	t.Logf("an event under a saturating campaign took %v (a call takes %v)", took, latency)
	if took > latency+latency/2 {
		t.Fatalf("the event waited %v: the campaign took its call slot", took)
	}
}

// heldLimiter holds every Wait while held is set, until let is closed.
type heldLimiter struct {
	pipeline.Limiter
	held    atomic.Bool
	waiting atomic.Int32
	let     chan struct{}
}

func (l *heldLimiter) Wait(ctx context.Context, event bool) error {
	if l.held.Load() {
		l.waiting.Add(1)
		select {
		case <-l.let:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.Limiter.Wait(ctx, event)
}

// A delivery that JetStream gave up on while it still ran (its worker starved
// or frozen past the AckWait) does not push what the later delivery took over:
// before its next call it claims its pairs again, learns that it is superseded,
// and leaves the message to the later delivery, which answers for every target.
func TestASupersededDeliveryMakesNoCall(t *testing.T) {
	sim, client := emulator(t, mpaassim.Faults{})
	fake := clock.NewFake(start)
	lim := &heldLimiter{Limiter: ratelimit.NewMemory(100000, 0), let: make(chan struct{})}
	p := pipeline.New(pipeline.Config{Attempts: 3, Call: callPolicy, Probe: callPolicy, HandBack: handBack, Clock: fake},
		dedupe.NewMemory(time.Hour, time.Minute), lim, client, pause.NewGate(nil, nil), nil, nil)
	t.Cleanup(p.Close)
	j := newJob("starved", 25) // three calls
	lim.held.Store(true)
	first := make(chan consumer.Outcome, 1)
	go func() { first <- handle(p, context.Background(), delivery(t, j, 1, false)) }()
	for lim.waiting.Load() < 3 { // every chunk of the first delivery has its claims and waits for a slot
		time.Sleep(5 * time.Millisecond)
	}
	lim.held.Store(false)
	fake.Advance(pipeline.DefaultRecheck) // JetStream's AckWait ran out meanwhile
	second := handle(p, context.Background(), delivery(t, j, 2, false))
	if r := second.Result; second.Action != consumer.Ack || r == nil || r.Sent != 25 || r.Duplicates != 0 {
		t.Fatalf("the later delivery takes the claims over and sends every target: %+v", second)
	}
	close(lim.let)
	out := <-first
	if out.Action != consumer.Leave || out.Result != nil || out.DeadLetter != nil {
		t.Fatalf("the superseded delivery must leave the message alone: %+v", out)
	}
	if st := sim.Stats(); st.Pairs != 25 || st.DuplicatePairs != 0 || len(sim.Calls()) != 3 {
		t.Fatalf("every pair once, in three calls: %d pairs, %d twice, %d calls", st.Pairs, st.DuplicatePairs, len(sim.Calls()))
	}
}

// handle runs one delivery as the queue does: its outcome is final once
// Pending (the sent marks stored beside the result's publish) returned.
func handle(p *pipeline.Pipeline, ctx context.Context, d consumer.Delivery) consumer.Outcome {
	out := p.Handle(ctx, d)
	if out.Pending != nil {
		out.Pending()
	}
	return out
}
