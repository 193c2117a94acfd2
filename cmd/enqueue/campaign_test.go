package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// publishCampaign puts jobs of size targets on push.jobs.bulk.<name>, the app id
// being the campaign's name, so that the emulator's calls tell campaigns apart.
func publishCampaign(t *testing.T, url, name string, jobs, size int) []string {
	t.Helper()
	return publishCampaignFrom(t, url, name, 0, jobs, size)
}

// publishCampaignFrom is publishCampaign with job numbers from `from` on.
func publishCampaignFrom(t *testing.T, url, name string, from, jobs, size int) []string {
	t.Helper()
	js := connectJS(t, url)
	var ids []string
	for i := from; i < from+jobs; i++ {
		j := &job.Job{JobID: fmt.Sprintf("%s.%d", name, i), TaskName: "t", AppID: name, WorkspaceID: "w", DeliveryType: 3,
			ExpiredSeconds: 60, TemplateName: "n", ReplyTo: "push.results." + name + "." + fmt.Sprint(i)}
		for k := range size {
			j.TargetMsgs = append(j.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("%s-%d-%d", name, i, k), MsgKey: "k",
				TemplateKeyValue: job.Object(`{"n":"` + fmt.Sprint(k) + `"}`)})
		}
		body, _ := j.Encode()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "push.jobs.bulk." + name, Data: body,
			Header: nats.Header{jetstream.MsgIDHeader: []string{j.JobID}}}); err != nil {
			t.Fatal(err)
		}
		cancel()
		ids = append(ids, j.JobID)
	}
	return ids
}

// connectJS connects to url for the test's length.
func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// lastCall is when the emulator last received a call of app.
func lastCall(sim *mpaassim.Server, app string) time.Time {
	var last time.Time
	for _, c := range sim.Calls() {
		if c.Params["AppId"] == app && c.At.After(last) {
			last = c.At
		}
	}
	return last
}

func callsOf(sim *mpaassim.Server, app string) int {
	n := 0
	for _, c := range sim.Calls() {
		if c.Params["AppId"] == app {
			n++
		}
	}
	return n
}

// results reads every result of the campaign (loader convention: push.results.<name>.>).
func results(t *testing.T, url, name string, want int, timeout time.Duration) map[string][]job.Result {
	t.Helper()
	js := connectJS(t, url)
	c, err := js.OrderedConsumer(context.Background(), "PUSH_RESULTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"push.results." + name + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]job.Result{}
	deadline := time.Now().Add(timeout)
	for len(out) < want && time.Now().Before(deadline) {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		var r job.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.JobID] = append(out[r.JobID], r)
	}
	return out
}

func TestCampaignPauseResume(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) { w.Config.RateLimit = 10 })
	ids := publishCampaign(t, s.url, "spring", 10, 300) // 30 calls of 100 at 10/s shared with the other campaign: the pause comes mid-run
	other := publishCampaign(t, s.url, "other", 10, 100)
	for callsOf(s.sim, "spring") < 5 {
		time.Sleep(20 * time.Millisecond)
	}
	out, stderr, err := s.enqueue(t, "", "campaign", "pause", "spring", "--reason", "wrong template")
	if err != nil || !strings.Contains(out, "campaign spring paused") {
		t.Fatalf("pause: %v %s %s", err, out, stderr)
	}
	paused := time.Now()
	if r := results(t, s.url, "other", len(other), 20*time.Second); len(r) != len(other) {
		t.Fatalf("the other campaign must go on while spring is paused: %d of %d results", len(r), len(other))
	}
	if last := lastCall(s.sim, "spring"); last.After(paused.Add(time.Second)) {
		t.Fatalf("a call of the paused campaign started %s after the pause", last.Sub(paused))
	}
	out, _, err = s.enqueue(t, "", "campaign", "status", "spring", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st ops.Progress
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v %s", err, out)
	}
	if st.State.State != "paused" || st.State.Reason != "wrong template" || st.Parked == 0 || st.Parked+st.Done != len(ids) || st.Queued != 0 || st.InFlight != 0 {
		t.Fatalf("while paused, parked + done must be every job: %+v", st)
	}
	if out, stderr, err = s.enqueue(t, "", "campaign", "resume", "spring"); err != nil || !strings.Contains(out, fmt.Sprintf("%d parked jobs back", st.Parked)) {
		t.Fatalf("resume: %v %s %s", err, out, stderr)
	}
	got := results(t, s.url, "spring", len(ids), 30*time.Second)
	if len(got) != len(ids) {
		t.Fatalf("%d of %d jobs have a result", len(got), len(ids))
	}
	for id, rs := range got {
		if r := rs[0]; len(rs) != 1 || r.Status != job.StatusSucceeded || r.Sent != 300 || r.Targets != r.Sent+r.Duplicates+r.Failed || r.Campaign != "spring" {
			t.Fatalf("%s: want one whole result, got %d: %+v", id, len(rs), rs[0])
		}
	}
	for _, d := range s.sim.Deliveries(1) {
		if d.Count != 1 {
			t.Fatalf("%s pushed %d times", d.Target, d.Count)
		}
	}
	if st := s.sim.Stats(); st.Pairs != 10*300+10*100 {
		t.Fatalf("every target must be pushed: %d pairs", st.Pairs)
	}
}

func TestCampaignCancel(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) { w.Config.RateLimit = 10 })
	ids := publishCampaign(t, s.url, "autumn", 10, 300)
	for callsOf(s.sim, "autumn") < 5 {
		time.Sleep(20 * time.Millisecond)
	}
	if out, stderr, err := s.enqueue(t, "", "campaign", "cancel", "autumn", "--reason", "wrong audience"); err != nil || !strings.Contains(out, "campaign autumn canceled") {
		t.Fatalf("cancel: %v %s %s", err, out, stderr)
	}
	canceled := time.Now()
	got := results(t, s.url, "autumn", len(ids), 20*time.Second)
	if len(got) != len(ids) {
		t.Fatalf("every job of a canceled campaign ends with a result: %d of %d", len(got), len(ids))
	}
	if last := lastCall(s.sim, "autumn"); last.After(canceled.Add(time.Second)) {
		t.Fatalf("a call of the canceled campaign started %s after the cancel", last.Sub(canceled))
	}
	sent, nCanceled := 0, 0
	for id, rs := range got {
		r := rs[0]
		if len(rs) != 1 || r.Targets != r.Sent+r.Duplicates+r.Failed || r.Targets != 300 {
			t.Fatalf("%s: want one whole result: %+v", id, r)
		}
		if r.Status == job.StatusCanceled {
			nCanceled++
			for _, c := range r.Chunks {
				if c.Status == job.ChunkFailed && c.Error != "campaign canceled" {
					t.Fatalf("%s: an unsent target of a canceled job fails with 'campaign canceled': %+v", id, c)
				}
			}
		}
		sent += r.Sent
	}
	if nCanceled == 0 || sent != s.sim.Stats().Pairs {
		t.Fatalf("%d canceled jobs; %d sent by the results, %d pushed", nCanceled, sent, s.sim.Stats().Pairs)
	}
	out, _, err := s.enqueue(t, "", "campaign", "status", "autumn", "--json")
	var st ops.Progress
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.State.State != "canceled" || st.Totals.Canceled != nCanceled || st.Done != len(ids) ||
		st.Totals.FailedBy["campaign canceled"] != st.Totals.Failed {
		t.Fatalf("status after cancel: %v %+v", err, st)
	}
	// A canceled campaign stays canceled: pausing or resuming it is refused, exit 1.
	for _, verb := range []string{"pause", "resume"} {
		_, stderr, err := s.enqueue(t, "", "campaign", verb, "autumn")
		if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(stderr, "campaign autumn: campaign canceled: it stays so") {
			t.Fatalf("%s of a canceled campaign: %v %s", verb, err, stderr)
		}
	}
	if out, _, err := s.enqueue(t, "", "campaign", "delete", "autumn"); err != nil || !strings.Contains(out, "state removed") {
		t.Fatalf("delete: %v %s", err, out)
	}
}

// Bad input is a clear error naming what is wrong, exit status 2.
func TestCampaignBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"campaign", "pause", "a.b"}, `campaign name "a.b"`},
		{[]string{"campaign", "pace", "spring", "-5"}, "TARGETS-PER-SECOND is a number ≥ 0"},
		{[]string{"campaign", "pace", "spring", "fast"}, "TARGETS-PER-SECOND is a number ≥ 0"},
		{[]string{"campaign", "pace", "spring"}, "want NAME TARGETS-PER-SECOND"},
		{[]string{"campaign", "halt", "spring"}, "Usage"},
	} {
		_, stderr, err := s.enqueue(t, "", c.args...)
		if ee, ok := err.(exitError); !ok || ee.code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: want exit 2 saying %q, got %v %s", c.args, c.want, err, stderr)
		}
	}
}

// A campaign that never ran is named and refused with exit 1, whatever the verb;
// list shows every campaign that ran, with its last change.
func TestCampaignUnknownAndListed(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	for _, args := range [][]string{{"status", "nobody"}, {"status", "nobody", "--watch"}, {"pause", "nobody"}, {"resume", "nobody"},
		{"cancel", "nobody"}, {"pace", "nobody", "5"}} {
		_, stderr, err := s.enqueue(t, "", append([]string{"campaign"}, args...)...)
		if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(stderr, `campaign "nobody": unknown campaign`) {
			t.Errorf("campaign %v: want exit 1 naming it, got %v %q", args, err, stderr)
		}
	}
	// --create sets the state of a campaign before its first job, to pace it before it is loaded.
	if _, stderr, err := s.enqueue(t, "", "campaign", "pace", "early", "100", "--create"); err != nil {
		t.Fatalf("pace --create: %v %s", err, stderr)
	}
	if out, _, err := s.enqueue(t, "", "campaign", "status", "early"); err != nil || !strings.Contains(out, "paced at 100 targets/s") {
		t.Fatalf("status of a campaign paced before it ran: %v %s", err, out)
	}
	ids := publishCampaign(t, s.url, "listed", 3, 20)
	if got := results(t, s.url, "listed", len(ids), 20*time.Second); len(got) != len(ids) {
		t.Fatalf("%d of %d results", len(got), len(ids))
	}
	if _, stderr, err := s.enqueue(t, "", "campaign", "pace", "listed", "50", "--actor", "alice"); err != nil {
		t.Fatal(err, stderr)
	}
	out, _, err := s.enqueue(t, "", "campaign", "list")
	if err != nil || !strings.Contains(out, "listed") || !strings.Contains(out, "3/3") || !strings.Contains(out, "by alice") {
		t.Fatalf("list must show the campaign that ran, its jobs and its last change: %v\n%s", err, out)
	}
	text, _, err := s.enqueue(t, "", "campaign", "status", "listed")
	if err != nil || !strings.Contains(text, "changes (newest first)") || !strings.Contains(text, "by alice") {
		t.Fatalf("status shows the last changes: %v\n%s", err, text)
	}
}

// A value written by hand that a worker cannot read leaves the campaign in its
// last valid state, and status says so.
func TestCampaignUnreadableValue(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) { w.Config.RateLimit = 5 })
	publishCampaign(t, s.url, "hand", 5, 300)
	for callsOf(s.sim, "hand") < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	if _, stderr, err := s.enqueue(t, "", "campaign", "pause", "hand"); err != nil {
		t.Fatal(err, stderr)
	}
	kv, err := connectJS(t, s.url).KeyValue(context.Background(), "PUSH_CAMPAIGNS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "hand", []byte(`{"state":"stopped"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	before := callsOf(s.sim, "hand")
	publishCampaignFrom(t, s.url, "hand", 5, 1, 100) // one more job: parked too, since the workers keep "paused"
	var st ops.Progress
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, _, err := s.enqueue(t, "", "campaign", "status", "hand", "--json")
		if err != nil || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status: %v %s", err, out)
		}
		if st.Parked+st.Done == 6 || time.Now().After(deadline) {
			break
		}
	}
	if st.State.State != "paused" || !strings.Contains(st.Invalid, `state \"stopped\"`) && !strings.Contains(st.Invalid, `state "stopped"`) {
		t.Fatalf("status must show the state the workers keep and why the value was not taken: %+v", st)
	}
	if n := callsOf(s.sim, "hand"); n != before || st.Parked+st.Done != 6 {
		t.Fatalf("the campaign must stay paused: %d calls, %d before; %+v", n, before, st)
	}
	text, _, _ := s.enqueue(t, "", "campaign", "status", "hand")
	if !strings.Contains(text, "warning:") || !strings.Contains(text, "paused") {
		t.Fatalf("status text: %s", text)
	}
}
