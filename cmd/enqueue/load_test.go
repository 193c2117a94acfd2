package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
)

var campaignFlags = []string{"--app-id", "a", "--workspace-id", "w", "--template", "spring", "--delivery-type", "3", "--expired-seconds", "3600"}

func writeCSV(t *testing.T, rows int, personal bool, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("target,name,money\n")
	for i := range rows {
		if personal {
			fmt.Fprintf(&b, "user%d,name-%d,%d\n", i, i, i)
		} else {
			fmt.Fprintf(&b, "user%d,张三,200\n", i)
		}
	}
	b.WriteString(extra)
	path := filepath.Join(t.TempDir(), "campaign.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadWaitAndRerun(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	path := writeCSV(t, 25, false, "user22,张三,200\n") // user22 again in its open group: rejected, the rest loads
	args := append([]string{"load", "--wait", "--campaign", "c1", "--group-size", "10"}, campaignFlags...)
	out, stderr, err := s.enqueue(t, "", append(args, path)...)
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("a rejected row must exit 1: %v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"26 rows → 3 jobs, 25 targets published to push.jobs.bulk.c1", "1 rows rejected",
		"stored: 3 new jobs, 0 already enqueued", "campaign results: 3 jobs, 25 targets: 25 sent, 0 duplicates, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	// Run it again: nothing new is enqueued, and the totals are the same.
	out, _, _ = s.enqueue(t, "", append(args, path)...)
	if !strings.Contains(out, "stored: 0 new jobs, 3 already enqueued") || !strings.Contains(out, "25 sent, 0 duplicates, 0 failed") {
		t.Fatalf("a rerun must enqueue nothing new:\n%s", out)
	}
	for i := range 25 {
		if n := s.sim.Delivered("a", "w", fmt.Sprintf("user%d", i), ""); n != 0 {
			t.Fatal("msgKey must be derived, never empty")
		}
	}
	if st := s.sim.Stats(); st.Pairs != 25 || st.DuplicatePairs != 0 {
		t.Fatalf("emulator: %+v", st)
	}
}

func TestLoadFailedTargetsByCode(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Rate5xx: 1})
	path := writeCSV(t, 4, true, "")
	args := append([]string{"load", "--wait", "--campaign", "c2"}, campaignFlags...)
	out, _, err := s.enqueue(t, "", append(args, path)...)
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("failed targets must exit 1: %v\n%s", err, out)
	}
	if !strings.Contains(out, "4 targets: 0 sent, 0 duplicates, 4 failed") ||
		!(strings.Contains(out, "failed with ServiceUnavailable") || strings.Contains(out, "failed with InternalError")) {
		t.Fatalf("totals by code:\n%s", out)
	}
}

// The job queue holds 32 KiB: the loader waits while the worker drains it and
// retries with the same ids; every target arrives once.
func TestLoadIntoAFullQueue(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) {
		w.Config.JobsMaxBytes = 32 << 10
		w.Config.RateLimit = 200
	})
	path := writeCSV(t, 400, true, "") // 40 personal jobs of 10 targets, ~1 KiB each: 40 KiB
	args := append([]string{"load", "--wait", "--timeout", "60s", "--campaign", "c3", "--group-size", "10"}, campaignFlags...)
	out, stderr, err := s.enqueue(t, "", append(args, path)...)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(out, "stored: 40 new jobs") || strings.Contains(out, "(0 while the job queue was full)") {
		t.Fatalf("the loader must have waited on the full queue:\n%s", out)
	}
	if !strings.Contains(out, "400 targets: 400 sent, 0 duplicates, 0 failed") {
		t.Fatalf("totals:\n%s", out)
	}
	if st := s.sim.Stats(); st.Pairs != 400 || st.DuplicatePairs != 0 {
		t.Fatalf("emulator: %+v", st)
	}
}

// auto loads personal rows as PushMultiple jobs: 250 rows are one job and three
// calls, where PushTemplate needs a call per distinct set of values.
func TestLoadAPIChoice(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	path := writeCSV(t, 250, true, "")
	out, stderr, err := s.enqueue(t, "", append(append([]string{"load", "--wait", "--campaign", "auto1"}, campaignFlags...), path)...)
	if err != nil || !strings.Contains(out, "250 rows → 1 jobs") || !strings.Contains(out, "250 targets: 250 sent") ||
		!strings.Contains(stderr, "jobs: PushMultiple, up to 1000 targets each (auto)") {
		t.Fatalf("auto: %v\n%s\n%s", err, out, stderr)
	}
	if st := s.sim.Stats().ByAPI["PushMultiple"]; st.Calls != 3 || st.Deliveries != 250 {
		t.Fatalf("want 3 PushMultiple calls for 250 personal rows: %+v", st)
	}
	for _, d := range s.sim.Deliveries(1) {
		if d.Target == "user7" && d.TemplateKeyValue != `{"name":"name-7","money":"7"}` {
			t.Fatalf("user7 arrived with %s", d.TemplateKeyValue)
		}
	}
	path = writeCSV(t, 30, true, "")
	out, stderr, err = s.enqueue(t, "", append(append([]string{"load", "--wait", "--campaign", "tmpl1", "--api", "template"}, campaignFlags...), path)...)
	if err != nil || !strings.Contains(out, "30 targets: 30 sent") || !strings.Contains(stderr, "jobs: PushTemplate") {
		t.Fatalf("template: %v\n%s\n%s", err, out, stderr)
	}
	if st := s.sim.Stats().ByAPI["PushTemplate"]; st.Calls != 30 {
		t.Fatalf("30 personal rows with PushTemplate are 30 calls: %+v", st)
	}
	// Settings that need PushTemplate: auto takes it and says why; multiple is an error.
	settings := filepath.Join(t.TempDir(), "sms.json")
	if err := os.WriteFile(settings, []byte(`{"smsStrategy":1,"smsSignName":"s","smsTemplateCode":"c","smsTemplateParam":{"a":"1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = s.enqueue(t, "", append(append([]string{"load", "--dry-run", "--campaign", "sms1", "--settings", settings}, campaignFlags...), path)...)
	if err != nil || !strings.Contains(stderr, "jobs: PushTemplate, up to 1000 targets each (auto: smsStrategy is not 0") {
		t.Fatalf("auto with SMS: %v\n%s\n%s", err, out, stderr)
	}
	_, _, err = s.enqueue(t, "", append(append([]string{"load", "--dry-run", "--campaign", "sms1", "--api", "multiple", "--settings", settings}, campaignFlags...), path)...)
	if err == nil || !strings.Contains(err.Error(), "--api multiple: the campaign settings need PushTemplate (smsStrategy") {
		t.Fatalf("multiple with SMS must be refused: %v", err)
	}
	_, _, err = s.enqueue(t, "", append(append([]string{"load", "--dry-run", "--campaign", "x", "--api", "both"}, campaignFlags...), path)...)
	if ee, ok := err.(exitError); !ok || ee.code != 2 {
		t.Fatalf("an unknown --api is a usage error (exit 2): %v", err)
	}
}

func TestLoadDryRunNeedsNoServer(t *testing.T) {
	t.Parallel()
	path := writeCSV(t, 3, true, ",x,1\n")
	var out, errb strings.Builder
	err := run(t.Context(), append(append([]string{"load", "--dry-run", "--campaign", "c4"}, campaignFlags...), path),
		func(k string) string { return map[string]string{"NATS_URL": "nats://127.0.0.1:1"}[k] }, nil, &out, &errb)
	if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(out.String(), "3 targets validated (dry run") {
		t.Fatalf("dry run: %v\n%s%s", err, out.String(), errb.String())
	}
	err = run(t.Context(), []string{"load", "--dry-run", "--campaign", "c4", path},
		func(string) string { return "" }, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "campaign settings: taskName") && !strings.Contains(err.Error(), "appId") {
		t.Fatalf("missing campaign settings must be named: %v", err)
	}
}
