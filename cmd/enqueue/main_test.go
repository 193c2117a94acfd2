package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// stack is one worker on the harness (embedded NATS, the machine's Redis, the
// emulator), with few deliveries and attempts so that failures end quickly.
type stack struct {
	url string
	sim *mpaassim.Server
}

func newStack(t *testing.T, faults mpaassim.Faults, mutate ...func(*teststack.WorkerSetup)) *stack {
	t.Helper()
	return newStackOn(t, teststack.Setup{Faults: faults}, mutate...)
}

func newStackOn(t *testing.T, setup teststack.Setup, mutate ...func(*teststack.WorkerSetup)) *stack {
	t.Helper()
	h := teststack.New(t, setup)
	h.StartWorker(append([]func(*teststack.WorkerSetup){func(w *teststack.WorkerSetup) {
		w.Config.RateLimit, w.Config.MaxDeliver, w.Config.Attempts, w.Config.RetryDelay = 1000, 2, 2, 50*time.Millisecond
	}}, mutate...)...)
	return &stack{url: h.NC.ConnectedUrl(), sim: h.Sim}
}

// enqueue runs the command in this process.
func (s *stack) enqueue(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"NATS_URL": s.url}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func jobLine(id string, targets ...string) string {
	ts := job.Targets{}
	for _, t := range targets {
		ts = append(ts, job.Target{Target: t, MsgKey: "k-" + t})
	}
	j := &job.Job{JobID: id, TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", TargetMsgkey: ts}
	b, _ := j.Encode()
	return string(b)
}

func TestPublishWaitPrintsResults(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	lines := jobLine("w-1", "u1", "u2") + "\n\n" + jobLine("w-2", "u3") + "\n" + `{"jobId":"bad","APPID":1}` + "\n"
	stdout, stderr, err := s.enqueue(t, lines, "--wait", "-")
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("a bad line must make --wait exit 1, got %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "-:4: APPID: unknown field") {
		t.Fatalf("a bad line must be reported with its line number: %s", stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	seen := map[string]bool{}
	for dec.More() {
		var r job.Result
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Status != job.StatusSucceeded {
			t.Fatalf("result %+v", r)
		}
		seen[r.JobID] = true
	}
	if !seen["w-1"] || !seen["w-2"] {
		t.Fatalf("results printed: %v", seen)
	}
	// A file with one pretty-printed job works too, and a good run exits 0.
	path := filepath.Join(t.TempDir(), "job.json")
	pretty, _ := json.MarshalIndent(json.RawMessage(jobLine("w-3", "u9")), "", "  ")
	if err := os.WriteFile(path, pretty, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := s.enqueue(t, "", "--wait", path); err != nil {
		t.Fatalf("enqueue --wait %s: %v\n%s", path, err, stderr)
	}
}

func TestStatusAndDeadLetterReplay(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	if _, _, err := s.enqueue(t, jobLine("earlier", "x1"), "--wait", "-"); err != nil {
		t.Fatal(err)
	}
	s.sim.SetFaults(mpaassim.Faults{Rate5xx: 1}) // every call fails: the job ends in the dead letters
	if _, _, err := s.enqueue(t, jobLine("doomed", "x1", "x2", "x3"), "--wait", "--subject", "push.jobs.bulk.spring", "-"); err == nil {
		t.Fatal("a failed job must make --wait exit non-zero")
	}
	out, _, err := s.enqueue(t, "", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st ops.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Lanes) != 2 || st.Lanes[1].Lane != "bulk" || st.DeadLetters != 1 || st.Results != 2 {
		t.Fatalf("status: %+v", st)
	}
	// The AccessKey the workers sign with, by its id's first characters, with its calls.
	if c := st.Credentials; len(c) != 1 || !strings.HasPrefix(teststack.KeyID, strings.TrimSuffix(c[0].Credential, "…")) ||
		c[0].Credential == teststack.KeyID || c[0].Calls == 0 || c[0].Workers != 1 {
		t.Fatalf("status credentials: %+v", st.Credentials)
	}
	if text, _, err := s.enqueue(t, "", "status"); err != nil || !strings.Contains(text, "CREDENTIAL") || !strings.Contains(text, st.Credentials[0].Credential) {
		t.Fatalf("status: %v\n%s", err, text)
	}
	out, _, err = s.enqueue(t, "", "dlq", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page ops.Page
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Letters) != 1 || page.Total != 1 || page.Next != 0 {
		t.Fatalf("dlq list: %v %s", err, out)
	}
	d := page.Letters[0]
	// x1 was a duplicate of the earlier job: only x2 and x3 failed.
	if d.JobID != "doomed" || d.Reason != "failed" || d.Targets != 2 || d.Subject != "push.jobs.bulk.spring" || d.Deliveries != 2 ||
		d.Campaign != "spring" || !d.Replayable {
		t.Fatalf("dead letter: %+v", d)
	}

	s.sim.SetFaults(mpaassim.Faults{}) // mPaaS is well again
	out, stderr, err := s.enqueue(t, "", "dlq", "replay", "doomed")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "replayed doomed as doomed.replay") || !strings.Contains(out, "2 targets to push.jobs.bulk.spring") {
		t.Fatalf("replay said: %s", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.sim.Delivered("a", "w", "x3", "k-x3") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed targets were never delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.sim.Delivered("a", "w", "x1", "k-x1"); n != 1 {
		t.Fatalf("x1 delivered %d times: a replay must send only the failed targets", n)
	}
	out, _, _ = s.enqueue(t, "", "dlq", "list", "--json")
	if !strings.Contains(out, `"letters": []`) || !strings.Contains(out, `"total": 0`) {
		t.Fatalf("a replayed dead letter must leave the stream: %s", out)
	}
}

// A dead letter of a targetMsgs job holds only its failed targets, each with its
// own values, and a replay sends them with those values.
func TestDeadLetterOfTargetMsgsJobReplaysWithItsValues(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	if _, _, err := s.enqueue(t, jobLine("earlier", "x1"), "--wait", "-"); err != nil {
		t.Fatal(err)
	}
	s.sim.SetFaults(mpaassim.Faults{Rate5xx: 1})
	j := &job.Job{JobID: "personal", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
	for _, name := range []string{"x1", "x2", "x3"} {
		j.TargetMsgs = append(j.TargetMsgs, job.TargetMsg{Target: name, MsgKey: "k-" + name,
			TemplateKeyValue: job.ObjectOf([]string{"name"}, []string{"亲爱的 " + name}), ExtendedParams: job.Object(`{"id":"` + name + `"}`)})
	}
	body, _ := j.Encode()
	if _, _, err := s.enqueue(t, string(body), "--wait", "--subject", "push.jobs.bulk.personal", "-"); err == nil {
		t.Fatal("a failed job must make --wait exit non-zero")
	}
	out, _, err := s.enqueue(t, "", "dlq", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page ops.Page
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Letters) != 1 || page.Letters[0].Targets != 2 {
		t.Fatalf("dlq list: %v %s", err, out)
	}
	s.sim.SetFaults(mpaassim.Faults{})
	if out, stderr, err := s.enqueue(t, "", "dlq", "replay", "personal"); err != nil || !strings.Contains(out, "2 targets") {
		t.Fatalf("replay: %v %s %s", err, out, stderr)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.sim.Delivered("a", "w", "x3", "k-x3") == 0 || s.sim.Delivered("a", "w", "x2", "k-x2") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed targets were never delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range s.sim.Deliveries(1) {
		switch d.Target {
		case "x1":
			if d.Count != 1 || d.API != job.APITemplate {
				t.Fatalf("x1: %+v: a replay must send only the failed targets", d)
			}
		case "x2", "x3":
			if d.API != job.APIMultiple || d.TemplateKeyValue != `{"name":"亲爱的 `+d.Target+`"}` || d.ExtendedParams != `{"id":"`+d.Target+`"}` {
				t.Fatalf("%s replayed as %+v: its values were lost", d.Target, d)
			}
		}
	}
}

// Each subcommand has its own flags: a flag of another one is an error with exit
// status 2, said before anything connects.
func TestFlagsBelongToTheirSubcommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"status", "--campaign", "x"},
		{"dlq", "list", "--all"},
		{"dlq", "replay", "--json", "x"},
		{"dlq", "delete", "--all", "1"},
		{"dlq", "purge", "--before", "1", "--yes"},
		{"publish", "--campaign", "x", "-"},
		{"load", "--subject", "push.jobs.x", "--campaign", "c", "f.csv"},
	} {
		var out, errb bytes.Buffer
		env := map[string]string{"NATS_URL": "nats://127.0.0.1:1"} // nothing listens: the flags must fail first
		err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
		if ee, ok := err.(exitError); !ok || ee.code != 2 {
			t.Fatalf("%v: want exit status 2, got %v", args, err)
		}
		if !strings.Contains(errb.String(), "flag provided but not defined") {
			t.Fatalf("%v: stderr does not say which flag is wrong:\n%s", args, errb.String())
		}
	}
}
