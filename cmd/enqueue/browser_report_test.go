package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
)

// The campaign card's delivery report in headless Chromium: "not ready yet"
// while the emulator has no figures, then pushed, arrived and opened with their
// rates, summed over the campaign's push tasks and its PushTemplate window,
// and the time fetched. Photographed into CONSOLE_SCREENSHOTS when set.
func TestConsoleReportInTheBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	s := newStack(t, mpaassim.Faults{})
	s.sim.SetAnalysis(mpaassim.Analysis{Delay: time.Hour})
	want := reportCampaign(t, s, "autumn", 2, 120, 10)
	_, srv := consoleOn(t, s, "")

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 900), chromedp.Flag("disable-gpu", true))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	card := `section[data-campaign="autumn"]`
	text := func(sel string) string {
		t.Helper()
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+string(q)+`) || {}).innerText || ""`))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	waitText := func(sel, want string) string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if got := text(sel); strings.Contains(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s says %q, want %q", sel, text(sel), want)
			}
		}
	}
	click := func(what string) {
		t.Helper()
		// One evaluation: the page redraws itself every 2 s.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('`+card+` button[data-action="report"]').click(), true`)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/campaigns"), chromedp.WaitVisible(chromedp.CSS(card+` button[data-action="report"]`))); err != nil {
		t.Fatal(err)
	}
	click("report")
	got := waitText(card+` [data-field="report"]`, "not ready yet")
	if !strings.Contains(got, "fetched "+time.Now().UTC().Format("2006-01-02")) {
		t.Fatalf("the report says %q, want the time it was fetched", got)
	}

	s.sim.SetAnalysis(mpaassim.Analysis{})
	click("fetch again")
	waitText(card+` [data-field="pushed"]`, fmt.Sprint(want.Pushed))
	arrived := fmt.Sprintf("%d (%.1f%%)", want.Arrived, 100*want.ArrivalRate())
	opened := fmt.Sprintf("%d (%.1f%%)", want.Opened, 100*want.OpenRate())
	if a, o := text(card+` [data-field="arrived"]`), text(card+` [data-field="opened"]`); a != arrived || o != opened {
		t.Fatalf("arrived %q opened %q, want %q and %q", a, o, arrived, opened)
	}
	state := text(card + ` .report [data-field="report-state"]`)
	if !strings.Contains(state, "push tasks: 4 of 4 counted") || !strings.Contains(state, "TEMPLATE pushes of autumn") {
		t.Fatalf("the report's sources: %q", state)
	}
	t.Logf("the card's report: %q", text(card+` [data-field="report"]`))
	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shots, "console-report.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
