package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/topology"
)

// storeLetters stores dead letters as a worker writes them, on s's server.
func storeLetters(t *testing.T, s *stack, letters ...wire.DeadLetter) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range letters {
		if _, err := js.PublishMsg(ctx, d.Msg(topology.Default().DLQSubject(d.JobID))); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

func dlqPage(t *testing.T, s *stack, args ...string) ops.Page {
	t.Helper()
	out, stderr, err := s.enqueue(t, "", append([]string{"dlq", "list", "--json"}, args...)...)
	var p ops.Page
	if err != nil || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("dlq list %v: %v %s %s", args, err, out, stderr)
	}
	return p
}

// After campaign delete a canceled campaign's letter is still known by its
// error; with the state canceled, by the state. dlq replay refuses both
// without --force.
func TestDeadLetterReplayRefusesACanceledCampaign(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	body := jobLine("x", "u1")
	js := storeLetters(t, s,
		wire.DeadLetter{JobID: "gone.1", Reason: wire.ReasonFailed, Error: "campaign canceled", Subject: "push.jobs.bulk.gone", Body: []byte(body)},
		wire.DeadLetter{JobID: "stopped.1", Reason: wire.ReasonFailed, Error: "8011", Subject: "push.jobs.bulk.stopped", Body: []byte(body)})
	kv, err := js.KeyValue(t.Context(), "PUSH_CAMPAIGNS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "stopped", campaign.State{State: campaign.Canceled}.Encode()); err != nil {
		t.Fatal(err)
	}

	p := dlqPage(t, s)
	if len(p.Letters) != 2 || p.Letters[0].Replayable || p.Letters[1].Replayable || !strings.Contains(p.Letters[0].NotReplayable, "canceled") {
		t.Fatalf("both letters are not replayable: %+v", p.Letters)
	}
	out, stderr, err := s.enqueue(t, "", "dlq", "replay", "gone.1", "stopped.1")
	if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(out, "0 replayed, 2 skipped") ||
		!strings.Contains(stderr, "skipped gone.1: campaign canceled") || !strings.Contains(stderr, "campaign stopped is canceled (--force replays it)") {
		t.Fatalf("replay of canceled campaigns' letters: %v\n%s%s", err, out, stderr)
	}
	if out, stderr, err = s.enqueue(t, "", "dlq", "replay", "--all"); err != nil || !strings.Contains(out, "0 replayed, 2 skipped") {
		t.Fatalf("replay --all: %v\n%s%s", err, out, stderr)
	}
	if p := dlqPage(t, s); len(p.Letters) != 2 {
		t.Fatalf("refused letters stay: %+v", p)
	}
	out, stderr, err = s.enqueue(t, "", "dlq", "replay", "--force", "gone.1")
	if err != nil || !strings.Contains(out, "replayed gone.1 as gone.1.replay1: 1 targets to push.jobs.bulk.gone") {
		t.Fatalf("replay --force: %v\n%s%s", err, out, stderr)
	}
	if p := dlqPage(t, s); len(p.Letters) != 1 || p.Letters[0].JobID != "stopped.1" {
		t.Fatalf("after replay --force: %+v", p)
	}
}

func TestDeadLetterListPagesDeleteAndPurge(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	var letters []wire.DeadLetter
	for i := range 12 {
		camp, reason := "a", wire.ReasonFailed
		if i%2 == 1 {
			camp = "b"
		}
		if i%4 == 3 {
			reason = wire.ReasonRejected
		}
		letters = append(letters, wire.DeadLetter{JobID: camp + "." + string(rune('a'+i)), Reason: reason, Error: "code " + camp,
			Subject: "push.jobs.bulk." + camp, Body: []byte(jobLine("x", "u"))})
	}
	storeLetters(t, s, letters...)
	out, _, err := s.enqueue(t, "", "dlq", "list", "--limit", "5")
	if err != nil || !strings.Contains(out, "5 dead letter(s) shown, newest first, of 12 kept") || !strings.Contains(out, "older ones: --before 8") {
		t.Fatalf("dlq list --limit 5: %v\n%s", err, out)
	}
	p := dlqPage(t, s, "--limit", "5", "--before", "8")
	if len(p.Letters) != 5 || p.Letters[0].Seq != 7 || p.Next != 3 {
		t.Fatalf("the second page: %+v", p)
	}
	p = dlqPage(t, s, "--campaign", "b", "--reason", "rejected")
	if len(p.Letters) != 3 || p.Letters[0].Seq != 12 || p.Letters[2].Seq != 4 {
		t.Fatalf("campaign b, rejected: %+v", p.Letters)
	}
	if out, stderr, err := s.enqueue(t, "", "dlq", "delete", "12", "99"); err == nil || !strings.Contains(out, "deleted dead letter 12") ||
		!strings.Contains(stderr, "no dead letter 99") {
		t.Fatalf("dlq delete: %v\n%s%s", err, out, stderr)
	}
	if _, stderr, err := s.enqueue(t, "", "dlq", "purge", "--campaign", "a"); err == nil || !strings.Contains(stderr, "add --yes") {
		t.Fatalf("a purge without a terminal and without --yes: %v %s", err, stderr)
	}
	if _, stderr, err := s.enqueue(t, "", "dlq", "purge", "--yes"); err == nil || !strings.Contains(stderr, "--campaign, --error or --reason") {
		t.Fatalf("a purge of everything: %v %s", err, stderr)
	}
	out, stderr, err := s.enqueue(t, "", "dlq", "purge", "--error", "CODE A", "--yes")
	if err != nil || !strings.Contains(out, `removed 6 dead letter(s) whose error contains "CODE A"`) {
		t.Fatalf("purge --error: %v\n%s%s", err, out, stderr)
	}
	if p := dlqPage(t, s); p.Total != 5 || len(p.Letters) != 5 || p.Letters[0].Campaign != "b" {
		t.Fatalf("after the purge: %+v", p)
	}
}
