package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// aclPrefix is the key prefix of docs/security.md, which its least-privilege user may use.
const aclPrefix = "pushworker:"

// aclWorker is a worker on a Redis of the test's own, logged in as a user whose
// ACL allows the keys keyPattern only; admin is the server's default user.
func aclWorker(t *testing.T, keyPattern string, mutate func(*teststack.WorkerSetup)) (*teststack.Stack, *teststack.Worker, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "pusher", "on", ">acl-pass-7d2", keyPattern, "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	h := teststack.New(t, teststack.Setup{RedisAddr: srv.Addr()})
	w := h.StartWorker(func(w *teststack.WorkerSetup) {
		w.Config.RedisPrefix = aclPrefix
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "pusher", Password: "acl-pass-7d2"})
		t.Cleanup(func() { rdb.Close() })
		w.Options.Redis = rdb
		if mutate != nil {
			mutate(w)
		}
	})
	return h, w, admin
}

// The whole worker (dedupe, the shared limit with its events share and
// adaptive rate, a campaign's pace, its totals) runs as docs/security.md's
// least-privilege Redis user, whose keys are the worker's prefix only: every
// key it writes is under the prefix.
func TestTheWholeWorkerRunsAsTheACLUser(t *testing.T) {
	t.Parallel()
	const prefix = aclPrefix
	h, _, admin := aclWorker(t, "~"+prefix+"*", func(w *teststack.WorkerSetup) { w.Config.RateAdaptive = true })
	ctx := context.Background()
	kv, err := h.JS.KeyValue(ctx, h.Topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acl", campaign.State{State: campaign.Running, TargetsPerSecond: 500, UpdatedAt: time.Now()}.Encode()); err != nil {
		t.Fatal(err)
	}
	// The worker has applied the pace once its status report shows it.
	req, _ := json.Marshal(campaign.StatusRequest{Campaign: "acl"})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var rep campaign.Report
		if m, err := h.NC.Request(h.Topo.CampaignStatusSubject(), req, time.Second); err == nil &&
			json.Unmarshal(m.Data, &rep) == nil && rep.State.TargetsPerSecond == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never applied the campaign's pace")
		}
	}
	event, bulk := teststack.NewJob("acl-event", "acl-e", 3), teststack.NewJob("acl-bulk", "acl-b", 30)
	h.PublishJob(h.Topo.EventsSubject("orders"), event)
	h.PublishJob(h.Topo.BulkSubject("acl"), bulk)
	got := h.ResultsFor([]string{event.JobID, bulk.JobID}, 20*time.Second)
	for _, j := range []*job.Job{event, bulk} {
		if r := got[j.JobID]; r.Status != job.StatusSucceeded || r.Sent != j.TargetCount() {
			t.Fatalf("%s as the ACL user: %+v", j.JobID, r)
		}
	}
	// The totals are counted once the result is stored: wait for them. The
	// limit's and the pace's keys expire a second after their last call, the
	// adaptive rate's comes within a second: every key seen is kept.
	layout := (&config.Worker{RedisPrefix: prefix}).RedisKeys()
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		keys, err := admin.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			seen[k] = true
		}
		pairs := false
		for k := range seen {
			pairs = pairs || inLayout(layout, k) == "dedupe"
		}
		if seen[layout.Pace+"acl"] && seen[layout.Limit] && seen[layout.Limit+":adaptive"] && seen[layout.Totals+"acl"] && pairs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pace, the shared limit and its adaptive rate, the totals and the pairs must be written: %q", keys)
		}
	}
	for k := range seen {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q outside the prefix %s", k, prefix)
		}
		if inLayout(layout, k) == "" {
			t.Errorf("key %q is none of the layout's (config.RedisKeys, docs/redis.md)", k)
		}
	}
}

// inLayout names the part of the layout k belongs to, or "". The layout's
// owner is config.RedisKeys; the scripts (the GCRA limit and pace, the adaptive
// rate, the dedupe claims and releases) touch only the keys Go hands them, so
// every key written, by Go or by Lua, must be one of these.
func inLayout(l config.RedisKeys, k string) string {
	switch {
	case k == l.Limit || k == l.Limit+":bulk" || k == l.Limit+":events" || k == l.Limit+":adaptive":
		return "limit"
	case strings.HasPrefix(k, l.Credential) && len(k) > len(l.Credential):
		return "credential limit"
	case strings.HasPrefix(k, l.Pace) && campaign.ValidName(k[len(l.Pace):]) == nil:
		return "pace"
	case strings.HasPrefix(k, l.Reports) && campaign.ValidName(k[len(l.Reports):]) == nil:
		return "reports"
	case strings.HasPrefix(k, l.Totals) && (k[len(l.Totals):] == "*index" || campaign.ValidName(k[len(l.Totals):]) == nil):
		return "totals"
	case strings.HasPrefix(k, l.Dedupe+"r:") || strings.HasPrefix(k, l.Dedupe) && len(k) == len(l.Dedupe)+12:
		return "dedupe"
	}
	return ""
}

// A Redis user whose ACL leaves out the worker's keys: the worker says it is a
// permission problem in /readyz, stays unready (a PING that works does not make
// it ready), sends nothing, and goes on once the ACL is fixed.
func TestAPermissionErrorKeepsTheWorkerUnready(t *testing.T) {
	t.Parallel()
	const prefix = aclPrefix
	h, w, admin := aclWorker(t, "~elsewhere:*", nil)
	ctx := context.Background()
	j := teststack.NewJob("noperm", "noperm", 3)
	h.PublishJob(h.Topo.EventsSubject("orders"), j)
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + w.HTTPAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz()
		if code == 503 && strings.Contains(body, "redis-permission") && strings.Contains(body, "NOPERM") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz must name the permission problem: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Several monitor rounds (each PINGs Redis successfully): still unready, nothing sent.
	for range 30 {
		if code, body := readyz(); code != 503 || !strings.Contains(body, "redis-permission") {
			t.Fatalf("ready again while the ACL still refuses the worker's keys: %d %s", code, body)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if n := len(h.Sim.Calls()); n != 0 {
		t.Fatalf("%d calls without the dedupe store", n)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "pusher", "resetkeys", "~"+prefix+"*").Err(); err != nil {
		t.Fatal(err)
	}
	if r := h.ResultsFor([]string{j.JobID}, 20*time.Second)[j.JobID]; r.Status != job.StatusSucceeded || r.Sent != 3 {
		t.Fatalf("after the ACL is fixed the job goes out: %+v", r)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := readyz(); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			code, body := readyz()
			t.Fatalf("ready again once the ACL is fixed: %d %s", code, body)
		}
	}
}
