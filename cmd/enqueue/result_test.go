package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
)

func TestResultCommand(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	if _, stderr, err := s.enqueue(t, jobLine("done-1", "u1", "u2"), "--wait", "-"); err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	if _, stderr, err := s.enqueue(t, jobLine("spring-1", "u3"), "--wait", "--subject", "push.jobs.bulk.spring", "-"); err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}

	out, stderr, err := s.enqueue(t, "", "result", "done-1")
	if err != nil {
		t.Fatalf("result: %v\n%s", err, stderr)
	}
	for _, want := range []string{"job done-1: succeeded (PushTemplate)", "targets: 2: 2 sent, 0 duplicates, 0 failed", "CALL", "sent"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the summary must say %q:\n%s", want, out)
		}
	}

	out, stderr, err = s.enqueue(t, "", "result", "spring-1", "--json") // the flag may follow the id
	if err != nil {
		t.Fatalf("result --json: %v\n%s", err, stderr)
	}
	var r job.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.JobID != "spring-1" || r.Campaign != "spring" || r.Sent != 1 {
		t.Fatalf("result --json: %v\n%s", err, out)
	}

	_, stderr, err = s.enqueue(t, "", "result", "nobody")
	if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(stderr, "nobody") {
		t.Fatalf("an unknown job: %v, want exit 1 naming it:\n%s", err, stderr)
	}
	for _, args := range [][]string{{"result"}, {"result", "bad..id"}, {"result", "a", "b"}} {
		if _, _, err := s.enqueue(t, "", args...); err == nil || err.(exitError).code != 2 {
			t.Fatalf("enqueue %v: %v, want exit 2", args, err)
		}
	}
}
