package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// The report endpoint's analytics calls go as the scheduled list's do: a
// transient answer is retried with the pipeline's policy up to its attempts,
// then the requester is told why. A finished campaign's complete figures are
// kept in Redis under the layout's key and answered from there; a bad
// request is refused naming the field.
func TestReportRetriesAndKeeps(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	w := h.StartWorker()
	attempts := h.Config().Attempts
	j := teststack.NewMultipleJob("rp-1", "rp", 150) // two calls: two push tasks
	h.PublishJob(h.Topo.BulkSubject("rp"), j)
	r := h.ResultsFor([]string{j.JobID}, 20*time.Second)[j.JobID]
	if r.Status != job.StatusSucceeded || len(r.Chunks) != 2 {
		t.Fatalf("job: %+v", r)
	}
	q := campaign.ReportRequest{Campaign: "rp", Finished: true,
		Sources: []campaign.ReportSource{{AppID: j.AppID, WorkspaceID: j.WorkspaceID, TaskIDs: []string{r.Chunks[0].Data, r.Chunks[1].Data}}}}
	calls := func() int64 { return h.Sim.Stats().ByAPI["QueryPushAnalysisTaskDetail"].Calls }
	ask := func(q any) (map[string]string, campaign.Delivery) {
		t.Helper()
		req, _ := json.Marshal(q)
		m, err := w.NC.Request(h.Topo.ReportSubject(), req, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var rep campaign.Delivery
		if len(m.Data) > 0 {
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				t.Fatalf("%v: %s", err, m.Data)
			}
		}
		return map[string]string{"code": m.Header.Get(micro.ErrorCodeHeader), "error": m.Header.Get(micro.ErrorHeader)}, rep
	}

	// As many transient failures as attempts: told why, and no more calls made.
	h.Sim.SetFaults(mpaassim.Faults{FailNext: attempts})
	errs, _ := ask(q)
	if errs["code"] != "ServiceUnavailable" || !strings.Contains(errs["error"], "task "+r.Chunks[0].Data) ||
		!strings.Contains(errs["error"], fmt.Sprintf("(calls: %d)", attempts)) || calls() != int64(attempts) {
		t.Fatalf("after %d transient failures: %v, %d calls", attempts, errs, calls())
	}

	// Fewer than attempts: the figures come, summed over both tasks, and are kept.
	h.Sim.SetFaults(mpaassim.Faults{FailNext: attempts - 1})
	errs, rep := ask(q)
	pushed := int64(150)
	if errs["code"] != "" || !rep.Ready || rep.Cached || rep.TaskIDs != 2 || rep.TasksCounted != 2 || rep.Total.Pushed != pushed ||
		rep.Tasks != rep.Total || time.Since(rep.FetchedAt) > time.Minute {
		t.Fatalf("report: %v %+v", errs, rep)
	}
	if n := calls(); n != int64(attempts)+int64(attempts-1)+2 {
		t.Fatalf("%d TaskDetail calls, want %d", n, 2*attempts+1)
	}
	key := (&config.Worker{RedisPrefix: h.Prefix}).RedisKeys().Reports + "rp"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kept, err := testenv.Redis(t).Get(ctx, key).Bytes()
	if err != nil || !strings.Contains(string(kept), `"pushed":150`) {
		t.Fatalf("kept at %s: %v %s", key, err, kept)
	}
	before := calls()
	if errs, again := ask(q); errs["code"] != "" || !again.Cached || again.Total != rep.Total || !again.FetchedAt.Equal(rep.FetchedAt) || calls() != before {
		t.Fatalf("kept report: %v %+v, %d calls", errs, again, calls()-before)
	}

	for name, bad := range map[string]struct {
		q    any
		says string
	}{
		"no campaign":  {campaign.ReportRequest{}, "campaign"},
		"no appId":     {campaign.ReportRequest{Campaign: "x", Sources: []campaign.ReportSource{{WorkspaceID: "w", TaskIDs: []string{"1"}}}}, "sources[0]: appId"},
		"a bad type":   {campaign.ReportRequest{Campaign: "x", Sources: []campaign.ReportSource{{AppID: "a", WorkspaceID: "w", Windows: []campaign.ReportWindow{{Type: "ALL"}}}}}, "sources[0].windows[0].type"},
		"not JSON":     {"[", "report request"},
		"too many ids": {campaign.ReportRequest{Campaign: "x", Sources: []campaign.ReportSource{{AppID: "a", WorkspaceID: "w", TaskIDs: make([]string, 1001)}}}, "more than the 1000"},
	} {
		if errs, _ := ask(bad.q); errs["code"] != "400" || !strings.Contains(errs["error"], bad.says) {
			t.Errorf("%s: %v, want a 400 saying %q", name, errs, bad.says)
		}
	}
}
