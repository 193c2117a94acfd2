package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// chromium is Debian's browser, or a skip (a failure in CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "chromium (apt-get install -y chromium)", exec.ErrNotFound)
	return ""
}

// The console in headless Chromium against a worker: the page loads, a
// campaign's bar moves, the pause button stops its calls at the emulator and
// resume finishes it; a dead letter opens and its replay sends it. Each page
// is photographed (into CONSOLE_SCREENSHOTS when set, for docs/console.md).
func TestConsoleInTheBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	s := newStack(t, mpaassim.Faults{Latency: 20 * time.Millisecond}, func(w *teststack.WorkerSetup) { w.Config.RateLimit = 4 })
	_, srv := consoleOn(t, s, "")
	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 900), chromedp.Flag("disable-gpu", true))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		var err error
		for range 3 { // a node found may be gone when the page redraws before the click
			if err = chromedp.Do(ctx, steps...); err == nil || !strings.Contains(err.Error(), "No node") {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		// One evaluation: the page redraws itself every 2 s, and a node found
		// by one call may be gone by the next.
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+string(q)+`) || {}).innerText || ""`))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	waitText := func(sel, want string, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := text(sel)
			if strings.Contains(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s says %q, want %q", sel, got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	publishCampaign(t, s.url, "spring", 20, 300) // 60 calls of 100 at 4/s: about 15 s
	card := `section[data-campaign="spring"]`
	do("the campaigns page", chromedp.Navigate(srv.URL+"/#/campaigns"), chromedp.WaitVisible(chromedp.CSS(card)))
	first := waitText(card+` [data-field="progress"]`, "targets done", 10*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for text(card+` [data-field="progress"]`) == first {
		if time.Now().After(deadline) {
			t.Fatalf("the bar did not move from %q", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+card+` .bar .fill').style.width`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress moved: %q → %q (bar %s)", first, text(card+` [data-field="progress"]`), width)
	do("the chart", chromedp.WaitVisible(chromedp.CSS(card+` svg.chart`)))
	shoot("console-campaigns.png")

	do("pause", chromedp.Click(chromedp.CSS(card+` button[data-action="pause"]`)))
	waitText("#message", "paused", 10*time.Second)
	paused := time.Now()
	time.Sleep(2500 * time.Millisecond)
	if last := lastCall(s.sim, "spring"); last.After(paused.Add(time.Second)) {
		t.Fatalf("a call of the paused campaign started %s after the click", last.Sub(paused))
	}
	waitText(card+` [data-field="state"]`, "paused", 5*time.Second)
	calls := callsOf(s.sim, "spring")
	if calls >= 60 {
		t.Fatalf("the pause came too late: %d of 60 calls made", calls)
	}
	do("resume", chromedp.Click(chromedp.CSS(card+` button[data-action="resume"]`)))
	waitText("#message", "parked jobs back", 15*time.Second)
	if got := results(t, s.url, "spring", 20, 60*time.Second); len(got) != 20 {
		t.Fatalf("after resume %d of 20 jobs have a result", len(got))
	}
	waitText(card+` [data-field="state"]`, "done", 10*time.Second)

	do("the overview", chromedp.Navigate(srv.URL+"/#/"), chromedp.WaitVisible(chromedp.CSS(`#workers`)))
	waitText("#workers", "ready", 5*time.Second)
	shoot("console-overview.png")

	// A dead letter: mPaaS answers 8011 to everything until the replay.
	s.sim.SetFaults(mpaassim.Faults{Rate8011: 1})
	dead := &job.Job{JobID: "browser-dead", TaskName: "t", AppID: "dead", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
		TemplateName: "n", TargetMsgkey: job.Targets{{Target: "u1", MsgKey: "k1"}}, TemplateKeyValue: job.Object(`{"secret":"value"}`)}
	body, _ := dead.Encode()
	if _, stderr, err := s.enqueue(t, string(body), "--subject", "push.jobs.browser", "-"); err != nil {
		t.Fatalf("publishing: %v %s", err, stderr)
	}
	do("the dead letters", chromedp.Navigate(srv.URL+"/#/dlq"))
	waitText("#view", "browser-dead", 30*time.Second)
	if got := text(`#dlq tr[data-seq] button.replay`); got != "Replay" {
		t.Fatalf("a replayable letter offers Replay in the list: %q", got)
	}
	shoot("console-dead-letters.png")
	do("a filter that matches nothing", chromedp.SetValue(chromedp.CSS(`#dlqfilter input[name="error"]`), "no such error"),
		chromedp.Click(chromedp.CSS(`#dlqfilter button`)))
	waitText("#view", "None that match.", 10*time.Second)
	do("the filter on the letter's error", chromedp.SetValue(chromedp.CSS(`#dlqfilter input[name="error"]`), "8011"),
		chromedp.Click(chromedp.CSS(`#dlqfilter button`)))
	waitText("#view", "browser-dead", 10*time.Second)
	do("one letter", chromedp.Click(chromedp.CSS(`a.letter`)), chromedp.WaitVisible(chromedp.CSS(`#letter`)))
	letter := waitText("#letter", "template values hidden", 5*time.Second)
	if strings.Contains(letter, `"value"`) || !strings.Contains(letter, "8011") {
		t.Fatalf("the letter must show the error and hide the template values:\n%s", letter)
	}
	shoot("console-dead-letter.png")
	s.sim.SetFaults(mpaassim.Faults{})
	do("replay", chromedp.Click(chromedp.CSS(`#replay`)))
	waitText("#message", "replayed browser-dead as", 15*time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for callsOf(s.sim, "dead") == 0 || s.sim.Delivered("dead", "w", "u1", "k1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed job was not sent")
		}
		time.Sleep(200 * time.Millisecond)
	}
	do("the job's result", chromedp.Navigate(srv.URL+"/#/dlq"), chromedp.SetValue(chromedp.CSS(`#jobid`), "spring.3"),
		chromedp.Click(chromedp.CSS(`#jobform button`)))
	waitText("#view", `"status": "succeeded"`, 10*time.Second)
	shoot("console-result.png")
}
