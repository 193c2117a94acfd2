package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
)

// enqueue publish takes a PushSimple job as any other, and its result names the action.
func TestPublishSimpleJob(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	body := `{"jobId":"simple-1","taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"expiredSeconds":60,
		"targetMsgkey":{"u1":"k1","u2":"k2"},"title":"标题","content":"内容","pushStyle":1}`
	stdout, stderr, err := s.enqueue(t, body, "--wait", "-")
	if err != nil {
		t.Fatalf("enqueue --wait: %v\n%s", err, stderr)
	}
	var r job.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.API != job.APISimple || r.Sent != 2 {
		t.Fatalf("result %v: %s", err, stdout)
	}
	if c := s.sim.Calls()[0]; c.Action != job.APISimple || c.Params["Title"] != "标题" || c.Params["PushStyle"] != "1" {
		t.Fatalf("call %+v", c)
	}
}

// enqueue broadcast builds a broadcast from its flags, refuses to publish it
// without --yes when no terminal can ask, publishes it with --yes; the same
// broadcast again (its job id derives from it) makes no second call, and a
// file with a broadcast job goes too. A bad broadcast is refused naming the field.
func TestBroadcastCommand(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	args := []string{"broadcast", "--campaign", "release", "--app-id", "a", "--workspace-id", "w", "--template", "新版本",
		"--values", `{"version":"2.0"}`, "--msg-key", "release-2.0", "--delivery-type", "1", "--push-status", "1"}
	if _, stderr, err := s.enqueue(t, "", args...); err == nil || !strings.Contains(stderr, "needs --yes") {
		t.Fatalf("without a terminal and --yes: %v\n%s", err, stderr)
	}
	if n := s.sim.Broadcasts("a", "w", "release-2.0"); n != 0 {
		t.Fatalf("%d broadcasts without --yes", n)
	}
	stdout, stderr, err := s.enqueue(t, "", append(args, "--yes", "--wait")...)
	if err != nil {
		t.Fatalf("enqueue broadcast --yes --wait: %v\n%s", err, stderr)
	}
	var r job.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if r.API != job.APIBroadcast || r.Status != job.StatusSucceeded || r.Campaign != "release" || len(r.Chunks) != 1 || r.Chunks[0].Data == "" ||
		!strings.HasPrefix(r.JobID, "broadcast-") {
		t.Fatalf("result %+v", r)
	}
	call := s.sim.Calls()[0]
	if call.Action != job.APIBroadcast || call.Params["Msgkey"] != "release-2.0" || call.Params["PushStatus"] != "1" ||
		call.Params["TemplateKeyValue"] != `{"version":"2.0"}` || call.Params["TaskName"] != "broadcast release-2.0" {
		t.Fatalf("call %+v", call)
	}
	// The same broadcast again: the same job id, which the job stream drops.
	if _, stderr, err := s.enqueue(t, "", append(args, "--yes", "--wait")...); err != nil || !strings.Contains(stderr, "not published again") {
		t.Fatalf("the same broadcast again: %v\n%s", err, stderr)
	}
	// From a file, another msgKey; a job id of its own.
	path := filepath.Join(t.TempDir(), "b.json")
	body := `{"jobId":"file-bc","taskName":"t","appId":"a","workspaceId":"w","deliveryType":2,"expiredSeconds":60,
		"templateName":"新版本","broadcast":{"msgKey":"from-file"}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := s.enqueue(t, "", "broadcast", "--campaign", "release", "--yes", "--wait", path); err != nil {
		t.Fatalf("enqueue broadcast FILE: %v\n%s", err, stderr)
	}
	if s.sim.Broadcasts("a", "w", "release-2.0") != 1 || s.sim.Broadcasts("a", "w", "from-file") != 1 {
		t.Fatalf("broadcasts: %d and %d", s.sim.Broadcasts("a", "w", "release-2.0"), s.sim.Broadcasts("a", "w", "from-file"))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"broadcast", "--campaign", "c", "--app-id", "a", "--workspace-id", "w", "--template", "t", "--delivery-type", "1", "--yes"}, "broadcast.msgKey: required"},
		{[]string{"broadcast", "--campaign", "c", "--app-id", "a", "--workspace-id", "w", "--template", "t", "--msg-key", "m", "--delivery-type", "3", "--yes"}, "deliveryType: must be 1 (Android), 2 (iOS) or 7"},
		{[]string{"broadcast", "--app-id", "a", "--yes"}, "--campaign NAME"},
		{[]string{"broadcast", "--campaign", "c", "--msg-key", "m", "--yes", path}, "flags or a FILE, not both"},
	} {
		if _, stderr, err := s.enqueue(t, "", c.args...); err == nil || !strings.Contains(stderr, c.want) {
			t.Fatalf("%v: %v\n%s", c.args, err, stderr)
		}
	}
}
