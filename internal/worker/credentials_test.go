package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// Two AccessKeys, three apps: key A serves app1 and app2 at a rateLimit of
// 100 calls/s, but mPaaS (the emulator) holds A to 50 calls/s; key B serves
// app3 at 150 calls/s under a quota of 200. Both campaigns run at once on three
// workers: each app's calls are signed with its own credential's key, A's
// throttling slows A's apps alone (its adaptive rate comes down), and B goes on
// at its full rate, never throttled, never cut.
func TestEachCredentialHasItsOwnKeyAndRate(t *testing.T) {
	const (
		keyA, secretA = "LTAI5tAlphaKey0001", "secret-of-a"
		keyB, secretB = "LTAI5tBravoKey0002", "secret-of-b"
		app1, app2    = "ONEX570DA89211701", "ONEX570DA89211702"
		app3          = "ONEX570DA89211703"
		limitA        = 100
		limitB        = 150
		quotaA        = 50
		quotaB        = 200
	)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret-a")
	if err := os.WriteFile(secretFile, []byte(secretA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "credentials.yaml")
	yaml := fmt.Sprintf(`credentials:
  - accessKeyId: %s
    secretFile: %s
    appIds: [%s, %s]
    rateLimit: %d
  - accessKeyId: %s
    secretEnv: TEST_MPAAS_SK_B
    appIds: [%s]
    rateLimit: %d
`, keyA, secretFile, app1, app2, limitA, keyB, app3, limitB)
	if err := os.WriteFile(credFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	h := teststack.New(t, teststack.Setup{
		Keys:   map[string]string{keyA: secretA, keyB: secretB},
		Faults: mpaassim.Faults{QuotaPerKey: map[string]int{keyA: quotaA, keyB: quotaB}},
		// PUSH_RATE_LIMIT caps both together, above their sum: it holds without slowing either.
		Env: map[string]string{"MPAAS_AK_ENV": "", "MPAAS_SK_ENV": "", "MPAAS_CREDENTIALS_FILE": credFile,
			"TEST_MPAAS_SK_B": secretB, "PUSH_RATE_LIMIT": "400", "PUSH_ATTEMPTS": "50", "PUSH_MAX_DELIVER": "20"},
	})
	workers := []*teststack.Worker{h.StartWorker(), h.StartWorker(), h.StartWorker()}

	// Campaign a: 400 calls over app1 and app2; campaign b: 900 calls on app3.
	var ids, idsB []string
	for i := range 4 {
		j := teststack.NewJob(fmt.Sprintf("cred-a-%d", i), fmt.Sprintf("cred-a-%d", i), 1000)
		j.AppID = []string{app1, app2}[i%2]
		h.PublishJob(h.Topo.BulkSubject("cred-a"), j)
		ids = append(ids, j.JobID)
	}
	for i := range 9 {
		j := teststack.NewJob(fmt.Sprintf("cred-b-%d", i), fmt.Sprintf("cred-b-%d", i), 1000)
		j.AppID = app3
		h.PublishJob(h.Topo.BulkSubject("cred-b"), j)
		ids, idsB = append(ids, j.JobID), append(idsB, j.JobID)
	}

	// Each second, what each key had accepted and throttled, until B's jobs are
	// done: the window in which both campaigns ran.
	type sample struct {
		at                   time.Time
		accA, accB, thA, thB int64
	}
	read := func() sample {
		st := h.Sim.Stats()
		return sample{time.Now(), st.ByKey[keyA].Accepted, st.ByKey[keyB].Accepted, st.ByKey[keyA].Throttled, st.ByKey[keyB].Throttled}
	}
	stop, sampled := make(chan struct{}), make(chan []sample, 1)
	stopSampling := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopSampling) // a failed test's sampler stops too
	go func() {
		s := []sample{read()}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s = append(s, read())
			case <-stop:
				sampled <- append(s, read())
				return
			}
		}
	}()
	results, leftB := map[string]job.Result{}, len(idsB)
	for len(results) < len(ids) {
		r := h.Result(45 * time.Second)
		if r.Status != job.StatusSucceeded || r.Sent != 1000 {
			t.Fatalf("job %s: %s, %d sent: %s", r.JobID, r.Status, r.Sent, r.Error)
		}
		if _, dup := results[r.JobID]; dup {
			t.Fatalf("a second result for %s", r.JobID)
		}
		results[r.JobID] = r
		if strings.HasPrefix(r.JobID, "cred-b-") {
			if leftB--; leftB == 0 {
				stopSampling()
			}
		}
	}
	samples := <-sampled

	// Figures per credential per second, while both ran.
	var lines []string
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		d := b.at.Sub(a.at).Seconds()
		lines = append(lines, fmt.Sprintf("%5.1fs  A %3.0f calls/s (%3.0f throttled/s)  B %3.0f calls/s (%3.0f throttled/s)",
			b.at.Sub(samples[0].at).Seconds(), float64(b.accA-a.accA)/d, float64(b.thA-a.thA)/d, float64(b.accB-a.accB)/d, float64(b.thB-a.thB)/d))
	}
	first, last := samples[0], samples[len(samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	rateA, rateB := float64(last.accA-first.accA)/secs, float64(last.accB-first.accB)/secs
	t.Logf("accepted calls per credential per second while both campaigns ran (%.1f s):\n%s\nmean: A %.0f/s (quota %d, rateLimit %d), B %.0f/s (quota %d, rateLimit %d)",
		secs, strings.Join(lines, "\n"), rateA, quotaA, limitA, rateB, quotaB, limitB)

	st := h.Sim.Stats()
	if n := st.ByCode["SignatureDoesNotMatch"] + st.ByCode["InvalidAccessKeyId.NotFound"]; n != 0 {
		t.Errorf("%d calls refused for their signature or key: %v", n, st.ByCode)
	}
	// Signed with its own key: every call of app1 and app2 under A, of app3 under B, none under another.
	for key, apps := range map[string][]string{keyA: {app1, app2}, keyB: {app3}} {
		ks := st.ByKey[key]
		for _, app := range apps {
			if ks.Apps[app] == 0 {
				t.Errorf("no call of %s signed with %s: %v", app, key, ks.Apps)
			}
		}
		if len(ks.Apps) != len(apps) {
			t.Errorf("%s signed calls of %v, want %v only", key, ks.Apps, apps)
		}
	}
	if n := st.ByKey[teststack.KeyID].Calls + st.ByKey[""].Calls; n != 0 {
		t.Errorf("%d calls signed with neither credential's key", n)
	}
	// A was throttled and slowed; B never throttled, at its full rate.
	if st.ByKey[keyA].Throttled == 0 {
		t.Errorf("A (quota %d/s, rateLimit %d/s) was never throttled", quotaA, limitA)
	}
	if st.ByKey[keyB].Throttled != 0 {
		t.Errorf("B was throttled %d times: its rateLimit of %d/s is under its quota of %d/s", st.ByKey[keyB].Throttled, limitB, quotaB)
	}
	if rateB < 1.5*rateA {
		t.Errorf("B at %.0f calls/s and A at %.0f: B should run at its own rate, well above the throttled A", rateB, rateA)
	}
	// A's calls wait for A's slow limit while holding call slots: each
	// credential keeps a share of them (pipeline.CredentialReserve), so that B's
	// calls still find slots and B keeps near its rateLimit (0.6 of it: a loaded
	// 2-core machine under the race detector).
	if rateB < 0.6*limitB {
		t.Errorf("B at %.0f calls/s, under 0.6 of its rateLimit %d: A's throttling slowed B", rateB, limitB)
	}
	// Every worker's limits: A's adaptive rate cut below its rateLimit, B's untouched.
	for i, w := range workers {
		live := map[string]float64{}
		for _, c := range w.Stats().Credentials {
			live[c.Credential] = c.Rate
		}
		a, b := live[config.KeyPrefix(keyA)], live[config.KeyPrefix(keyB)]
		t.Logf("worker %d: credential rates in force: %v", i, live)
		if a <= 0 || a >= limitA {
			t.Errorf("worker %d: A's rate %v, want cut below its rateLimit %d", i, a, limitA)
		}
		if b != limitB {
			t.Errorf("worker %d: B's rate %v, want its rateLimit %d: A's throttling must not slow B", i, b, limitB)
		}
	}
	// Each credential's limit lives under the layout's Credential keys (config.RedisKeys, docs/redis.md).
	layout := (&config.Worker{RedisPrefix: h.Prefix}).RedisKeys()
	keys, err := testenv.Redis(t).Keys(context.Background(), h.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k] = true
		if inLayout(layout, k) == "" {
			t.Errorf("key %q is none of the layout's", k)
		}
	}
	for _, k := range []string{layout.Credential + keyA + ":adaptive", layout.Credential + keyB + ":adaptive"} {
		if !seen[k] {
			t.Errorf("no key %s: %q", k, keys)
		}
	}
	// The stats show each credential by its AccessKey id's first characters, never a secret.
	body, _ := json.Marshal(workers[0].Stats())
	for _, s := range []string{secretA, secretB, keyA, keyB} {
		if strings.Contains(string(body), s) {
			t.Errorf("the worker's stats hold %q: %s", s, body)
		}
	}
}

// A job for an app that no credential serves is rejected naming appId, with a
// dead letter; the worker goes on with the others.
func TestAnAppWithoutCredentialIsRejected(t *testing.T) {
	t.Parallel()
	credFile := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(credFile, []byte(`{"credentials":[{"accessKeyId":"LTAI5tOnlyOne","secretEnv":"TEST_SK_ONE","appIds":["ONEX570DA89211721"],"rateLimit":100}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	h := teststack.New(t, teststack.Setup{Keys: map[string]string{"LTAI5tOnlyOne": "one-secret"},
		Env: map[string]string{"MPAAS_AK_ENV": "", "MPAAS_SK_ENV": "", "MPAAS_CREDENTIALS_FILE": credFile, "TEST_SK_ONE": "one-secret"}})
	w := h.StartWorker()
	stranger := teststack.NewJob("no-credential", "nocred", 3)
	stranger.AppID = "ONEX570DA89219999"
	served := teststack.NewJob("served", "served", 3)
	h.PublishJob(h.Topo.EventsSubject("cred"), stranger)
	h.PublishJob(h.Topo.EventsSubject("cred"), served)
	got := h.ResultsFor([]string{stranger.JobID, served.JobID}, 15*time.Second)
	r := got[stranger.JobID]
	if r.Status != job.StatusRejected || !strings.Contains(r.Error, "appId") {
		t.Fatalf("a job for an app no credential serves: %s %q, want rejected naming appId", r.Status, r.Error)
	}
	if r := got[served.JobID]; r.Status != job.StatusSucceeded || r.Sent != 3 {
		t.Fatalf("the served app's job: %+v", r)
	}
	if dl := h.DeadLetter(5 * time.Second); !strings.Contains(string(dl.Data()), stranger.AppID) {
		t.Fatalf("dead letter %s is not the rejected job", dl.Data())
	}
	if n := h.Sim.Stats().ByKey["LTAI5tOnlyOne"].Apps[stranger.AppID]; n != 0 {
		t.Fatalf("%d calls for the app without a credential", n)
	}
	creds := w.Stats().Credentials
	if len(creds) != 1 || creds[0].Credential != config.KeyPrefix("LTAI5tOnlyOne") || creds[0].Calls == 0 || creds[0].Rate != 100 {
		t.Fatalf("the worker's credentials: %+v", creds)
	}
	// What enqueue status and the console show: the same, over every worker.
	o, err := ops.New(h.NC, h.Topo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := o.Credentials(ctx)
	if err != nil || len(all) != 1 || all[0].Credential != config.KeyPrefix("LTAI5tOnlyOne") || all[0].Workers != 1 || all[0].Calls != creds[0].Calls || all[0].Rate != 100 {
		t.Fatalf("ops.Credentials: %+v, %v", all, err)
	}
}
