package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/topology"
)

// wideRows is a campaign file of rows whose personal value is about width bytes.
func wideRows(from, to, width int) string {
	var b strings.Builder
	b.WriteString("target,name\n")
	pad := strings.Repeat("x", width)
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "user%d,%d-%s\n", i, i, pad)
	}
	return b.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bigJobs gives the worker the production's fetch wait and deliveries: a job of
// 1 MiB takes long to arrive under the race detector, and a fetch that ends
// first loses that delivery until its AckWait (the test stacks' 500 ms fetch and
// 2 deliveries could then strand it).
func bigJobs(w *teststack.WorkerSetup) {
	tune := w.Options.Tune
	w.Options.Tune = func(p *worker.Parts) {
		tune(p)
		p.Consumer.FetchWait = consumer.DefaultFetchWait
	}
	w.Config.MaxDeliver = consumer.DefaultMaxDeliver
	wideCalls(w)
}

// wideCalls gives the worker the production's mPaaS timeout. A PushMultiple
// call of 100 targets with 1.2 KB values is a 120 KB form that the in-process
// emulator parses and verifies under the race detector: with every package's
// tests running at once a call took over the test stacks' 2 s, timed out after
// the emulator had taken it, and was retried, which pushes its pairs twice (the
// guarantee's timed-out call: 1,100 pairs in one run of the whole suite).
func wideCalls(w *teststack.WorkerSetup) { w.Config.MPaaSTimeout = push.DefaultTimeout }

var storedRE = regexp.MustCompile(`stored: (\d+) new jobs, (\d+) already enqueued`)

func stored(t *testing.T, out string) (fresh, already int) {
	t.Helper()
	m := storedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no stored line:\n%s", out)
	}
	fresh, _ = strconv.Atoi(m[1])
	already, _ = strconv.Atoi(m[2])
	return fresh, already
}

// 4,000 rows of 1.2 KB values make 1,000-row jobs of 1.2 MB, over the server's
// 1 MiB: the loader cuts them by bytes instead, and every target is pushed once.
// A row that no job can carry is a rejected row, not a failed load.
func TestLoadWideRowsSplitsByBytes(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{}, bigJobs)
	body := wideRows(0, 4000, 1200) + "huge," + strings.Repeat("y", 1100<<10) + "\n" // line 4002
	path := writeFile(t, "wide.csv", body)
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	args := append([]string{"load", "--wait", "--campaign", "wide", "--api", "multiple", "--rejects", rejects}, campaignFlags...)
	out, stderr, err := s.enqueue(t, "", append(args, path)...)
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("the rejected row must exit 1, the rest load: %v\n%s\n%s", err, out, stderr)
	}
	fresh, already := stored(t, out)
	if fresh < 5 || already != 0 || !strings.Contains(out, "4000 targets published") ||
		!strings.Contains(out, "4000 targets: 4000 sent, 0 duplicates, 0 failed") || !strings.Contains(out, "1 rows rejected") {
		t.Fatalf("want 4,000 targets in 5 jobs or more, all sent:\n%s\n%s", out, stderr)
	}
	if !strings.Contains(stderr, "and 1047552 bytes (max_payload 1048576 less 1024 for headers)") {
		t.Fatalf("the limit must be said:\n%s", stderr)
	}
	rej, _ := os.ReadFile(rejects)
	if !strings.Contains(string(rej), "4002,\"the row makes a job of") || len(rej) > 1024 {
		t.Fatalf("rejects (the row's line, none of its value):\n%.2000s", rej)
	}
	if st := s.sim.Stats(); st.Pairs != 4000 || st.DuplicatePairs != 0 || st.ByAPI["PushMultiple"].Deliveries != 4000 {
		t.Fatalf("emulator: %+v", st)
	}
	// A rerun stores nothing new.
	out, _, _ = s.enqueue(t, "", append(args, path)...)
	if f, a := stored(t, out); f != 0 || a != fresh {
		t.Fatalf("a rerun must store nothing new (%d, %d):\n%s", f, a, out)
	}
}

// A campaign's second file is its own jobs, even where its rows stand on the
// same lines as the first file's; rerunning either stores nothing new.
func TestLoadSecondFileOfACampaign(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	part1 := writeFile(t, "part1.csv", wideRows(0, 100, 10))
	part2 := writeFile(t, "part2.csv", wideRows(100, 200, 10))
	for _, api := range []string{"multiple", "template"} {
		campaign := "parts-" + api
		args := append([]string{"load", "--wait", "--campaign", campaign, "--api", api}, campaignFlags...)
		out1, _, err := s.enqueue(t, "", append(args, part1)...)
		if err != nil {
			t.Fatalf("%s part1: %v\n%s", api, err, out1)
		}
		f1, _ := stored(t, out1)
		out2, _, err := s.enqueue(t, "", append(args, part2)...)
		if err != nil {
			t.Fatalf("%s part2: %v\n%s", api, err, out2)
		}
		if f, a := stored(t, out2); f != f1 || a != 0 || !strings.Contains(out2, "100 targets: 100 sent") {
			t.Fatalf("%s: part2 must store its own %d jobs:\n%s", api, f1, out2)
		}
		out2, _, _ = s.enqueue(t, "", append(args, part2)...)
		if f, a := stored(t, out2); f != 0 || a != f1 {
			t.Fatalf("%s: part2 again must store nothing:\n%s", api, out2)
		}
	}
	if st := s.sim.Stats(); st.Pairs != 400 || st.DuplicatePairs != 0 {
		t.Fatalf("emulator: %+v", st)
	}
}

// A load stopped half-way, then run again, stores the jobs it lacked and no
// others, and every target is pushed once.
func TestLoadInterruptedThenRerun(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{}, wideCalls)
	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	file := wideRows(0, 2000, 1200)
	lines := strings.SplitAfter(file, "\n")
	args := append([]string{"load", "--campaign", "halt", "--api", "multiple", "--group-size", "100"}, campaignFlags...)

	// The first run reads the header and 1,000 rows (10 jobs) from a pipe, and is
	// canceled once the stream has stored them.
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out, errb strings.Builder
	done := make(chan error, 1)
	go func() {
		env := map[string]string{"NATS_URL": s.url}
		done <- run(ctx, append(args, "-"), func(k string) string { return env[k] }, pr, &out, &errb)
	}()
	if _, err := io.WriteString(pw, strings.Join(lines[:1001], "")); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := js.Stream(ctx, topology.Default().JobsStream)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := st.Info(ctx); err == nil && info.State.LastSeq >= 10 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("10 jobs never stored:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	pw.CloseWithError(context.Canceled)
	if err := <-done; err == nil {
		t.Fatalf("a canceled load must fail:\n%s", out.String())
	}
	if f, a := stored(t, out.String()); f != 10 || a != 0 || !strings.Contains(out.String(), "→ 10 jobs, 1000 targets published") {
		t.Fatalf("the first run stored 10 jobs:\n%s\n%s", out.String(), errb.String())
	}

	// The rerun of the whole file stores the other 10 and follows all 20.
	path := writeFile(t, "halt.csv", file)
	o, stderr, err := s.enqueue(t, "", append(append(args, "--wait"), path)...)
	if err != nil {
		t.Fatalf("rerun: %v\n%s\n%s", err, o, stderr)
	}
	if f, a := stored(t, o); f != 10 || a != 10 || !strings.Contains(o, "2000 targets: 2000 sent, 0 duplicates, 0 failed") {
		t.Fatalf("the rerun stores the 10 missing jobs only:\n%s", o)
	}
	if st := s.sim.Stats(); st.Pairs != 2000 || st.DuplicatePairs != 0 {
		t.Fatalf("emulator: %+v", st)
	}
}

// Whole jobs of a .jsonl file carry their own settings and ids: the load needs
// no campaign settings, and --wait finds their results wherever their ids put
// them.
func TestLoadJSONLinesOfWholeJobsWaits(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	path := writeFile(t, "jobs.jsonl", jobLine("own-1", "j1")+"\n"+jobLine("own-2", "j2")+"\n")
	out, stderr, err := s.enqueue(t, "", "load", "--campaign", "whole", "--wait", "--timeout", "30s", path)
	if err != nil || !strings.Contains(out, "campaign results: 2 jobs") || !strings.Contains(out, "0 failed") {
		t.Fatalf("load of whole jobs with --wait: %v\n%s\n%s", err, out, stderr)
	}
}
