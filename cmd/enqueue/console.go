package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/job"
)

//go:embed console
var consoleFiles embed.FS

// DefaultConsoleAddr is where enqueue console listens unless told otherwise.
const DefaultConsoleAddr = "127.0.0.1:8090"

// consoleSample is how often the console reads every campaign it knows, for
// the charts; the page asks for what is new as often.
const consoleSample = 2 * time.Second

func consoleFlags(fs *flag.FlagSet) command {
	addr := fs.String("addr", DefaultConsoleAddr, "address to listen on; anywhere but loopback needs CONSOLE_TOKEN or CONSOLE_TOKEN_FILE")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		token, err := consoleToken(e.getenv)
		if err != nil {
			return err
		}
		c, err := newConsole(e, token, *addr)
		if err != nil {
			return err
		}
		return c.serve(*addr)
	}}
}

// consoleToken is CONSOLE_TOKEN, or the first line of CONSOLE_TOKEN_FILE.
func consoleToken(getenv func(string) string) (string, error) {
	token, file := getenv("CONSOLE_TOKEN"), getenv("CONSOLE_TOKEN_FILE")
	if token != "" && file != "" {
		return "", errors.New("set CONSOLE_TOKEN or CONSOLE_TOKEN_FILE, not both")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("CONSOLE_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
		if token == "" {
			return "", fmt.Errorf("CONSOLE_TOKEN_FILE %s is empty", file)
		}
	}
	if token != "" && len(token) < 16 {
		return "", errors.New("the console token must have at least 16 characters")
	}
	return token, nil
}

// console is the operators' web console: pages that read NATS as enqueue's
// commands do, and buttons that run those commands.
type console struct {
	e     *env
	token []byte // empty: dev mode, loopback only and no token
	csrf  string // the value every POST must carry in X-CSRF-Token
	page  []byte // index.html with the CSRF value in it
	mux   *http.ServeMux

	mu        sync.Mutex
	last      []*ops.Progress     // every campaign, as last sampled
	sampleErr error               // why the last sample failed
	samples   map[string][]sample // campaign → its targets done every consoleSample over the last 10 minutes
}

type sample struct {
	At      time.Time `json:"at"`
	Targets int       `json:"targets"`
}

func newConsole(e *env, token, addr string) (*console, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %s: %w", addr, err)
	}
	if token == "" && !loopbackHost(host) {
		return nil, fmt.Errorf("--addr %s is not a loopback address: set CONSOLE_TOKEN or CONSOLE_TOKEN_FILE (every request then needs it)", addr)
	}
	c := &console{e: e, token: []byte(token), samples: map[string][]sample{}, mux: http.NewServeMux()}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	c.csrf = hex.EncodeToString(b[:])
	page, err := consoleFiles.ReadFile("console/index.html")
	if err != nil {
		return nil, err
	}
	c.page = bytes.ReplaceAll(page, []byte("{{CSRF}}"), []byte(c.csrf))
	c.routes()
	return c, nil
}

func (c *console) routes() {
	static, _ := fs.Sub(consoleFiles, "console")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(c.page)
	})
	c.mux.HandleFunc("GET /api/overview", c.api(c.overview))
	c.mux.HandleFunc("GET /api/campaigns", c.api(c.campaignsView))
	c.mux.HandleFunc("POST /api/campaigns/{name}/{verb}", c.api(c.campaignAction))
	c.mux.HandleFunc("GET /api/campaigns/{name}/report", c.api(c.report))
	c.mux.HandleFunc("GET /api/dlq", c.api(c.deadLetters))
	c.mux.HandleFunc("GET /api/dlq/{seq}", c.api(c.deadLetter))
	c.mux.HandleFunc("POST /api/dlq/{seq}/replay", c.api(c.replay))
	c.mux.HandleFunc("POST /api/dlq/{seq}/delete", c.api(c.deleteLetter))
	c.mux.HandleFunc("POST /api/dlq/purge", c.api(c.purge))
	c.mux.HandleFunc("GET /api/jobs/{id}", c.api(c.result))
}

// serve listens until the command's context ends, sampling the campaigns.
func (c *console) serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	ctx, cancel := context.WithCancel(c.e.ctx)
	defer cancel()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		c.sampleLoop(ctx)
	}()
	mode := "token required"
	if len(c.token) == 0 {
		mode = "dev mode: loopback only, no token"
	}
	fmt.Fprintf(c.e.stderr, "console on http://%s/ (%s); Ctrl-C stops it\n", ln.Addr(), mode)
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	cancel()
	<-sampled
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP checks every request before it reaches a page: in dev mode it
// must come from loopback and name a loopback host (no DNS rebinding); else it
// must carry the token (Authorization: Bearer, or the cookie that ?token= sets
// once). A POST must carry the CSRF value of the page and come from its origin.
func (c *console) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &secured{ResponseWriter: rw}
	securityHeaders(w.Header())
	if len(c.token) == 0 {
		remote, _, _ := net.SplitHostPort(r.RemoteAddr)
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !loopbackHost(remote) || !loopbackHost(host) {
			http.Error(w, "forbidden: this console runs without a token and answers loopback only", http.StatusForbidden)
			return
		}
	} else if !c.authorized(w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		origin := r.Header.Get("Origin")
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(c.csrf)) != 1 ||
			origin != "" && origin != "http://"+r.Host && origin != "https://"+r.Host {
			http.Error(w, "forbidden: missing or wrong CSRF token (actions come from the console's own page)", http.StatusForbidden)
			return
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// securityHeaders are on every answer of the console, errors included.
func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
}

// secured sets the security headers again as the answer's header is written:
// a handler may have removed one (the file server's errors drop Cache-Control).
type secured struct {
	http.ResponseWriter
	wrote bool
}

func (s *secured) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		securityHeaders(s.Header())
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *secured) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *secured) Unwrap() http.ResponseWriter { return s.ResponseWriter }

const consoleCookie = "pushworker_console"

// authorized answers 401 (and nothing else) unless r carries the token. A GET
// with ?token= sets the cookie and redirects to the same page without it.
func (c *console) authorized(w http.ResponseWriter, r *http.Request) bool {
	if q := r.URL.Query().Get("token"); q != "" && r.Method == http.MethodGet && c.is(q) {
		http.SetCookie(w, &http.Cookie{Name: consoleCookie, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: r.TLS != nil})
		u := *r.URL
		query := u.Query()
		query.Del("token")
		u.RawQuery = query.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && c.is(bearer) {
		return true
	}
	if ck, err := r.Cookie(consoleCookie); err == nil && c.is(ck.Value) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="pushworker console"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	return false
}

func (c *console) is(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), c.token) == 1
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// api runs f with the request's context and answers its typed value as JSON,
// or its error as JSON with the status the library's sentinel errors call for.
func (c *console) api(f func(e *env, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := *c.e
		e.ctx, e.stdout, e.stderr, e.stdin = r.Context(), io.Discard, io.Discard, strings.NewReader("")
		v, err := f(&e, r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(statusOf(err))
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		if v == nil {
			v = struct{}{}
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// statusOf is the HTTP status of an error of the operations library.
func statusOf(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, campaign.ErrInvalid), errors.Is(err, ops.ErrInvalidJobID):
		return http.StatusBadRequest
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, ops.ErrNotFound), errors.Is(err, ops.ErrUnknownCampaign):
		return http.StatusNotFound
	case errors.Is(err, ops.ErrCanceled), errors.Is(err, ops.ErrNothingToRecall), errors.Is(err, ops.ErrRejected),
		errors.Is(err, ops.ErrUnreadable):
		return http.StatusConflict // refused in the state it is in, and the error says why
	}
	return http.StatusInternalServerError
}

// overview is the lanes, the workers, the credentials, the rate and the dead letters.
func (c *console) overview(e *env, r *http.Request) (any, error) {
	st, err := e.ops.Status(e.ctx)
	if err != nil {
		return nil, err
	}
	workers, err := e.workers()
	if err != nil {
		return nil, err
	}
	each := make([][]ops.CredentialStatus, 0, len(workers))
	for _, w := range workers {
		each = append(each, w.Credentials)
	}
	return map[string]any{"status": st, "workers": workers, "credentials": ops.SumCredentials(each), "at": time.Now().UTC()}, nil
}

// workerStats is the part of a worker's stats answer the console shows.
type workerStats struct {
	Worker        string         `json:"worker"`
	ID            string         `json:"id"`
	Version       string         `json:"version"`
	Started       time.Time      `json:"started"`
	Ready         bool           `json:"ready"`
	Paused        []workerPause  `json:"paused"`
	CallsInFlight int            `json:"callsInFlight"`
	RateLimit     float64        `json:"rateLimit"`
	Throttled     int64          `json:"throttled"`
	JobsInHand    map[string]int `json:"jobsInHand"`
	Campaigns     []string       `json:"campaigns"`
	// Credentials are the AccessKeys it signs with, by their ids' first characters.
	Credentials []ops.CredentialStatus `json:"credentials"`
}

type workerPause struct {
	Cause string `json:"cause"`
	Error string `json:"error"`
}

// workers asks every worker's stats endpoint.
func (e *env) workers() ([]workerStats, error) {
	raw, err := e.ops.Workers(e.ctx)
	out := []workerStats{}
	for _, data := range raw {
		var w workerStats
		if json.Unmarshal(data, &w) == nil && w.ID != "" {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Worker < out[j].Worker })
	return out, err
}

// campaignView is one campaign on the campaigns page.
type campaignView struct {
	*ops.Progress
	Samples []sample `json:"samples"`
	Jobs    int      `json:"jobs"` // done, queued, in flight and parked
	// Actions are the controls that apply to the campaign in its state now.
	Actions []string `json:"actions"`
}

// campaignsView is every campaign seen, as last sampled, by name.
func (c *console) campaignsView(e *env, r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sampleErr != nil && c.last == nil {
		return nil, c.sampleErr
	}
	out := make([]campaignView, 0, len(c.last))
	for _, p := range c.last {
		out = append(out, campaignView{Progress: p, Samples: append([]sample(nil), c.samples[p.Campaign]...), Jobs: p.Jobs(),
			Actions: actions(p)})
	}
	return out, nil
}

// actions are the controls a campaign offers in its state: a canceled one only
// recall; a finished one pace and recall.
func actions(p *ops.Progress) []string {
	switch {
	case p.State.State == campaign.Canceled:
		return []string{"revoke"}
	case p.State.State == campaign.Paused:
		return []string{"resume", "pace", "cancel", "revoke"}
	case p.Finished():
		return []string{"revoke"}
	}
	return []string{"pause", "pace", "cancel", "revoke"}
}

// sampleLoop reads every campaign every consoleSample until ctx ends: one
// question to the workers per sample, whatever the number of campaigns.
func (c *console) sampleLoop(ctx context.Context) {
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(consoleSample):
		}
	}
}

func (c *console) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, consoleSample)
	defer cancel()
	all, err := c.e.ops.Campaigns(sctx)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sampleErr = err
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range all {
		seen[p.Campaign] = true
		done := p.Totals.Sent + p.Totals.Duplicates + p.Totals.Failed
		samples := c.samples[p.Campaign]
		if n := len(samples); n > 0 {
			if dt := now.Sub(samples[n-1].At).Seconds(); dt > 0 {
				p.TargetsPerSecond = max(0, float64(done-samples[n-1].Targets)/dt)
			}
		}
		if p.TargetsPerSecond > 0 && p.Done > 0 {
			p.SecondsLeft = float64(p.Queued+p.InFlight+p.Parked) * float64(p.Totals.Targets) / float64(p.Done) / p.TargetsPerSecond
		}
		samples = append(samples, sample{At: now.UTC(), Targets: done})
		for len(samples) > 0 && now.Sub(samples[0].At) > 10*time.Minute {
			samples = samples[1:]
		}
		c.samples[p.Campaign] = samples
	}
	for name := range c.samples {
		if !seen[name] {
			delete(c.samples, name)
		}
	}
	c.last = all
}

// applied puts a state the console just wrote into the last sample, so that
// the page's next read shows it and the controls that follow from it without
// waiting for the next sample. A campaign not in the sample gets no card.
func (c *console) applied(name string, s campaign.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.last {
		if p.Campaign == name {
			changed := *p
			changed.State, changed.HasState, changed.Invalid = s, true, ""
			c.last[i] = &changed
		}
	}
}

// actor is who a console action is recorded as in the campaign's state.
func (c *console) actor(r *http.Request) string {
	if len(c.token) == 0 {
		return "console (loopback)"
	}
	return "console"
}

// campaignAction is a button: pause, resume, cancel, pace or revoke, through
// the operations library; the workers carry out the change.
func (c *console) campaignAction(e *env, r *http.Request) (any, error) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	if err := campaign.ValidName(name); err != nil {
		return nil, usageError{err.Error()}
	}
	switch verb {
	case "pause", "resume", "cancel":
		state := map[string]string{"pause": campaign.Paused, "resume": campaign.Running, "cancel": campaign.Canceled}[verb]
		parked, err := e.ops.Parked(r.Context(), name)
		if err != nil {
			return nil, err
		}
		s, err := e.ops.SetState(r.Context(), name, ops.Change{State: state, Reason: clip(r.FormValue("reason")), Actor: c.actor(r)})
		if err != nil {
			return nil, err
		}
		c.applied(name, s)
		msg := "campaign " + name + " " + s.State
		if state != campaign.Paused && parked > 0 {
			msg += fmt.Sprintf(": the workers move its %d parked jobs back", parked)
		}
		return map[string]any{"campaign": name, "state": s, "parked": parked, "message": msg}, nil
	case "pace":
		pace, err := strconv.ParseFloat(r.FormValue("targetsPerSecond"), 64)
		if err != nil || pace < 0 || pace != pace || pace > 1e9 {
			return nil, usageError{"targetsPerSecond is a number ≥ 0 (0: no pace of its own)"}
		}
		s, err := e.ops.Pace(r.Context(), name, pace, c.actor(r), false)
		if err != nil {
			return nil, err
		}
		c.applied(name, s)
		return map[string]any{"campaign": name, "state": s, "message": fmt.Sprintf("campaign %s paced at %g targets/s", name, pace)}, nil
	case "revoke":
		// The admin jobs are published; the workers run them, and the campaign's
		// status counts what they revoked.
		plan, err := e.ops.PlanRecall(r.Context(), job.ActionRevoke, name, nil)
		if err != nil {
			return nil, err
		}
		if err := e.ops.Recall(r.Context(), plan); err != nil {
			return nil, err
		}
		return map[string]any{"campaign": name, "jobs": len(plan.Jobs), "calls": plan.Calls(), "scheduledLeftAlone": plan.Scheduled,
			"message": fmt.Sprintf("revoke of %s: %d admin jobs published, %d calls to make",
				name, len(plan.Jobs), plan.Units())}, nil
	}
	return nil, usageError{fmt.Sprintf("unknown action %q: pause, resume, cancel, pace or revoke", verb)}
}

// clip is at most 200 bytes of a value a request gave.
func clip(s string) string {
	if len(s) <= 200 {
		return s
	}
	return strings.ToValidUTF8(s[:200], "") + "…"
}

// deadLetters is one page of dead letters, newest first, as dlq list reads
// it: ?campaign=&reason=&error=&before=&limit=.
func (c *console) deadLetters(e *env, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := ops.Filter{Campaign: q.Get("campaign"), Reason: q.Get("reason"), ErrorContains: q.Get("error")}
	var err error
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, usageError{"before is a dead letter's sequence"}
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > ops.MaxLimit {
			return nil, usageError{fmt.Sprintf("limit is a number from 1 to %d", ops.MaxLimit)}
		}
	}
	o := e.ops
	return o.DeadLetters(e.ctx, f)
}

// letter is one dead letter as the console shows it: the job as received with
// its template values hidden.
type letter struct {
	ops.DeadLetter
	Job json.RawMessage `json:"job"`
}

func letterSeq(r *http.Request) (uint64, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		return 0, usageError{"a dead letter is named by its sequence"}
	}
	return seq, nil
}

func (c *console) deadLetter(e *env, r *http.Request) (any, error) {
	seq, err := letterSeq(r)
	if err != nil {
		return nil, err
	}
	o := e.ops
	d, err := o.DeadLetter(e.ctx, seq)
	if err != nil {
		return nil, err
	}
	return letter{DeadLetter: d, Job: redact(d.Body)}, nil
}

// replay replays one letter as dlq replay does: never with force, so the
// console replays only what the command would without it.
func (c *console) replay(e *env, r *http.Request) (any, error) {
	seq, err := letterSeq(r)
	if err != nil {
		return nil, err
	}
	o := e.ops
	out, err := o.ReplayDeadLetters(e.ctx, ops.Select{Seqs: []uint64{seq}}, false)
	if err != nil {
		return nil, err
	}
	rp := out[0]
	if rp.Err != nil {
		return nil, rp.Err
	}
	return map[string]string{"message": fmt.Sprintf("replayed %s as %s: %d targets to %s", rp.Letter.JobID, rp.NewID, rp.Targets, rp.Subject)}, nil
}

func (c *console) deleteLetter(e *env, r *http.Request) (any, error) {
	seq, err := letterSeq(r)
	if err != nil {
		return nil, err
	}
	o := e.ops
	if err := o.DeleteDeadLetter(e.ctx, seq); err != nil {
		return nil, err
	}
	return map[string]string{"message": fmt.Sprintf("deleted dead letter %d", seq)}, nil
}

// purge removes the letters of the form's campaign, reason or error (at least one).
func (c *console) purge(e *env, r *http.Request) (any, error) {
	f := ops.Filter{Campaign: r.FormValue("campaign"), Reason: r.FormValue("reason"), ErrorContains: r.FormValue("error")}
	o := e.ops
	n, err := o.PurgeDeadLetters(e.ctx, f)
	if errors.Is(err, ops.ErrNoFilter) {
		return nil, usageError{err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": fmt.Sprintf("removed %d dead letter(s) %s", n, purgeWhat(f)), "removed": n}, nil
}

// result is a job's stored result, by job id, as ops.Result finds it; the
// template values a stored result could carry are hidden as in a dead letter.
func (c *console) result(e *env, r *http.Request) (any, error) {
	res, err := e.ops.Result(e.ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return redact(body), nil
}

// redact is body with every template value replaced: the values of
// templateKeyValue and extendedParams objects, wherever they are (a job's, or
// each targetMsgs entry's). A body that is not JSON is shown as its size.
func redact(body []byte) json.RawMessage {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		out, _ := json.Marshal(map[string]string{"unreadable": fmt.Sprintf("%d bytes that are not JSON", len(body))})
		return out
	}
	out, _ := json.Marshal(hide(v, false))
	return out
}

func hide(v any, values bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = hide(val, values || k == "templateKeyValue" || k == "extendedParams")
		}
		return x
	case []any:
		for i := range x {
			x[i] = hide(x[i], values)
		}
		return x
	default:
		if values {
			return "…"
		}
		return v
	}
}
