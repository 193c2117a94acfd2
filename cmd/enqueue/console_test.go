package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/topology"
)

// consoleOn is a console on s's server, with token ("" for dev mode), served
// on a loopback test server; its sampling runs until the test ends.
func consoleOn(t *testing.T, s *stack, token string) (*console, *httptest.Server) {
	t.Helper()
	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	o, err := ops.New(nc, topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{ctx: ctx, nc: nc, js: js, ops: o, topo: topology.Default(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		getenv: func(string) string { return "" }}
	c, err := newConsole(e, token, DefaultConsoleAddr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.sampleLoop(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

type answer struct {
	code   int
	body   string
	header http.Header
}

func call(t *testing.T, method, u string, header http.Header, form url.Values) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	for k, v := range header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func TestConsoleShowsCampaignsAndItsButtonsControlThem(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) { w.Config.RateLimit = 10 })
	c, srv := consoleOn(t, s, "")
	publishCampaign(t, s.url, "spring", 20, 300) // 60 calls of 100 at 10/s: 6 s, paused well before its end
	csrf := http.Header{"X-Csrf-Token": {c.csrf}}

	var view []campaignView
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a := call(t, "GET", srv.URL+"/api/campaigns", nil, nil)
		if a.code != 200 {
			t.Fatalf("campaigns: %d %s", a.code, a.body)
		}
		view = nil
		_ = json.Unmarshal([]byte(a.body), &view)
		if len(view) == 1 && view[0].Totals.Sent > 0 && len(view[0].Samples) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the campaign must show with its progress: %s", a.body)
		}
	}
	if v := view[0]; v.Campaign != "spring" || v.Jobs != 20 || v.State.State != "running" || v.Workers != 1 {
		t.Fatalf("campaign view: %+v", v)
	}

	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pause", nil, url.Values{}); a.code != 403 || !strings.Contains(a.body, "CSRF") {
		t.Fatalf("a POST without the page's CSRF value: %d %s", a.code, a.body)
	}
	forged := http.Header{"X-Csrf-Token": {c.csrf}, "Origin": {"http://evil.example"}}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pause", forged, url.Values{}); a.code != 403 {
		t.Fatalf("a POST from another origin: %d %s", a.code, a.body)
	}
	a := call(t, "POST", srv.URL+"/api/campaigns/spring/pause", csrf, url.Values{})
	if a.code != 200 || !strings.Contains(a.body, "campaign spring paused") {
		t.Fatalf("pause: %d %s", a.code, a.body)
	}
	// The page's next read shows the new state and its controls, before the next sample.
	view = nil
	if a := call(t, "GET", srv.URL+"/api/campaigns", nil, nil); json.Unmarshal([]byte(a.body), &view) != nil || len(view) != 1 ||
		view[0].State.State != "paused" || strings.Join(view[0].Actions, ",") != "resume,pace,cancel,revoke" {
		t.Fatalf("right after the pause: %s", a.body)
	}
	paused := time.Now()
	time.Sleep(3 * time.Second)
	if last := lastCall(s.sim, "spring"); last.After(paused.Add(time.Second)) {
		t.Fatalf("a call of the paused campaign started %s after the pause", last.Sub(paused))
	}
	// A refused action leaves no card behind; the controls follow the state.
	if a := call(t, "POST", srv.URL+"/api/campaigns/ghost/pause", csrf, url.Values{}); a.code != 404 || !strings.Contains(a.body, `campaign \"ghost\": unknown campaign`) {
		t.Fatalf("pausing a campaign that never ran: %d %s", a.code, a.body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a := call(t, "GET", srv.URL+"/api/campaigns", nil, nil)
		view = nil
		_ = json.Unmarshal([]byte(a.body), &view)
		if len(view) == 1 && view[0].State.State == "paused" {
			if got := strings.Join(view[0].Actions, ","); got != "resume,pace,cancel,revoke" {
				t.Fatalf("a paused campaign's controls: %s", got)
			}
			break
		}
		if len(view) != 1 || time.Now().After(deadline) {
			t.Fatalf("one card, paused: %s", a.body)
		}
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pace", csrf, url.Values{"targetsPerSecond": {"-1"}}); a.code != 400 {
		t.Fatalf("a bad pace: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pace", csrf, url.Values{"targetsPerSecond": {"2000"}}); a.code != 200 {
		t.Fatalf("pace: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/resume", csrf, url.Values{}); a.code != 200 || !strings.Contains(a.body, "parked jobs back") || !strings.Contains(a.body, `"actor":"console (loopback)"`) {
		t.Fatalf("resume: %d %s", a.code, a.body)
	}
	if got := results(t, s.url, "spring", 20, 30*time.Second); len(got) != 20 {
		t.Fatalf("after resume %d of 20 jobs have a result", len(got))
	}
	// Revoke goes through the library: a summary of what was published, never
	// the pairs; a campaign with nothing to revoke is a 409 that says so.
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/revoke", csrf, url.Values{}); a.code != 200 ||
		!strings.Contains(a.body, "admin jobs published") || !strings.Contains(a.body, `"RevokePushTask":60`) || strings.Contains(a.body, "spring-0-0") {
		t.Fatalf("revoke: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/ghost/revoke", csrf, url.Values{}); a.code != 409 || !strings.Contains(a.body, "nothing to") {
		t.Fatalf("revoke of nothing: %d %s", a.code, a.body)
	}
}

func TestConsoleTokenAndLoopback(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	const token = "s3cret-console-token"
	_, srv := consoleOn(t, s, token)
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong-token-wrong-token"}}} {
		a := call(t, "GET", srv.URL+"/api/overview", h, nil)
		if a.code != 401 || strings.TrimSpace(a.body) != "unauthorized" {
			t.Fatalf("a missing or wrong token: %d %q", a.code, a.body)
		}
	}
	if a := call(t, "GET", srv.URL+"/", nil, nil); a.code != 401 || strings.Contains(a.body, "csrf") {
		t.Fatalf("the page without the token: %d %q", a.code, a.body)
	}
	a := call(t, "GET", srv.URL+"/api/overview", http.Header{"Authorization": {"Bearer " + token}}, nil)
	if a.code != 200 || !strings.Contains(a.body, `"lanes"`) || strings.Contains(a.body, token) {
		t.Fatalf("with the token: %d %s", a.code, a.body)
	}
	// ?token= sets a cookie and sends the browser on without the token in its address.
	req, _ := http.NewRequest("GET", srv.URL+"/?token="+token, nil)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || strings.Contains(resp.Header.Get("Location"), token) || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("?token=: %d %s %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	if a := call(t, "GET", srv.URL+"/", http.Header{"Cookie": {consoleCookie + "=" + token}}, nil); a.code != 200 || !strings.Contains(a.body, "csrf-token") {
		t.Fatalf("the page with the cookie: %d", a.code)
	}

	// Dev mode (no token) answers loopback only, and only under a loopback host name.
	_, dev := consoleOn(t, s, "")
	req, _ = http.NewRequest("GET", dev.URL+"/api/overview", nil)
	req.Host = "rebound.example:8090"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("dev mode under another host name: %d", resp.StatusCode)
	}
	c, _ := consoleOn(t, s, "")
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://127.0.0.1:8090/api/overview", nil)
	r.RemoteAddr = "192.0.2.7:41000"
	c.ServeHTTP(rec, r)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "loopback only") {
		t.Fatalf("dev mode from outside loopback: %d %s", rec.Code, rec.Body.String())
	}
	if _, err := newConsole(&env{}, "", "0.0.0.0:8090"); err == nil || !strings.Contains(err.Error(), "CONSOLE_TOKEN") {
		t.Fatalf("dev mode off loopback must be refused: %v", err)
	}
	if _, err := consoleToken(func(k string) string { return map[string]string{"CONSOLE_TOKEN": "short"}[k] }); err == nil {
		t.Fatal("a short token must be refused")
	}
}

func TestConsoleDeadLetterHidesTemplateValuesAndReplays(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Rate8011: 1})
	c, srv := consoleOn(t, s, "")
	other, _ := consoleOn(t, s, "")
	publishCampaign(t, s.url, "dead", 1, 3) // personal values; 8011 every time: the job fails and is dead-lettered
	var list []ops.DeadLetter
	for deadline := time.Now().Add(30 * time.Second); len(list) == 0; time.Sleep(200 * time.Millisecond) {
		a := call(t, "GET", srv.URL+"/api/dlq", nil, nil)
		var page ops.Page
		_ = json.Unmarshal([]byte(a.body), &page)
		list = page.Letters
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %s", a.body)
		}
	}
	if !list[0].Replayable || list[0].Campaign != "dead" {
		t.Fatalf("the letter in the list: %+v", list[0])
	}
	letter := srv.URL + "/api/dlq/" + jsonNumber(list[0].Seq)
	a := call(t, "GET", letter, nil, nil)
	if a.code != 200 || !strings.Contains(a.body, `"templateKeyValue":{"n":"…"}`) || strings.Contains(a.body, `"n":"1"`) ||
		!strings.Contains(a.body, "dead-0-1") || !strings.Contains(a.body, `"reason":"failed"`) {
		t.Fatalf("one letter: the job with its template values hidden: %d %s", a.code, a.body)
	}
	if a := call(t, "GET", srv.URL+"/api/dlq/999999", nil, nil); a.code != 404 {
		t.Fatalf("an unknown letter: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", letter+"/replay", http.Header{"X-Csrf-Token": {other.csrf}}, url.Values{}); a.code != 403 {
		t.Fatalf("another console's CSRF value must not do: %d", a.code)
	}
	s.sim.SetFaults(mpaassim.Faults{})
	a = call(t, "POST", letter+"/replay", http.Header{"X-Csrf-Token": {c.csrf}}, url.Values{})
	if a.code != 200 || !strings.Contains(a.body, "replayed dead.0 as") {
		t.Fatalf("replay: %d %s", a.code, a.body)
	}
	newID := ops.ReplayID("dead.0", list[0].Seq)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a = call(t, "GET", srv.URL+"/api/jobs/"+newID, nil, nil)
		if a.code == 200 {
			break
		}
		if a.code != 404 || time.Now().After(deadline) {
			t.Fatalf("the replayed job's result: %d %s", a.code, a.body)
		}
	}
	if !strings.Contains(a.body, `"status":"succeeded"`) || !strings.Contains(a.body, `"sent":3`) {
		t.Fatalf("the replayed job's result: %s", a.body)
	}
	if a := call(t, "GET", srv.URL+"/api/dlq", nil, nil); strings.Contains(a.body, `"dead.0"`) {
		t.Fatalf("a replayed letter leaves the list: %s", a.body)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// The dead-letter page's API: one page at a time with its cursor, whether each
// letter replays, and delete and purge behind the page's CSRF value.
func TestConsoleDeadLetterPagesDeletesAndPurges(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	c, srv := consoleOn(t, s, "")
	body := []byte(jobLine("x", "u1"))
	storeLetters(t, s,
		wire.DeadLetter{JobID: "a.1", Reason: wire.ReasonFailed, Error: "8011", Subject: "push.jobs.bulk.a", Body: body},
		wire.DeadLetter{JobID: "a.2", Reason: wire.ReasonFailed, Error: "campaign canceled", Subject: "push.jobs.bulk.a", Body: body},
		wire.DeadLetter{JobID: "b.1", Reason: wire.ReasonRejected, Error: "appId: required", Subject: "push.jobs.bulk.b", Body: body})
	page := func(query string) ops.Page {
		t.Helper()
		a := call(t, "GET", srv.URL+"/api/dlq"+query, nil, nil)
		var p ops.Page
		if a.code != 200 || json.Unmarshal([]byte(a.body), &p) != nil {
			t.Fatalf("GET /api/dlq%s: %d %s", query, a.code, a.body)
		}
		return p
	}
	p := page("?limit=2")
	if len(p.Letters) != 2 || p.Letters[0].Seq != 3 || p.Next != 2 || p.Total != 3 || p.Letters[0].Replayable || p.Letters[1].Replayable {
		t.Fatalf("the first page: %+v", p)
	}
	if p = page("?limit=2&before=2"); len(p.Letters) != 1 || p.Letters[0].JobID != "a.1" || !p.Letters[0].Replayable || p.Next != 0 {
		t.Fatalf("the older page: %+v", p)
	}
	if p = page("?campaign=a&error=CANCELED"); len(p.Letters) != 1 || p.Letters[0].JobID != "a.2" ||
		!strings.Contains(p.Letters[0].NotReplayable, "canceled") {
		t.Fatalf("filtered: %+v", p)
	}
	if a := call(t, "GET", srv.URL+"/api/dlq?limit=0", nil, nil); a.code != 400 {
		t.Fatalf("a bad limit: %d %s", a.code, a.body)
	}
	csrf := http.Header{"X-Csrf-Token": {c.csrf}}
	if a := call(t, "POST", srv.URL+"/api/dlq/2/replay", csrf, url.Values{}); a.code != 409 || !strings.Contains(a.body, "campaign canceled") {
		t.Fatalf("the console replays only what dlq replay takes without --force: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/3/delete", nil, url.Values{}); a.code != 403 {
		t.Fatalf("a delete without the CSRF value: %d", a.code)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/3/delete", csrf, url.Values{}); a.code != 200 || !strings.Contains(a.body, "deleted dead letter 3") {
		t.Fatalf("delete: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/3/delete", csrf, url.Values{}); a.code != 404 {
		t.Fatalf("a deleted letter: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/purge", nil, url.Values{"campaign": {"a"}}); a.code != 403 {
		t.Fatalf("a purge without the CSRF value: %d", a.code)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/purge", csrf, url.Values{}); a.code != 400 {
		t.Fatalf("a purge without a filter: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/dlq/purge", csrf, url.Values{"campaign": {"a"}}); a.code != 200 || !strings.Contains(a.body, `"removed":2`) {
		t.Fatalf("purge: %d %s", a.code, a.body)
	}
	if p = page(""); p.Total != 0 || len(p.Letters) != 0 {
		t.Fatalf("after the purge: %+v", p)
	}
}

// Every answer of /api carries the security headers, its errors too: they are
// set before the request reaches a handler.
func TestConsoleAPIErrorsKeepTheSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	if _, stderr, err := s.enqueue(t, jobLine("seen-1", "u1"), "--wait", "-"); err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	_, srv := consoleOn(t, s, "")
	for path, want := range map[string]int{
		"/api/jobs/seen-1":  200,
		"/api/jobs/nobody":  404, // no such result
		"/api/jobs/bad..id": 400, // not a job id
		"/api/dlq/abc":      400, // not a sequence
		"/api/dlq/999":      404, // no such dead letter
		"/api/nothing":      404, // no such page
	} {
		a := call(t, "GET", srv.URL+path, nil, nil)
		if a.code != want {
			t.Errorf("%s: %d %s, want %d", path, a.code, a.body, want)
		}
		for h, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Cache-Control": "no-store", "Content-Security-Policy": "frame-ancestors 'none'"} {
			if !strings.Contains(a.header.Get(h), v) {
				t.Errorf("%s (%d): %s is %q, want %q in it", path, a.code, h, a.header.Get(h), v)
			}
		}
		if want == 404 && strings.HasPrefix(path, "/api/jobs/") && !strings.Contains(a.body, "nobody") {
			t.Errorf("%s: the error must name the job: %s", path, a.body)
		}
	}
	if a := call(t, "GET", srv.URL+"/api/jobs/seen-1", nil, nil); !strings.Contains(a.body, `"jobId":"seen-1"`) || !strings.Contains(a.body, `"status":"succeeded"`) {
		t.Fatalf("the console's result: %s", a.body)
	}
}

// Every answer carries the security headers docs/console.md promises, errors
// included: the checks' refusals, the mux's 404 and 405, the file server's 404
// (which drops a Cache-Control set before it) and the API's JSON errors.
func TestConsoleSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	const token = "headers-console-token"
	dev, err := newConsole(&env{ctx: context.Background()}, "", DefaultConsoleAddr)
	if err != nil {
		t.Fatal(err)
	}
	guarded, err := newConsole(&env{ctx: context.Background()}, token, "0.0.0.0:8090")
	if err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	for _, tc := range []struct {
		name   string
		c      *console
		method string
		path   string
		header http.Header
		remote string
		code   int
	}{
		{"the page", dev, "GET", "/", nil, "", 200},
		{"a static file", dev, "GET", "/static/app.js", nil, "", 200},
		{"a static file that is not there", dev, "GET", "/static/nothing.js", nil, "", 404},
		{"a path the console does not have", dev, "GET", "/nothing", nil, "", 404},
		{"a method the console takes nowhere", dev, "PUT", "/api/overview", nil, "", 405},
		{"a POST where only GET is served", dev, "POST", "/api/overview", http.Header{"X-Csrf-Token": {dev.csrf}}, "", 405},
		{"a POST without the CSRF value", dev, "POST", "/api/dlq/purge", nil, "", 403},
		{"dev mode from outside loopback", dev, "GET", "/api/overview", nil, "192.0.2.7:41000", 403},
		{"a bad request to the API (JSON)", dev, "GET", "/api/dlq/not-a-number", nil, "", 400},
		{"without the token", guarded, "GET", "/api/overview", nil, "", 401},
		{"a wrong token", guarded, "GET", "/", http.Header{"Authorization": {"Bearer wrong-token-wrong-token"}}, "", 401},
		{"?token= sets the cookie and redirects", guarded, "GET", "/?token=" + token, nil, "", 303},
		{"with the token, a file that is not there", guarded, "GET", "/static/nothing.css", bearer, "", 404},
		{"with the token, a bad job id", guarded, "GET", "/api/jobs/bad%20id", bearer, "", 400},
	} {
		r := httptest.NewRequest(tc.method, "http://127.0.0.1:8090"+tc.path, nil)
		r.RemoteAddr = "127.0.0.1:41000"
		if tc.remote != "" {
			r.RemoteAddr = tc.remote
		}
		for k, v := range tc.header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		tc.c.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body.String(), tc.code)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "no-store",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s (%d): %s is %q, want %q", tc.name, w.Code, k, got, want)
			}
		}
	}
}
