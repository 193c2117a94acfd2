package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/ops"
)

// campaignVerb is one of `enqueue campaign list|status|pause|resume|cancel|pace|delete`:
// flags and printing over the operations library, which writes the bucket; the
// workers carry out each change.
func campaignVerb(verb string) func(fs *flag.FlagSet) command {
	return func(fs *flag.FlagSet) command {
		reason, actor := "", ""
		if verb == "pause" || verb == "cancel" || verb == "resume" {
			fs.StringVar(&reason, "reason", "", "why, kept with the state (shown by status and list)")
		}
		if verb != "list" && verb != "status" {
			fs.StringVar(&actor, "actor", "", "who makes the change, kept with the state (default enqueue:USER@HOST)")
		}
		create := false
		if verb == "pause" || verb == "pace" {
			fs.BoolVar(&create, "create", false, "set the state of a campaign that has not run yet (to pause or pace it before it is loaded)")
		}
		wait := 10 * time.Second
		if verb == "resume" || verb == "cancel" || verb == "delete" {
			fs.DurationVar(&wait, "wait", wait, "how long to watch the workers bring the parked jobs back (0: do not watch)")
		}
		asJSON := false
		if verb == "list" || verb == "status" {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
		watch := false
		if verb == "status" {
			fs.BoolVar(&watch, "watch", false, "redraw the status with a progress bar until the campaign is done; exit 1 if anything failed")
		}
		return command{run: func(e *env, args []string) error {
			want := map[string]int{"list": 0, "pace": 2}[verb]
			if verb != "list" && verb != "pace" {
				want = 1
			}
			if len(args) != want {
				return usageError{fmt.Sprintf("campaign %s: want %s", verb, map[int]string{0: "no argument", 1: "NAME", 2: "NAME TARGETS-PER-SECOND"}[want])}
			}
			if verb == "list" {
				return e.campaignList(asJSON)
			}
			name := args[0]
			if err := campaign.ValidName(name); err != nil {
				return usageError{strings.TrimPrefix(err.Error(), campaign.ErrInvalid.Error()+": ")}
			}
			if actor == "" {
				actor = e.actor()
			}
			var err error
			switch verb {
			case "status":
				err = e.campaignStatus(name, asJSON, watch)
			case "pace":
				pace, perr := strconv.ParseFloat(args[1], 64)
				if perr != nil || pace < 0 || pace != pace || pace > 1e9 {
					return usageError{fmt.Sprintf("campaign pace %s %q: TARGETS-PER-SECOND is a number ≥ 0 (0: no pace of its own)", name, args[1])}
				}
				err = e.campaignPace(name, pace, actor, create)
			case "delete":
				err = e.campaignDelete(name, wait)
			default:
				err = e.campaignSet(name, verb, ops.Change{Reason: reason, Actor: actor, Create: create}, wait)
			}
			return refused(e, err)
		}}
	}
}

// refused turns the library's refusals (an unknown or canceled campaign) into
// a sentence and exit status 1.
func refused(e *env, err error) error {
	if errors.Is(err, ops.ErrUnknownCampaign) || errors.Is(err, ops.ErrCanceled) || errors.Is(err, ops.ErrNotFound) {
		fmt.Fprintln(e.stderr, "enqueue:", err)
		return exitError{1}
	}
	return err
}

// actor is who runs this command, as the bucket records it.
func (e *env) actor() string {
	name := e.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = "unknown"
		}
	}
	host, _ := os.Hostname()
	return "enqueue:" + name + "@" + host
}

// campaignSet pauses, resumes or cancels, then watches the workers bring back
// the parked jobs of a resumed or canceled campaign.
func (e *env) campaignSet(name, verb string, c ops.Change, wait time.Duration) error {
	c.State = map[string]string{"pause": campaign.Paused, "resume": campaign.Running, "cancel": campaign.Canceled}[verb]
	parked, err := e.ops.Parked(e.ctx, name)
	if err != nil {
		return err
	}
	if _, err := e.ops.SetState(e.ctx, name, c); err != nil {
		return err
	}
	switch verb {
	case "pause":
		fmt.Fprintf(e.stdout, "campaign %s paused: within a second no new call of it starts; its jobs wait in %s\n", name, e.topo.ParkedStream)
		return nil
	case "resume":
		fmt.Fprintf(e.stdout, "campaign %s running\n", name)
	case "cancel":
		fmt.Fprintf(e.stdout, "campaign %s canceled: nothing more is sent; its jobs end with status canceled ('enqueue campaign delete %s' lifts it)\n", name, name)
	}
	return e.watchUnpark(name, parked, wait)
}

// watchUnpark reports the workers moving the campaign's parked jobs back.
func (e *env) watchUnpark(name string, parked int, wait time.Duration) error {
	if parked == 0 || wait <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	left, err := e.ops.WaitUnparked(ctx, name)
	if err != nil {
		return err
	}
	if left > 0 {
		fmt.Fprintf(e.stdout, "%d of %d parked jobs still parked after %s: the workers move them back as soon as one runs ('enqueue campaign status %s' shows them)\n",
			left, parked, wait, name)
		return nil
	}
	fmt.Fprintf(e.stdout, "%d parked jobs back on the job stream (the workers moved them)\n", parked)
	return nil
}

func (e *env) campaignPace(name string, pace float64, actor string, create bool) error {
	if _, err := e.ops.Pace(e.ctx, name, pace, actor, create); err != nil {
		return err
	}
	if pace == 0 {
		fmt.Fprintf(e.stdout, "campaign %s: no pace of its own (the shared call rate still holds)\n", name)
	} else {
		fmt.Fprintf(e.stdout, "campaign %s paced at %g targets/s over all workers\n", name, pace)
	}
	return nil
}

func (e *env) campaignDelete(name string, wait time.Duration) error {
	parked, err := e.ops.Parked(e.ctx, name)
	if err != nil {
		return err
	}
	if err := e.ops.DeleteState(e.ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "campaign %s: state removed (it runs again, at no pace of its own)\n", name)
	return e.watchUnpark(name, parked, wait)
}

func (e *env) campaignList(asJSON bool) error {
	all, err := e.ops.Campaigns(e.ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(all)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CAMPAIGN\tSTATE\tPACE\tJOBS DONE\tSENT\tFAILED\tPARKED\tLAST CHANGE")
	for _, p := range all {
		state, pace := p.State.State, "-"
		if p.Invalid != "" {
			state = "unreadable"
		}
		if p.State.TargetsPerSecond > 0 {
			pace = strconv.FormatFloat(p.State.TargetsPerSecond, 'g', -1, 64) + "/s"
		}
		last := "-"
		if p.HasState {
			last = change(p.State)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\n", p.Campaign, state, pace, p.Done, p.Jobs(), p.Totals.Sent, p.Totals.Failed, p.Parked, last)
	}
	return w.Flush()
}

// change is one line of a state's audit: when, who, why.
func change(s campaign.State) string {
	out := s.State + " " + s.UpdatedAt.Format(time.RFC3339)
	if s.Actor != "" {
		out += " by " + s.Actor
	}
	if s.Reason != "" {
		out += " (" + s.Reason + ")"
	}
	return out
}

func (e *env) campaignStatus(name string, asJSON, watch bool) error {
	prev, err := e.ops.Progress(e.ctx, name)
	if err != nil {
		return err
	}
	if watch {
		return e.watchCampaign(name, prev)
	}
	if !clock.Sleep(e.ctx, time.Second) { // a second's progress gives the rate now
		return e.ctx.Err()
	}
	st, err := e.ops.Progress(e.ctx, name)
	if err != nil {
		return err
	}
	st.Rate(prev, time.Second)
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(st)
	}
	e.printStatus(st)
	return nil
}

func (e *env) printStatus(st *ops.Progress) {
	fmt.Fprintf(e.stdout, "campaign %s: %s", st.Campaign, st.State.State)
	if st.State.TargetsPerSecond > 0 {
		fmt.Fprintf(e.stdout, ", paced at %g targets/s", st.State.TargetsPerSecond)
	}
	if st.State.Reason != "" {
		fmt.Fprintf(e.stdout, " (%s)", st.State.Reason)
	}
	fmt.Fprintln(e.stdout)
	if st.TotalsError != "" {
		fmt.Fprintf(e.stdout, "  warning: the workers answered without totals (%s): done and sent read 0 for now\n", st.TotalsError)
	}
	if st.Invalid != "" {
		fmt.Fprintf(e.stdout, "  warning: %s\n", st.Invalid)
	}
	fmt.Fprintf(e.stdout, "  jobs: %d queued, %d in flight, %d parked, %d done (%d canceled); %d workers answered\n",
		st.Queued, st.InFlight, st.Parked, st.Done, st.Totals.Canceled, st.Workers)
	fmt.Fprintf(e.stdout, "  targets: %d sent, %d duplicates, %d failed\n", st.Totals.Sent, st.Totals.Duplicates, st.Totals.Failed)
	e.printFailedBy("    ", st.Totals.FailedBy)
	if t := st.Totals; t.Recalled() {
		fmt.Fprintf(e.stdout, "  recall: %d revoked, %d scheduled tasks canceled, %d calls failed\n", t.Revoked, t.CanceledScheduled, t.RecallFailed)
		e.printFailedBy("    ", t.RecallFailedBy)
	}
	fmt.Fprintf(e.stdout, "  now: %.0f targets/s", st.TargetsPerSecond)
	if st.SecondsLeft > 0 {
		fmt.Fprintf(e.stdout, ", about %s left at that rate", (time.Duration(st.SecondsLeft) * time.Second).Round(time.Second))
	}
	fmt.Fprintln(e.stdout)
	for i, c := range st.Changes {
		if i == 3 {
			break
		}
		if i == 0 {
			fmt.Fprintln(e.stdout, "  changes (newest first):")
		}
		fmt.Fprintf(e.stdout, "    %s\n", change(c))
	}
}

// line is the one-line progress of a campaign.
func line(st *ops.Progress) string {
	return fmt.Sprintf("%s %s: %d/%d jobs done, %d sent, %d duplicates, %d failed, %.0f targets/s, %d queued, %d in flight, %d parked",
		st.Campaign, st.State.State, st.Done, st.Jobs(), st.Totals.Sent, st.Totals.Duplicates,
		st.Totals.Failed, st.TargetsPerSecond, st.Queued, st.InFlight, st.Parked)
}

// watchCampaign redraws the status every second (a bar on a terminal, a line
// every 2 s otherwise) until the campaign is done, or gone (its totals lost,
// nothing queued or parked: exit 1 with a sentence).
func (e *env) watchCampaign(name string, prev *ops.Progress) error {
	f, tty := e.stdout.(*os.File)
	tty = tty && term.IsTerminal(int(f.Fd()))
	var bar *progressbar.ProgressBar
	lastLine := time.Time{}
	for {
		if !clock.Sleep(e.ctx, time.Second) {
			return e.ctx.Err()
		}
		st, err := e.ops.Progress(e.ctx, name)
		if errors.Is(err, ops.ErrUnknownCampaign) {
			fmt.Fprintf(e.stderr, "enqueue: campaign %s: nothing of it is left to watch: no job queued, parked or in flight, and its totals are gone (Redis lost them, or they expired)\n", name)
			return exitError{1}
		}
		if err != nil {
			return err
		}
		st.Rate(prev, time.Second)
		prev = st
		total := int64(st.Jobs())
		if tty {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(name),
					progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth())
			}
			bar.ChangeMax64(max(total, 1))
			bar.Describe(fmt.Sprintf("%s %s · %d sent · %d failed · %.0f targets/s · jobs", name, st.State.State,
				st.Totals.Sent, st.Totals.Failed, st.TargetsPerSecond))
			_ = bar.Set(st.Done)
		} else if time.Since(lastLine) >= 2*time.Second {
			lastLine = time.Now()
			fmt.Fprintln(e.stdout, line(st))
		}
		if st.Finished() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(e.stdout)
			}
			e.printStatus(st)
			if st.Totals.Failed > 0 {
				return exitError{1}
			}
			return nil
		}
	}
}

// printFailedBy prints failed targets by code, in code order.
func (e *env) printFailedBy(indent string, byCode map[string]int) {
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(e.stdout, "%sfailed with %s: %d\n", indent, c, byCode[c])
	}
}
