package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/topology"
)

// orphanedStream is a job stream whose bulk consumer's ack floor is past three
// jobs the stream still holds (the state a crashed 2.9 server leaves behind,
// made here by starting the consumer after them), one job above the floor, and
// the result of the first orphan.
func orphanedStream(t *testing.T) (*stack, jetstream.Stream) {
	t.Helper()
	ns := testenv.NATS(t)
	s := &stack{url: ns.ClientURL()}
	js := connectJS(t, s.url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := topology.Default()
	// The worker's topology, except that the job stream keeps what is acknowledged
	// (limits retention: a work-queue stream takes only consumers that start at its
	// first message), so that a consumer can start past messages it holds.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topo.JobsStream, Subjects: []string{topo.DefaultLaneSubjects(), topo.BulkLaneSubjects()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topo.ResultsStream, Subjects: []string{topo.ResultSubjects()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topo.DLQStream, Subjects: []string{topo.DLQSubjects()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, topo.JobsStream, jetstream.ConsumerConfig{Durable: topo.Durable,
		FilterSubject: topo.DefaultLaneSubjects(), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, topo.BulkSubject("spring"), []byte(jobLine(fmt.Sprintf("orphan-%d", i), "u1"))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateConsumer(ctx, topo.JobsStream, jetstream.ConsumerConfig{Durable: topo.BulkDurable,
		FilterSubject: topo.BulkLaneSubjects(), AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.BulkSubject("spring"), []byte(jobLine("waiting", "u2"))); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.ResultSubject("", "orphan-0"), []byte(`{"jobId":"orphan-0","status":"succeeded"}`)); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, topo.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s, stream
}

func streamMsgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestStatusReportsOrphansAndRepairRemovesThemOnlyWhenTold(t *testing.T) {
	t.Parallel()
	s, stream := orphanedStream(t)

	out, stderr, err := s.enqueue(t, "", "status", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var st ops.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Lanes[1].Lane != topology.LaneBulk || st.Lanes[1].Orphans != 3 || st.Lanes[1].Waiting != 1 || st.Lanes[0].Orphans != 0 {
		t.Fatalf("status must show 3 orphans and 1 job waiting on the bulk lane: %+v", st.Lanes)
	}
	out, _, _ = s.enqueue(t, "", "status")
	if !strings.Contains(out, "orphaned: 3 messages") || !strings.Contains(out, "enqueue repair") {
		t.Fatalf("the table must name the orphans and the repair:\n%s", out)
	}

	out, _, err = s.enqueue(t, "n\n", "repair")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"orphan-0", "orphan-1", "orphan-2", "push.jobs.bulk.spring", "Remove them? [y/N]", "nothing removed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("repair must show %q before asking:\n%s", want, out)
		}
	}
	if strings.Contains(out, "waiting") {
		t.Fatalf("the job above the ack floor is no orphan:\n%s", out)
	}
	if n := streamMsgs(t, stream); n != 4 {
		t.Fatalf("a refused repair removed messages: %d left of 4", n)
	}

	out, _, _ = s.enqueue(t, "", "repair", "--json")
	var found []ops.Orphan
	if err := json.Unmarshal([]byte(out), &found); err != nil || len(found) != 3 {
		t.Fatalf("repair --json: %v\n%s", err, out)
	}
	if !found[0].Result || found[1].Result || found[0].Sequence != 1 {
		t.Fatalf("the first orphan's result is kept, the second's is not: %+v", found)
	}

	out, _, err = s.enqueue(t, "y\n", "repair")
	if err != nil || !strings.Contains(out, "removed 3 orphaned messages") {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	if n := streamMsgs(t, stream); n != 1 {
		t.Fatalf("%d messages left, want the one waiting job", n)
	}
	if m, err := stream.GetMsg(context.Background(), 4); err != nil || !strings.Contains(string(m.Data), `"waiting"`) {
		t.Fatalf("the waiting job must stay: %v", err)
	}
	out, _, _ = s.enqueue(t, "", "repair", "--yes")
	if !strings.Contains(out, "no orphaned messages") {
		t.Fatalf("a second repair: %s", out)
	}
}
