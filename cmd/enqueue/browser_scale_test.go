package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// Scale of TestConsoleAtScale: the figures.
const (
	scaleCampaigns = 200
	scaleLetters   = 100_000
	scalePaused    = 5
)

// timing is one refresh of the page as app.js records it (window.consoleTimings).
type timing struct {
	Page      string  `json:"page"`
	Start     float64 `json:"start"` // ms since the page was opened
	End       float64 `json:"end"`
	Ms        float64 `json:"ms"`        // request, reading and drawing
	RequestMs float64 `json:"requestMs"` // the request and its JSON
}

// The console in Chromium with 200 campaigns that ran (5 of them paused) and
// 100,000 dead letters, on an embedded server: the time until the 200 cards
// are drawn, the time of the page's own refreshes, the dead-letter page's
// first 50 and the next 50; then the same pages 390 px wide, with nothing
// wider than the screen and every button in reach. The figures are logged
// (docs/console.md quotes them); the bounds asserted are sanity bounds for a loaded
// 2-core machine, not the targets.
func TestConsoleAtScale(t *testing.T) {
	browser := chromium(t)
	if testing.Short() {
		t.Skip("100,000 dead letters: not in -short")
	}
	s := newStack(t, mpaassim.Faults{})
	c, srv := consoleOn(t, s, "")

	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	topo := topology.Default()

	// 200 campaigns of one job of one target each.
	began := time.Now()
	names := make([]string, scaleCampaigns)
	for i := range names {
		names[i] = fmt.Sprintf("scale-%03d", i)
		j := &job.Job{JobID: names[i] + ".0", TaskName: "t", AppID: "scale", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: "n", TargetMsgkey: job.Targets{{Target: names[i] + "-u", MsgKey: "k"}}}
		body, _ := j.Encode()
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: topo.BulkSubject(names[i]), Data: body,
			Header: nats.Header{jetstream.MsgIDHeader: []string{j.JobID}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitPublished(t, js)
	deadline := time.Now().Add(90 * time.Second)
	for {
		a := call(t, "GET", srv.URL+"/api/campaigns", nil, nil)
		var view []campaignView
		_ = json.Unmarshal([]byte(a.body), &view)
		done := 0
		for _, v := range view {
			if v.Done == 1 {
				done++
			}
		}
		if done == scaleCampaigns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d campaigns done", done, scaleCampaigns)
		}
		time.Sleep(500 * time.Millisecond)
	}
	kv, err := js.KeyValue(t.Context(), topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names[:scalePaused] {
		st := campaign.State{State: campaign.Paused, Actor: "scale test", Reason: "held", UpdatedAt: time.Now().UTC()}
		if _, err := kv.Put(t.Context(), name, st.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d campaigns run in %s", scaleCampaigns, time.Since(began).Round(time.Millisecond))
	// The console's sample: one question to the workers and one read of each
	// stream, whatever the number of campaigns.
	var samples []float64
	for range 5 {
		began = time.Now()
		all, err := c.e.ops.Campaigns(t.Context())
		if err != nil || len(all) != scaleCampaigns {
			t.Fatalf("ops.Campaigns: %d campaigns, %v", len(all), err)
		}
		samples = append(samples, float64(time.Since(began).Microseconds())/1000)
	}
	a := call(t, "GET", srv.URL+"/api/campaigns", nil, nil)
	t.Logf("the console's sample of %d campaigns (ops.Campaigns): median %.1f ms, max %.1f ms; GET /api/campaigns: %d KB",
		scaleCampaigns, median(samples), maxOf(samples), len(a.body)>>10)

	// 100,000 small dead letters, as workers write them, from those campaigns.
	began = time.Now()
	body := []byte(`{"jobId":"x","appId":"scale"}`)
	for i := range scaleLetters {
		name := names[i%scaleCampaigns]
		d := wire.DeadLetter{JobID: fmt.Sprintf("%s.dead%d", name, i), Reason: wire.ReasonFailed, Error: "8011 rate limited",
			Subject: topo.BulkSubject(name), Deliveries: 4, Body: body}
		if _, err := js.PublishMsgAsync(d.Msg(topo.DLQSubject(d.JobID))); err != nil {
			t.Fatal(err)
		}
		if i%4000 == 3999 {
			waitPublished(t, js)
		}
	}
	waitPublished(t, js)
	stream, err := js.Stream(t.Context(), topo.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != scaleLetters { // the stream discards its oldest when full: all must be kept
		t.Fatalf("the dead-letter stream keeps %d letters (%d bytes of %d), want %d", info.State.Msgs, info.State.Bytes,
			info.Config.MaxBytes, scaleLetters)
	}
	t.Logf("%d dead letters stored in %s (%.1f MB of the stream's %d MB)", scaleLetters, time.Since(began).Round(time.Millisecond),
		float64(info.State.Bytes)/1e6, info.Config.MaxBytes>>20)

	b := newBrowser(t, browser, 1200, 900)

	// The campaigns page: from the navigation until the 200 cards are drawn.
	b.do("the campaigns page", chromedp.Navigate(srv.URL+"/#/campaigns"))
	b.waitTrue(fmt.Sprintf(`document.querySelectorAll("section.campaign").length === %d`, scaleCampaigns), 30*time.Second)
	var first timing
	for _, tm := range b.timings() {
		if tm.Page == "#/campaigns" {
			first = tm
			break
		}
	}
	t.Logf("campaigns page: %d cards drawn %.0f ms after the navigation started (request %.0f ms, refresh %.0f ms)",
		scaleCampaigns, first.End, first.RequestMs, first.Ms)
	if first.End == 0 || first.End > 10_000 {
		t.Errorf("the 200 cards took %.0f ms from the navigation", first.End)
	}
	paused := b.eval(`[...document.querySelectorAll('section.campaign [data-field="state"]')].filter((e) => e.textContent === "paused").length`)
	resume := b.eval(`document.querySelectorAll('section.campaign button[data-action="resume"]').length`)
	pause := b.eval(`document.querySelectorAll('section.campaign button[data-action="pause"]').length`)
	if paused != fmt.Sprint(scalePaused) || resume != fmt.Sprint(scalePaused) || pause != "0" {
		t.Errorf("paused cards %s, Resume buttons %s, Pause buttons %s: want %d, %d and 0 (the others are done)", paused, resume, pause,
			scalePaused, scalePaused)
	}

	// The page's own refreshes (every 2 s): request to the cards redrawn.
	var refreshes []float64
	var requests []float64
	deadline = time.Now().Add(30 * time.Second)
	for len(refreshes) < 5 {
		refreshes, requests = nil, nil
		for _, tm := range b.timings() {
			if tm.Page == "#/campaigns" && tm.Start > first.Start {
				refreshes, requests = append(refreshes, tm.Ms), append(requests, tm.RequestMs)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes of the campaigns page in 30 s", len(refreshes))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("campaigns refresh of %d cards: median %.0f ms, max %.0f ms (request median %.0f ms) over %d refreshes",
		scaleCampaigns, median(refreshes), maxOf(refreshes), median(requests), len(refreshes))
	if maxOf(refreshes) > 5000 {
		t.Errorf("a refresh of %d campaigns took %.0f ms", scaleCampaigns, maxOf(refreshes))
	}

	// The dead letters: the newest 50, then the next 50.
	mark := b.lastEnd()
	b.do("the dead letters", chromedp.Navigate(srv.URL+"/#/dlq"))
	b.waitTrue(`document.querySelectorAll("#dlq tr[data-seq]").length === 50`, 20*time.Second)
	firstPage := b.refreshAfter("#/dlq", mark)
	top := b.eval(`document.querySelector("#dlq tr[data-seq]").dataset.seq`)
	if top != fmt.Sprint(info.State.LastSeq) {
		t.Errorf("the first row is letter %s, want the newest, %d", top, info.State.LastSeq)
	}
	if got := b.eval(`document.querySelector("#view h2").textContent`); !strings.Contains(got, "100,000") {
		t.Errorf("the page's title: %q", got)
	}
	t.Logf("dead letters: the newest 50 of %d drawn in %.0f ms (request %.0f ms)", scaleLetters, firstPage.Ms, firstPage.RequestMs)
	if firstPage.Ms > 2000 {
		t.Errorf("the first page of dead letters took %.0f ms", firstPage.Ms)
	}
	mark = b.lastEnd()
	clicked := time.Now()
	b.do("older", chromedp.Click(chromedp.CSS("#older")))
	want := fmt.Sprint(info.State.LastSeq - 50)
	b.waitTrue(`(document.querySelector("#dlq tr[data-seq]") || {dataset: {}}).dataset.seq === "`+want+`"`, 10*time.Second)
	wall := time.Since(clicked)
	older := b.refreshAfter("#/dlq", mark)
	t.Logf("dead letters: \"older\" drew the next 50 in %.0f ms (request %.0f ms; %s from the click as the test saw it)",
		older.Ms, older.RequestMs, wall.Round(time.Millisecond))
	if older.Ms > 2000 {
		t.Errorf("the next page of dead letters took %.0f ms", older.Ms)
	}
	if got := b.eval(`document.querySelectorAll("#dlq tr[data-seq]").length`); got != "50" {
		t.Errorf("the older page has %s rows", got)
	}
	b.do("newest", chromedp.Click(chromedp.CSS("#newest")))
	b.waitTrue(`(document.querySelector("#dlq tr[data-seq]") || {dataset: {}}).dataset.seq === "`+top+`"`, 10*time.Second)

	// 390 px wide: nothing wider than the screen; the buttons in reach.
	b.do("a narrow screen", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateScale(2)))
	b.do("the campaigns page, narrow", chromedp.Navigate(srv.URL+"/#/campaigns"))
	b.waitTrue(fmt.Sprintf(`document.querySelectorAll("section.campaign").length === %d`, scaleCampaigns), 30*time.Second)
	b.fits("campaigns", `section.campaign button`)
	b.shoot("console-narrow.png")
	b.do("the dead letters, narrow", chromedp.Navigate(srv.URL+"/#/dlq"))
	b.waitTrue(`document.querySelectorAll("#dlq tr[data-seq]").length === 50`, 20*time.Second)
	b.fits("dead letters", `#dlqfilter button, #dlq button.replay, #older`)
	b.shoot("console-narrow-dead-letters.png")
	b.do("the header's form, narrow", chromedp.SetValue(chromedp.CSS(`#jobid`), "scale-007.0"),
		chromedp.Click(chromedp.CSS(`#jobform button`)))
	b.waitTrue(`document.querySelector("#result") !== null`, 10*time.Second)
}

func waitPublished(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(3 * time.Minute):
		t.Fatalf("publishing took over 3 minutes (%d pending)", js.PublishAsyncPending())
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// browserTest is a headless Chromium for one test.
type browserTest struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, path string, width, height int) *browserTest {
	t.Helper()
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(width, height), chromedp.Flag("disable-gpu", true))...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel)
	return &browserTest{t: t, ctx: ctx}
}

func (b *browserTest) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	var err error
	for range 3 { // a node found may be gone when the page redraws before the click
		if err = chromedp.Do(b.ctx, steps...); err == nil || !strings.Contains(err.Error(), "No node") {
			break
		}
	}
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval is an expression's value as text, in one evaluation (the page redraws
// itself every 2 s).
func (b *browserTest) eval(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (b *browserTest) waitTrue(expr string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for b.eval(`!!(`+expr+`)`) != "true" {
		if time.Now().After(deadline) {
			b.t.Fatalf("not so after %s: %s", within, expr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *browserTest) timings() []timing {
	b.t.Helper()
	var out []timing
	if err := json.Unmarshal([]byte(b.eval(`JSON.stringify(window.consoleTimings || [])`)), &out); err != nil {
		b.t.Fatal(err)
	}
	return out
}

func (b *browserTest) lastEnd() float64 {
	b.t.Helper()
	tm := b.timings()
	if len(tm) == 0 {
		return 0
	}
	return tm[len(tm)-1].End
}

// refreshAfter is the first refresh of page that started after mark and drew it.
func (b *browserTest) refreshAfter(page string, mark float64) timing {
	b.t.Helper()
	for _, tm := range b.timings() {
		if tm.Page == page && tm.Start >= mark {
			return tm
		}
	}
	b.t.Fatalf("no refresh of %s recorded after %.0f ms", page, mark)
	return timing{}
}

// fits checks that the page is no wider than the screen and that each of
// buttons (a selector) lies within it, visible and the element at its centre.
func (b *browserTest) fits(page, buttons string) {
	b.t.Helper()
	q, _ := json.Marshal(buttons)
	got := b.eval(`JSON.stringify((() => {
  const w = window.innerWidth, out = { width: document.documentElement.scrollWidth, viewport: w, bad: [], buttons: 0 };
  for (const el of document.querySelectorAll(` + string(q) + `)) {
    out.buttons++;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.left < 0 || r.right > w + 1) { out.bad.push(el.textContent + " at " + Math.round(r.left) + "–" + Math.round(r.right)); continue; }
    if (out.buttons > 12) continue; // the first cards are enough for the centre check
    el.scrollIntoView({ block: "center" });
    const c = el.getBoundingClientRect(), hit = document.elementFromPoint(c.left + c.width / 2, c.top + c.height / 2);
    if (hit !== el && !el.contains(hit)) out.bad.push(el.textContent + " covered by " + (hit ? hit.tagName + "." + hit.className : "nothing"));
  }
  window.scrollTo(0, 0);
  return out;
})())`)
	var r struct {
		Width, Viewport, Buttons int
		Bad                      []string
	}
	if err := json.Unmarshal([]byte(got), &r); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("%s at %d px: the document is %d px wide; %d buttons", page, r.Viewport, r.Width, r.Buttons)
	if r.Viewport != 390 || r.Width > 392 {
		b.t.Errorf("%s: the document is %d px wide on a %d px screen", page, r.Width, r.Viewport)
	}
	if r.Buttons == 0 || len(r.Bad) > 0 {
		b.t.Errorf("%s: %d buttons; out of reach: %v", page, r.Buttons, r.Bad)
	}
}

// shoot saves a screenshot of the screen into CONSOLE_SCREENSHOTS when it is set.
func (b *browserTest) shoot(name string) {
	b.t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
