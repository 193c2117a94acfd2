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

	"github.com/mpaas-push/pushworker/internal/harness"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
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
	code int
	body string
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
	return answer{resp.StatusCode, string(b)}
}

func TestConsoleShowsCampaignsAndItsButtonsControlThem(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *harness.WorkerSetup) { w.Config.RateLimit = 10 })
	c, srv := consoleOn(t, s, "")
	publishCampaign(t, s.url, "spring", 10, 300) // 30 calls of 100 at 10/s
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
	if v := view[0]; v.Campaign != "spring" || v.Jobs != 10 || v.State.State != "running" || v.Workers != 1 {
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
	paused := time.Now()
	time.Sleep(3 * time.Second)
	if last := lastCall(s.sim, "spring"); last.After(paused.Add(time.Second)) {
		t.Fatalf("a call of the paused campaign started %s after the pause", last.Sub(paused))
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pace", csrf, url.Values{"targetsPerSecond": {"-1"}}); a.code != 400 {
		t.Fatalf("a bad pace: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/pace", csrf, url.Values{"targetsPerSecond": {"2000"}}); a.code != 200 {
		t.Fatalf("pace: %d %s", a.code, a.body)
	}
	if a := call(t, "POST", srv.URL+"/api/campaigns/spring/resume", csrf, url.Values{}); a.code != 200 || !strings.Contains(a.body, "parked jobs back") {
		t.Fatalf("resume: %d %s", a.code, a.body)
	}
	if got := results(t, s.url, "spring", 10, 30*time.Second); len(got) != 10 {
		t.Fatalf("after resume %d of 10 jobs have a result", len(got))
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
	var list []deadLetter
	for deadline := time.Now().Add(30 * time.Second); len(list) == 0; time.Sleep(200 * time.Millisecond) {
		a := call(t, "GET", srv.URL+"/api/dlq", nil, nil)
		_ = json.Unmarshal([]byte(a.body), &list)
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %s", a.body)
		}
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
	newID := replayID("dead.0", list[0].Seq)
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
