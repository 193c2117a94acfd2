package campaign_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/redisbatch"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// A campaign's totals count its push jobs' targets; its admin jobs' results are
// counted apart, by call (a RevokePushTask chunk lists no target and still
// counts 1), in Redis and in memory alike.
func TestRecallIsCountedApartFromPushes(t *testing.T) {
	push := &job.Result{JobID: "p", Status: job.StatusPartial, API: job.APIMultiple, Targets: 250, Sent: 200, Failed: 50,
		Chunks: []job.ChunkResult{
			{TargetMsgkey: targets(100), Status: job.ChunkSent, Data: "90000001"},
			{TargetMsgkey: targets(100), Status: job.ChunkSent, Data: "90000002"},
			{TargetMsgkey: targets(50), Status: job.ChunkFailed, ResultCode: "3022"},
		}}
	revoke := &job.Result{JobID: "r", Status: job.StatusPartial, API: job.APIRevokeMessage + "," + job.APIRevokeTask, Targets: 4, Sent: 2, Failed: 2,
		Chunks: []job.ChunkResult{
			{TargetMsgkey: targets(1), Status: job.ChunkSent},
			{Status: job.ChunkSent, Data: "90000001"},
			{Status: job.ChunkFailed, ResultCode: "3051", Data: "90000002"},
			{TargetMsgkey: targets(1), Status: job.ChunkFailed, ResultCode: "3051"},
		}}
	cancel := &job.Result{JobID: "c", Status: job.StatusSucceeded, API: job.APICancelScheduler, Targets: 1, Sent: 1,
		Chunks: []job.ChunkResult{{Status: job.ChunkSent, Data: "0123456789abcdef0123456789abcdef"}}}
	rejected := &job.Result{JobID: "x", Status: job.StatusRejected, Error: "taskIds[0]: …"}
	want := campaign.Totals{Jobs: 1, Targets: 250, Sent: 200, Failed: 50, FailedBy: map[string]int{"3022": 50},
		Revoked: 2, CanceledScheduled: 1, RecallFailed: 3, RecallFailedBy: map[string]int{"3051": 2, "rejected": 1}}

	rdb := testenv.Redis(t)
	type store interface {
		Add(ctx context.Context, name string, r *job.Result) error
		AddRecall(ctx context.Context, name string, r *job.Result) error
		Get(ctx context.Context, name string) (campaign.Totals, error)
		GetMany(ctx context.Context, names []string) ([]campaign.Totals, []error)
	}
	for name, s := range map[string]store{
		"redis":  campaign.NewRedisTotals(redisbatch.New(rdb), testenv.Prefix(t, rdb)+"campaign:"),
		"memory": campaign.NewMemoryTotals(),
	} {
		ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Add(ctx, "fall", push); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*job.Result{revoke, cancel, rejected} {
			if err := s.AddRecall(ctx, "fall", r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, "fall")
		// Every campaign in one read: the same totals, and none for a campaign without.
		many, errs := s.GetMany(ctx, []string{"none", "fall"})
		done()
		if err != nil || !reflect.DeepEqual(got, want) || !got.Recalled() {
			t.Fatalf("%s: %v\n got %+v\nwant %+v", name, err, got, want)
		}
		if len(many) != 2 || errs[0] != nil || errs[1] != nil || !reflect.DeepEqual(many[1], want) ||
			!reflect.DeepEqual(many[0], campaign.Totals{FailedBy: map[string]int{}}) {
			t.Fatalf("%s: GetMany: %+v %v", name, many, errs)
		}
	}
	var sum campaign.Totals
	sum.Add(push)
	for _, r := range []*job.Result{revoke, cancel, rejected} {
		sum.AddRecall(r)
	}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("Totals.Add and AddRecall:\n got %+v\nwant %+v", sum, want)
	}
}

func targets(n int) job.Targets {
	out := make(job.Targets, n)
	for i := range out {
		out[i] = job.Target{Target: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)), MsgKey: "k"}
	}
	return out
}
