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
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// emulated is what the emulator counts of pushed pairs with its default shares.
func emulated(pushed int) job.Figures {
	arrived := int64(float64(pushed) * mpaassim.DefaultArrivalShare)
	opened := int64(float64(arrived) * mpaassim.DefaultOpenShare)
	return job.Figures{Pushed: int64(pushed), Succeeded: int64(pushed), Arrived: arrived, Opened: opened, Ignored: arrived - opened}
}

// reportCampaign publishes a campaign of PushMultiple jobs (publishCampaign)
// and one PushTemplate job of template targets, waits for every result and for
// the campaign to be finished, and returns the figures the emulator will count
// of it: each push task's, summed, and the PushTemplate window's.
func reportCampaign(t *testing.T, s *stack, name string, jobs, size, template int) job.Figures {
	t.Helper()
	publishCampaign(t, s.url, name, jobs, size)
	tj := &job.Job{JobID: name + ".t", TaskName: "t", AppID: name, WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", ReplyTo: "push.results." + name + ".t"}
	for i := range template {
		tj.TargetMsgkey = append(tj.TargetMsgkey, job.Target{Target: fmt.Sprintf("%s-t-%d", name, i), MsgKey: "k"})
	}
	body, _ := tj.Encode()
	js := connectJS(t, s.url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "push.jobs.bulk." + name, Data: body,
		Header: nats.Header{jetstream.MsgIDHeader: []string{tj.JobID}}}); err != nil {
		t.Fatal(err)
	}
	var want job.Figures
	got := results(t, s.url, name, jobs+1, 60*time.Second)
	if len(got) != jobs+1 {
		t.Fatalf("%d of %d jobs have a result", len(got), jobs+1)
	}
	for _, rs := range got {
		r := rs[len(rs)-1]
		if r.Status != job.StatusSucceeded {
			t.Fatalf("%s: %+v", r.JobID, r)
		}
		if r.API == job.APIMultiple {
			for _, c := range r.Chunks {
				want.Add(emulated(len(c.TargetMsgkey)))
			}
		}
	}
	want.Add(emulated(template))
	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	o, err := ops.New(nc, topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if p, err := o.Progress(context.Background(), name); err == nil && p.Finished() && p.Done == jobs+1 {
			return want
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s not finished", name)
		}
	}
}

// enqueue campaign report: "not ready yet" while mPaaS (the emulator) has no
// figures, then the figures summed over the campaign's push tasks and its
// PushTemplate window, with the time fetched; a finished campaign's figures
// are kept by the workers and answered from there; --json says the same.
func TestCampaignReport(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	s.sim.SetAnalysis(mpaassim.Analysis{Delay: time.Hour})
	want := reportCampaign(t, s, "rep", 3, 150, 20) // 6 push tasks (100 + 50 a job), 20 PushTemplate pairs

	out, _, err := s.enqueue(t, "", "campaign", "report", "rep")
	t.Logf("before mPaaS counts:\n%s", out)
	if err != nil || !strings.Contains(out, "campaign rep: delivery report fetched "+time.Now().UTC().Format("2006-01-02")) ||
		!strings.Contains(out, "not ready yet") || !strings.Contains(out, "push tasks: 0 of 6 counted so far") ||
		!strings.Contains(out, "TEMPLATE pushes of app rep (workspace w)") || strings.Contains(out, "kept") {
		t.Fatalf("report before the figures: %v\n%s", err, out)
	}

	s.sim.SetAnalysis(mpaassim.Analysis{})
	out, _, err = s.enqueue(t, "", "campaign", "report", "rep")
	t.Logf("once mPaaS has counted:\n%s", out)
	line := fmt.Sprintf("pushed %d, arrived %d (%.1f%%), opened %d (%.1f%%)", want.Pushed, want.Arrived, 100*want.ArrivalRate(), want.Opened, 100*want.OpenRate())
	if err != nil || !strings.Contains(out, "\n  "+line+"\n") || strings.Contains(out, "not ready yet") ||
		!strings.Contains(out, "push tasks: 6 of 6 counted so far, summed") || strings.Contains(out, "kept") {
		t.Fatalf("report with figures: %v\n%s\nwant %q", err, out, line)
	}

	// Kept: mPaaS is no longer asked (its answers would be errors now).
	calls := s.sim.Stats().Calls
	s.sim.SetFaults(mpaassim.Faults{RefuseSignatures: true})
	out, _, err = s.enqueue(t, "", "campaign", "report", "rep", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep ops.DeliveryReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Cached || !rep.Ready || !rep.Finished || rep.Total != want || rep.TaskIDs != 6 || rep.TasksCounted != 6 ||
		len(rep.Windows) != 1 || rep.Windows[0].Type != "TEMPLATE" || rep.Windows[0].Figures != emulated(20) ||
		time.Since(rep.FetchedAt) > time.Minute {
		t.Fatalf("kept report: %+v, want total %+v", rep, want)
	}
	if n := s.sim.Stats().Calls; n != calls {
		t.Fatalf("a kept report made %d calls", n-calls)
	}

	if _, errOut, err := s.enqueue(t, "", "campaign", "report", "nope"); err == nil || !strings.Contains(errOut, "unknown campaign") {
		t.Fatalf("an unknown campaign: %v %q", err, errOut)
	}
	if _, _, err := s.enqueue(t, "", "campaign", "report"); err == nil {
		t.Fatal("no name: want a usage error")
	}
}
