package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/job"
)

// recallFlags are `enqueue revoke` and `enqueue scheduled cancel`: what the
// stored results say was sent (or scheduled) becomes admin jobs, followed to
// the end. The planning and following are internal/ops'; this is flags and printing.
func recallFlags(action string) func(fs *flag.FlagSet) command {
	return func(fs *flag.FlagSet) command {
		name := fs.String("campaign", "", "every job of this campaign (from the stored results)")
		timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the admin jobs' results")
		dryRun := fs.Bool("dry-run", false, "print the plan (admin jobs, calls by action, per app, workspace and campaign) and publish nothing")
		return command{run: func(e *env, args []string) error {
			if (*name == "") == (len(args) == 0) {
				return usageError{"want --campaign NAME or JOB-ID…, not both"}
			}
			if *name != "" {
				if err := campaign.ValidName(*name); err != nil {
					return usageError{strings.TrimPrefix(err.Error(), campaign.ErrInvalid.Error()+": ")}
				}
			}
			return e.recall(action, *name, args, *dryRun, *timeout)
		}}
	}
}

// recall plans, prints the plan, and unless a dry run publishes the admin jobs
// and follows them. Nothing to take back is said and is exit status 1, as is a
// call that failed.
func (e *env) recall(action, name string, ids []string, dryRun bool, timeout time.Duration) error {
	plan, err := e.ops.PlanRecall(e.ctx, action, name, ids)
	if errors.Is(err, ops.ErrNothingToRecall) {
		fmt.Fprintf(e.stderr, "enqueue: %s.\n", strings.TrimPrefix(err.Error(), ops.ErrNothingToRecall.Error()+": "))
		return exitError{1}
	}
	if err != nil {
		return err
	}
	e.printPlan(plan)
	if dryRun {
		fmt.Fprintln(e.stdout, "dry run: nothing published")
		return nil
	}
	if err := e.ops.Recall(e.ctx, plan); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d admin jobs published\n", len(plan.Jobs))
	last := time.Now()
	pr, err := e.ops.FollowRecall(e.ctx, plan, timeout, func(pr ops.RecallProgress) {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stderr, "%d of %d admin jobs done: %d calls succeeded, %d failed\n", pr.Done, pr.Jobs, pr.Succeeded+pr.Earlier, pr.Failed)
		}
	})
	e.printRecall(pr)
	if err != nil {
		return err
	}
	if pr.Failed > 0 {
		return exitError{1}
	}
	return nil
}

// printPlan says what the recall will do: admin jobs and calls by action, then
// per app, workspace and campaign, and what revoke leaves alone.
func (e *env) printPlan(p *ops.RecallPlan) {
	fmt.Fprintf(e.stdout, "%s: %d stored push results read; %d admin jobs, %d calls: %s\n",
		map[string]string{job.ActionRevoke: "revoke", job.ActionCancelScheduled: "scheduled cancel"}[p.Action],
		p.Results, len(p.Jobs), p.Units(), callsByAction(p.Calls()))
	for _, s := range p.Sources {
		c := s.Campaign
		if c == "" {
			c = "(event jobs)"
		}
		fmt.Fprintf(e.stdout, "  app %s, workspace %s, campaign %s: %d admin jobs, %s\n", s.AppID, s.WorkspaceID, c, s.Jobs, callsByAction(s.Calls(p.Action)))
	}
	if p.Scheduled > 0 {
		fmt.Fprintf(e.stdout, "  %d scheduled chunks left alone (strategyType 1 or 2): use 'enqueue scheduled cancel' for the tasks not run yet\n", p.Scheduled)
	}
	if p.NoTaskID > 0 {
		fmt.Fprintf(e.stdout, "  %d PushMultiple or PushBroadcast chunks left alone: mPaaS answered no task id\n", p.NoTaskID)
	}
}

func callsByAction(calls map[string]int) string {
	var parts []string
	for _, api := range []string{job.APIRevokeMessage, job.APIRevokeTask, job.APICancelScheduler} {
		if calls[api] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", calls[api], api))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (e *env) printRecall(pr ops.RecallProgress) {
	fmt.Fprintf(e.stdout, "done: %d calls succeeded (%d by an earlier run), %d failed\n", pr.Succeeded+pr.Earlier, pr.Earlier, pr.Failed)
	e.printFailedBy("  ", pr.FailedBy)
}

// scheduledListFlags is `enqueue scheduled list`.
func scheduledListFlags(fs *flag.FlagSet) command {
	app := fs.String("app-id", "", "appId (default: every app of the stored results' scheduled pushes)")
	ws := fs.String("workspace-id", "", "workspaceId (with --app-id)")
	asJSON := fs.Bool("json", false, "print JSON")
	return command{run: func(e *env, args []string) error {
		if len(args) != 0 || (*app == "") != (*ws == "") {
			return usageError{"scheduled list takes --app-id and --workspace-id together, or neither"}
		}
		return e.scheduledList(*app, *ws, *asJSON)
	}}
}

type scheduledList struct {
	AppID       string              `json:"appId"`
	WorkspaceID string              `json:"workspaceId"`
	Tasks       []job.ScheduledTask `json:"tasks"`
}

func (e *env) scheduledList(app, ws string, asJSON bool) error {
	apps := [][2]string{{app, ws}}
	if app == "" {
		plan, err := e.ops.PlanRecall(e.ctx, job.ActionCancelScheduled, "", nil)
		if err != nil && !errors.Is(err, ops.ErrNothingToRecall) {
			return err
		}
		apps = nil
		seen := map[[2]string]bool{}
		for _, s := range plan.Sources {
			if a := [2]string{s.AppID, s.WorkspaceID}; !seen[a] {
				seen[a] = true
				apps = append(apps, a)
			}
		}
		if len(apps) == 0 {
			fmt.Fprintln(e.stdout, "no scheduled push among the stored results: give --app-id and --workspace-id")
			return nil
		}
	}
	var lists []scheduledList
	for _, a := range apps {
		req, _ := json.Marshal(map[string]string{"appId": a[0], "workspaceId": a[1]})
		// A worker bounds the list at 30 s; one that died meanwhile never answers.
		ctx, cancel := context.WithTimeout(e.ctx, scheduledListWait)
		m, err := e.nc.RequestWithContext(ctx, e.topo.ScheduledListSubject(), req)
		cancel()
		if err != nil {
			return fmt.Errorf("asking a worker (%s): %w", e.topo.ScheduledListSubject(), err)
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
			return fmt.Errorf("the worker answered %s: %s", code, m.Header.Get("Nats-Service-Error"))
		}
		var l scheduledList
		if err := json.Unmarshal(m.Data, &l); err != nil {
			return err
		}
		lists = append(lists, l)
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(lists)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "APP\tWORKSPACE\tUNIQUE ID\tTYPE\tSTRATEGY\tPUSH TIME")
	n := 0
	for _, l := range lists {
		for _, t := range l.Tasks {
			n++
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", l.AppID, l.WorkspaceID, t.UniqueID, t.Type, t.StrategyType, t.PushTime.Format(time.RFC3339))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d pending scheduled tasks\n", n)
	return nil
}

// scheduledListWait is how long enqueue waits for a worker's scheduled list:
// the worker's own bound (30 s for every page, retry and slot) and a margin.
const scheduledListWait = 35 * time.Second
