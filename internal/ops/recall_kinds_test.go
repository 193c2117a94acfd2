package ops

import (
	"reflect"
	"testing"

	"github.com/mpaas-push/pushworker/job"
)

// PushSimple pushes are revoked per pair like PushTemplate ones; a broadcast
// as a task like a PushMultiple call, and a scheduled broadcast is left to
// scheduled cancel.
func TestPlanRevokesSimplePairsAndBroadcastTasks(t *testing.T) {
	pairs := job.Targets{{Target: "u1", MsgKey: "k"}, {Target: "u2", MsgKey: "k"}}
	results := []job.Result{
		{AppID: "a", WorkspaceID: "w", API: job.APISimple, Chunks: []job.ChunkResult{{TargetMsgkey: pairs, Status: job.ChunkSent, Data: "77"}}},
		{AppID: "a", WorkspaceID: "w", API: job.APIBroadcast, Chunks: []job.ChunkResult{{TargetMsgkey: job.Targets{}, Status: job.ChunkSent, Data: "90000001"}}},
		{AppID: "a", WorkspaceID: "w", API: job.APIBroadcast, Chunks: []job.ChunkResult{{TargetMsgkey: job.Targets{}, Status: job.ChunkSent, Data: "s1", StrategyType: 1}}},
		{AppID: "a", WorkspaceID: "w", API: job.APIBroadcast, Chunks: []job.ChunkResult{{TargetMsgkey: job.Targets{}, Status: job.ChunkSent}}},
	}
	p := &RecallPlan{Action: job.ActionRevoke}
	p.plan(results)
	if len(p.Sources) != 1 || !reflect.DeepEqual(p.Sources[0].Pairs, pairs) || !reflect.DeepEqual(p.Sources[0].TaskIDs, []string{"90000001"}) ||
		p.Scheduled != 1 || p.NoTaskID != 1 {
		t.Fatalf("plan: %+v %+v", p, p.Sources)
	}
	if got := p.Calls(); !reflect.DeepEqual(got, map[string]int{job.APIRevokeMessage: 2, job.APIRevokeTask: 1}) {
		t.Fatalf("calls: %v", got)
	}
	cs := &RecallPlan{Action: job.ActionCancelScheduled}
	cs.plan(results)
	if len(cs.Sources) != 1 || !reflect.DeepEqual(cs.Sources[0].TaskIDs, []string{"s1"}) {
		t.Fatalf("cancel plan: %+v", cs.Sources)
	}
}
