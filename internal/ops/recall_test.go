package ops

import (
	"reflect"
	"testing"

	"github.com/mpaas-push/pushworker/job"
)

// A chunk is scheduled when its strategyType is 1 or 2, whatever its id looks
// like; an old result without the field reads as an immediate push.
func TestPlanReadsTheStrategyTypeNotTheID(t *testing.T) {
	hex := "0123456789abcdef0123456789abcdef"
	pair := job.Targets{{Target: "u", MsgKey: "k"}}
	results := []job.Result{
		{AppID: "a", WorkspaceID: "w", Campaign: "c", API: job.APITemplate, Chunks: []job.ChunkResult{
			{TargetMsgkey: pair, Status: job.ChunkSent, Data: hex},                                                     // immediate, 32 hex
			{TargetMsgkey: job.Targets{{Target: "s", MsgKey: "k"}}, Status: job.ChunkSent, Data: "9", StrategyType: 1}, // scheduled, a number
			{TargetMsgkey: job.Targets{{Target: "f", MsgKey: "k"}}, Status: job.ChunkFailed},
		}},
		{AppID: "a", WorkspaceID: "w", Campaign: "c", API: job.APIMultiple, Chunks: []job.ChunkResult{
			{Status: job.ChunkSent, Data: hex + "x"},
			{Status: job.ChunkSent, Data: ""},
			{Status: job.ChunkSent, Data: "77", StrategyType: 2},
		}},
	}
	rv := &RecallPlan{Action: job.ActionRevoke}
	rv.plan(results)
	if len(rv.Sources) != 1 || !reflect.DeepEqual(rv.Sources[0].Pairs, pair) || !reflect.DeepEqual(rv.Sources[0].TaskIDs, []string{hex + "x"}) ||
		rv.Scheduled != 2 || rv.NoTaskID != 1 {
		t.Fatalf("revoke plan: %+v %+v", rv, rv.Sources)
	}
	cs := &RecallPlan{Action: job.ActionCancelScheduled}
	cs.plan(results)
	if len(cs.Sources) != 1 || !reflect.DeepEqual(cs.Sources[0].TaskIDs, []string{"9", "77"}) || len(cs.Sources[0].Pairs) != 0 {
		t.Fatalf("cancel plan: %+v", cs.Sources)
	}
	if got := cs.Sources[0].Calls(cs.Action); !reflect.DeepEqual(got, map[string]int{job.APICancelScheduler: 2}) {
		t.Fatalf("calls: %v", got)
	}
}
