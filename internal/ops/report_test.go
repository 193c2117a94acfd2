package ops

import (
	"reflect"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/job"
)

// What a report asks about, from the stored results: each push task once (a
// job's re-run reports the same ids), not a scheduled chunk's nor a failed
// one's; per app and workspace, the PushTemplate jobs' window from the first
// start to the last end; nothing of a result that sent nothing.
func TestReportSources(t *testing.T) {
	at := func(s int) job.Time { return job.Time{Time: time.Date(2026, 12, 6, 10, 0, s, 0, time.UTC)} }
	sent := func(data string, strategy int64) job.ChunkResult {
		return job.ChunkResult{Status: job.ChunkSent, Data: data, StrategyType: strategy}
	}
	results := []job.Result{
		{AppID: "a", WorkspaceID: "w", API: job.APIMultiple, Sent: 150, Chunks: []job.ChunkResult{sent("1", 0), sent("2", 0)}},
		{AppID: "a", WorkspaceID: "w", API: job.APIMultiple, Sent: 150, Chunks: []job.ChunkResult{sent("1", 0), sent("2", 0)}}, // a re-run
		{AppID: "a", WorkspaceID: "w", API: job.APIMultiple, Sent: 100, Chunks: []job.ChunkResult{sent("s1", 1), {Status: job.ChunkFailed}}},
		{AppID: "a", WorkspaceID: "w", API: job.APITemplate, Sent: 10, StartedAt: at(5), FinishedAt: at(6)},
		{AppID: "a", WorkspaceID: "w", API: job.APITemplate, Sent: 10, StartedAt: at(2), FinishedAt: at(3)},
		{AppID: "a", WorkspaceID: "w", API: job.APITemplate, Sent: 0, StartedAt: at(0), FinishedAt: at(9)}, // all duplicates
		{AppID: "b", WorkspaceID: "w", API: job.APIMultiple, Sent: 300, Truncated: true},
		{AppID: "c", WorkspaceID: "w", API: job.APITemplate, Sent: 3, StartedAt: at(7), FinishedAt: at(8)},
	}
	got, scheduled, truncated := reportSources(results)
	want := []campaign.ReportSource{
		{AppID: "a", WorkspaceID: "w", TaskIDs: []string{"1", "2"}, Windows: []campaign.ReportWindow{{Type: "TEMPLATE", From: at(2).Time, To: at(6).Time}}},
		{AppID: "c", WorkspaceID: "w", Windows: []campaign.ReportWindow{{Type: "TEMPLATE", From: at(7).Time, To: at(8).Time}}},
	}
	if !reflect.DeepEqual(got, want) || scheduled != 1 || truncated != 1 {
		t.Fatalf("sources %+v, %d scheduled, %d truncated; want %+v, 1, 1", got, scheduled, truncated, want)
	}
}
