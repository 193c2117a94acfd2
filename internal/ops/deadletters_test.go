package ops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// world is an Ops on an embedded server (or url's, under names of the test's
// own) with the dead-letter and job streams and the campaigns bucket, all
// removed at the end.
type world struct {
	ops  *ops.Ops
	js   jetstream.JetStream
	topo topology.Topology
}

func newWorld(t testing.TB, url string, dlqBytes int64) *world {
	t.Helper()
	topo := topology.Default().Suffixed("T" + testenv.ID())
	if url == "" {
		url = testenv.NATS(t).ClientURL()
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() {
		testenv.DeleteStreams(t, js, topo.DLQStream, topo.JobsStream, "KV_"+topo.CampaignsBucket)
	})
	for _, cfg := range []jetstream.StreamConfig{
		{Name: topo.DLQStream, Subjects: []string{topo.DLQSubjects()}, MaxBytes: dlqBytes, Duplicates: time.Minute},
		{Name: topo.JobsStream, Subjects: []string{topo.DefaultLaneSubjects(), topo.BulkLaneSubjects()}, MaxBytes: 1 << 20,
			Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: topo.CampaignsBucket, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	o, err := ops.New(nc, topo)
	if err != nil {
		t.Fatal(err)
	}
	return &world{ops: o, js: js, topo: topo}
}

// letter stores a dead letter of job id from subject and says its sequence.
func (w *world) letter(t testing.TB, id, subject, reason, errText string) uint64 {
	t.Helper()
	j := &job.Job{JobID: id, TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", TargetMsgkey: job.Targets{{Target: "u-" + id, MsgKey: "k"}}}
	body, _ := j.Encode()
	d := wire.DeadLetter{JobID: id, Reason: reason, Error: errText, Subject: subject, Deliveries: 2, Body: body}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := w.js.PublishMsg(ctx, d.Msg(w.topo.DLQSubject(id)))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (w *world) setState(t *testing.T, name, state string) {
	t.Helper()
	kv, err := w.js.KeyValue(t.Context(), w.topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), name, campaign.State{State: state, UpdatedAt: time.Now().UTC()}.Encode()); err != nil {
		t.Fatal(err)
	}
}

func seqs(p ops.Page) []uint64 {
	out := []uint64{}
	for _, d := range p.Letters {
		out = append(out, d.Seq)
	}
	return out
}

func TestListPagesNewestFirstAndFilters(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", 1<<20)
	ctx := t.Context()
	// 120 letters: campaigns a and b by turns, every third one rejected.
	for i := 1; i <= 120; i++ {
		camp, reason, errText := "a", wire.ReasonFailed, "8011: rate "+strconv.Itoa(i)
		if i%2 == 0 {
			camp = "b"
		}
		if i%3 == 0 {
			reason, errText = wire.ReasonRejected, "appId: required"
		}
		w.letter(t, fmt.Sprintf("%s.%d", camp, i), w.topo.BulkSubject(camp), reason, errText)
	}
	if err := w.ops.DeleteDeadLetter(ctx, 119); err != nil { // a gap in the newest page
		t.Fatal(err)
	}
	if err := w.ops.DeleteDeadLetter(ctx, 119); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("deleting a letter twice: %v", err)
	}

	p, err := w.ops.DeadLetters(ctx, ops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := seqs(p)
	if len(got) != 50 || got[0] != 120 || got[1] != 118 || got[49] != 70 || p.Next != 70 || p.Total != 119 {
		t.Fatalf("first page: %v next %d total %d", got, p.Next, p.Total)
	}
	if d := p.Letters[0]; d.JobID != "b.120" || d.Campaign != "b" || d.Targets != 1 || d.Reason != "rejected" || d.Replayable ||
		d.NotReplayable == "" || d.Deliveries != 2 || d.At == "" {
		t.Fatalf("a letter: %+v", d)
	}
	if d := p.Letters[1]; !d.Replayable || d.Campaign != "b" {
		t.Fatalf("a failed letter replays: %+v", d)
	}
	var all []uint64
	for before := uint64(0); ; {
		p, err := w.ops.DeadLetters(ctx, ops.Filter{Before: before, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, seqs(p)...)
		if p.Next == 0 {
			break
		}
		before = p.Next
	}
	if len(all) != 119 || all[len(all)-1] != 1 {
		t.Fatalf("paging through: %d letters, last %v", len(all), all[len(all)-1])
	}

	p, err = w.ops.DeadLetters(ctx, ops.Filter{Campaign: "a", Reason: wire.ReasonFailed, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(p); fmt.Sprint(got) != "[115 113 109 107 103]" || p.Next != 103 {
		t.Fatalf("campaign a, failed: %v next %d", got, p.Next)
	}
	p, err = w.ops.DeadLetters(ctx, ops.Filter{ErrorContains: "RATE 10", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	// "8011: rate 10" and "8011: rate 10x", but not the multiples of 3 (rejected).
	if got := seqs(p); fmt.Sprint(got) != "[109 107 106 104 103 101 100 10]" {
		t.Fatalf("error filter: %v", got)
	}
	for _, d := range p.Letters {
		if d.Reason != wire.ReasonFailed || d.Error[:13] != "8011: rate 10" {
			t.Fatalf("error filter let through %+v", d)
		}
	}
	if p.Next != 0 || p.Capped {
		t.Fatalf("a filter that read the whole stream: next %d capped %v", p.Next, p.Capped)
	}
	if _, err := w.ops.DeadLetter(ctx, 9999); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("an unknown letter: %v", err)
	}
}

// A canceled campaign's letter is not replayed without force: whether its
// state says canceled, or its error says its targets were left by the cancel
// and the state was deleted since (campaign delete).
func TestReplayRefusesACanceledCampaignsLetter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", 1<<20)
	ctx := t.Context()
	byState := w.letter(t, "gone.1", w.topo.BulkSubject("gone"), wire.ReasonFailed, "8011: too fast")
	byError := w.letter(t, "deleted.1", w.topo.BulkSubject("deleted"), wire.ReasonFailed, pipeline.ErrCampaignCanceled)
	rejected := w.letter(t, "bad.1", w.topo.BulkSubject("gone"), wire.ReasonRejected, "appId: required")
	fine := w.letter(t, "fine.1", w.topo.EventsSubject("orders"), wire.ReasonStopped, "")
	w.setState(t, "gone", campaign.Canceled)

	for _, seq := range []uint64{byState, byError} {
		d, err := w.ops.DeadLetter(ctx, seq)
		if err != nil || d.Replayable || d.NotReplayable == "" {
			t.Fatalf("letter %d must say it is not replayable: %+v %v", seq, d, err)
		}
	}
	out, err := w.ops.ReplayDeadLetters(ctx, ops.Select{Seqs: []uint64{byState, byError, rejected, 777}}, false)
	if err != nil || len(out) != 4 {
		t.Fatalf("replay: %v %+v", err, out)
	}
	for i, want := range []error{ops.ErrCanceled, ops.ErrCanceled, ops.ErrRejected, ops.ErrNotFound} {
		if !errors.Is(out[i].Err, want) {
			t.Fatalf("replay %d: %v, want %v", i, out[i].Err, want)
		}
	}
	jobs, _ := w.js.Stream(ctx, w.topo.JobsStream)
	if info, _ := jobs.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("a refused replay published %d jobs", info.State.Msgs)
	}

	out, err = w.ops.ReplayDeadLetters(ctx, ops.Select{JobIDs: []string{"gone.1", "deleted.1", "bad.1", "fine.1"}}, true)
	if err != nil || len(out) != 4 {
		t.Fatalf("replay --force: %v %+v", err, out)
	}
	if out[0].Err != nil || out[1].Err != nil || !errors.Is(out[2].Err, ops.ErrRejected) || out[3].Err != nil {
		t.Fatalf("with force the canceled campaigns' letters replay, the rejected one never: %+v", out)
	}
	if out[0].NewID != ops.ReplayID("gone.1", byState) || out[0].Subject != w.topo.BulkSubject("gone") || out[0].Targets != 1 ||
		out[3].Letter.Seq != fine || out[3].Subject != w.topo.EventsSubject("orders") {
		t.Fatalf("replayed: %+v", out)
	}
	m, err := jobs.GetLastMsgForSubject(ctx, w.topo.BulkSubject("gone"))
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != "gone.1.replay"+strconv.FormatUint(byState, 10) {
		t.Fatalf("the replayed job: %v %v", err, m)
	}
	if _, err := w.ops.DeadLetter(ctx, byState); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("a replayed letter leaves the stream: %v", err)
	}
	if _, err := w.ops.DeadLetter(ctx, rejected); err != nil {
		t.Fatalf("a refused letter stays: %v", err)
	}
}

func TestPurgeByCampaignErrorOrReason(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", 1<<20)
	ctx := t.Context()
	for i := range 30 {
		camp := []string{"x", "y", "z"}[i%3]
		w.letter(t, camp+"."+strconv.Itoa(i), w.topo.BulkSubject(camp), wire.ReasonFailed, "code "+camp)
	}
	w.letter(t, "lone", w.topo.EventsSubject("orders"), wire.ReasonRejected, "appId: required")
	if _, err := w.ops.PurgeDeadLetters(ctx, ops.Filter{}); !errors.Is(err, ops.ErrNoFilter) {
		t.Fatalf("a purge without a filter: %v", err)
	}
	for _, c := range []struct {
		f    ops.Filter
		n    int
		left uint64
	}{{ops.Filter{Campaign: "x"}, 10, 21}, {ops.Filter{ErrorContains: "CODE Y"}, 10, 11}, {ops.Filter{Reason: "rejected"}, 1, 10},
		{ops.Filter{Campaign: "x"}, 0, 10}} {
		n, err := w.ops.PurgeDeadLetters(ctx, c.f)
		if err != nil || n != c.n {
			t.Fatalf("purge %+v: %d %v, want %d", c.f, n, err, c.n)
		}
		p, err := w.ops.DeadLetters(ctx, ops.Filter{Limit: 100})
		if err != nil || p.Total != c.left || uint64(len(p.Letters)) != c.left {
			t.Fatalf("after purge %+v: %d letters (total %d) %v", c.f, len(p.Letters), p.Total, err)
		}
	}
}

// The letter of a canceled campaign's targets is known by the pipeline's error.
func TestCanceledErrorIsThePipelines(t *testing.T) {
	if ops.ErrCanceled.Error() != pipeline.ErrCampaignCanceled {
		t.Fatalf("ops.ErrCanceled %q, pipeline.ErrCampaignCanceled %q", ops.ErrCanceled, pipeline.ErrCampaignCanceled)
	}
}

// BenchmarkDeadLetterFirstPage is the time of the dead-letter page's first
// read (the newest 50) on a stream of 100,000 small letters, on an embedded
// server or OPS_BENCH_NATS_URL's (under stream names of its own, deleted at
// the end). docs/operations.md quotes it.
func BenchmarkDeadLetterFirstPage(b *testing.B) {
	const letters = 100_000
	w := newWorld(b, os.Getenv("OPS_BENCH_NATS_URL"), 48<<20)
	ctx := context.Background()
	body := []byte(`{"jobId":"x","appId":"a"}`)
	for i := range letters {
		id := "bench." + strconv.Itoa(i)
		d := wire.DeadLetter{JobID: id, Reason: wire.ReasonFailed, Error: "8011", Subject: w.topo.BulkSubject("bench"), Deliveries: 5, Body: body}
		if _, err := w.js.PublishMsgAsync(d.Msg(w.topo.DLQSubject(id))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-w.js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing the letters took over 2 minutes")
	}
	for _, bc := range []struct {
		name string
		f    ops.Filter
	}{{"newest", ops.Filter{}}, {"page-in-the-middle", ops.Filter{Before: letters / 2}}, {"by-reason", ops.Filter{Reason: wire.ReasonFailed}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := w.ops.DeadLetters(ctx, bc.f)
				if err != nil || len(p.Letters) != 50 || p.Total != letters {
					b.Fatalf("%d letters of %d: %v", len(p.Letters), p.Total, err)
				}
			}
		})
	}
}
