package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/app"
	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

// stack is an embedded NATS server with one worker on the machine's Redis and the emulator.
type stack struct {
	url string
	sim *mpaassim.Server
}

func newStack(t *testing.T, faults mpaassim.Faults, mutate ...func(*app.Options)) *stack {
	t.Helper()
	rdb := testenv.Redis(t)
	ns := testenv.NATS(t)
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak": "sk"}, AcceptAnyTemplate: true, Faults: faults})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pusher, err := push.New(push.Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	limits := consumer.DefaultLimits()
	limits.MaxDeliver = 2
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	o := app.Options{NATS: nc, Redis: client, Pusher: pusher, RateLimit: 1000, RedisPrefix: testenv.Prefix(t, rdb),
		Consumer:  consumer.Config{Limits: limits, RetryDelay: 50 * time.Millisecond, FetchWait: 300 * time.Millisecond},
		Processor: worker.Config{Attempts: 2, RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond}, Log: zap.NewNop()}
	for _, m := range mutate {
		m(&o)
	}
	w, err := app.New(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &stack{url: ns.ClientURL(), sim: sim}
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
	var st status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Lanes) != 2 || st.Lanes[1].Lane != "bulk" || st.DeadLetters != 1 || st.Results != 2 {
		t.Fatalf("status: %+v", st)
	}
	out, _, err = s.enqueue(t, "", "dlq", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var dls []deadLetter
	if err := json.Unmarshal([]byte(out), &dls); err != nil || len(dls) != 1 {
		t.Fatalf("dlq list: %v %s", err, out)
	}
	d := dls[0]
	// x1 was a duplicate of the earlier job: only x2 and x3 failed.
	if d.JobID != "doomed" || d.Reason != "failed" || d.Targets != 2 || d.Subject != "push.jobs.bulk.spring" || d.Deliveries != 2 {
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
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("a replayed dead letter must leave the stream: %s", out)
	}
}
