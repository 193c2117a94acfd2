package worker_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// The scheduled list's pages are mPaaS calls as pushes are: each takes a slot
// of the shared rate limit, and a transient answer is retried with the
// pipeline's policy, up to its attempts.
func TestScheduledListTakesSlotsAndRetries(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	// 2 calls a second, a burst of 2: four calls cannot all go out within a
	// second, whatever the retry policy waits (10–50 ms here).
	const rate = 2
	w := h.StartWorker(func(w *teststack.WorkerSetup) { w.Config.RateLimit, w.Config.RateAdaptive = rate, false })
	attempts := h.Config().Attempts
	at := time.Now().Add(2 * time.Hour).UnixMilli()
	j := teststack.NewJob("sl-1", "sl", 15) // two calls: two scheduled tasks
	j.StrategyType, j.StrategyContent = job.Int64(1), job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))
	h.PublishJob(h.Topo.BulkSubject("later"), j)
	if r := h.ResultsFor([]string{j.JobID}, 20*time.Second)[j.JobID]; r.Status != job.StatusSucceeded || r.Sent != 15 {
		t.Fatalf("scheduled job: %+v", r)
	}
	queries := func() int64 { return h.Sim.Stats().ByAPI["QueryPushSchedulerList"].Calls }
	ask := func() (time.Duration, map[string]string, []byte) {
		req, _ := json.Marshal(map[string]string{"appId": j.AppID, "workspaceId": j.WorkspaceID})
		start := time.Now()
		m, err := w.NC.Request(h.Topo.ScheduledListSubject(), req, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), map[string]string{"code": m.Header.Get(micro.ErrorCodeHeader), "error": m.Header.Get(micro.ErrorHeader)}, m.Data
	}

	// Fewer transient failures than attempts: the list comes, after a slot per call.
	h.Sim.SetFaults(mpaassim.Faults{FailNext: attempts - 1})
	took, errs, body := ask()
	var l struct {
		AppID string              `json:"appId"`
		Tasks []job.ScheduledTask `json:"tasks"`
	}
	if errs["code"] != "" || json.Unmarshal(body, &l) != nil || l.AppID != j.AppID || len(l.Tasks) != 2 || l.Tasks[0].PushTime.UnixMilli() != at {
		t.Fatalf("scheduled list after %d transient failures: %v %s", attempts-1, errs, body)
	}
	if n := queries(); n != int64(attempts) {
		t.Fatalf("%d QueryPushSchedulerList calls, want %d: %d failed, then the list", n, attempts, attempts-1)
	}
	// GCRA lets at most burst + rate × T calls through in T: the last of
	// `attempts` calls goes (attempts − burst) / rate after the first at the earliest.
	least := time.Duration(attempts-2) * time.Second / rate
	if took < least-50*time.Millisecond {
		t.Fatalf("%d calls at %d a second took %v: they did not wait for the shared limit (at least %v)", attempts, rate, took, least)
	}
	t.Logf("%d calls (%d retried) in %v at %d calls a second", attempts, attempts-1, took, rate)

	// As many transient failures as attempts: the requester is told why, and no
	// more calls were made.
	h.Sim.SetFaults(mpaassim.Faults{FailNext: attempts})
	_, errs, body = ask()
	if errs["code"] != "ServiceUnavailable" || !strings.Contains(errs["error"], "QueryPushSchedulerList page 1") ||
		!strings.Contains(errs["error"], fmt.Sprintf("(calls: %d)", attempts)) || len(body) != 0 {
		t.Fatalf("after %d transient failures: %v %q", attempts, errs, body)
	}
	if n := queries(); n != 2*int64(attempts) {
		t.Fatalf("%d QueryPushSchedulerList calls, want %d", n, 2*attempts)
	}
}
