package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// recallFlags are `enqueue revoke` and `enqueue scheduled cancel`: what the
// stored results say was sent (or scheduled) becomes admin jobs, followed to the end.
func recallFlags(action string) func(fs *flag.FlagSet) command {
	return func(fs *flag.FlagSet) command {
		name := fs.String("campaign", "", "every job of this campaign (from the stored results)")
		timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the admin jobs' results")
		return command{run: func(e *env, args []string) error {
			if (*name == "") == (len(args) == 0) {
				return usageError{"want --campaign NAME or JOB-ID…, not both"}
			}
			if *name != "" {
				if err := campaign.ValidName(*name); err != nil {
					return usageError{strings.TrimPrefix(err.Error(), campaign.ErrInvalid.Error()+": ")}
				}
			}
			return e.recall(action, *name, args, *timeout)
		}}
	}
}

// source is what one stored result lets a recall take back.
type source struct {
	app, workspace, campaign string
	pairs                    job.Targets // sent with PushTemplate
	ids                      []string    // push task ids (revoke) or scheduled task ids (cancelScheduled)
}

// readResults reads the whole result stream and keeps the results wanted: the
// campaign's, or those of the job ids, or (neither given) all.
func (e *env) readResults(name string, ids []string) ([]job.Result, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []job.Result
	err := e.readAll(e.topo.ResultsStream, func(m jetstream.Msg) {
		var r job.Result
		if json.Unmarshal(m.Data(), &r) == nil && (name != "" && r.Campaign == name || want[r.JobID] || name == "" && len(want) == 0) {
			out = append(out, r)
		}
	})
	return out, err
}

// sources groups what the results sent (or scheduled) by app, workspace and campaign.
func sources(results []job.Result, action string) []*source {
	by := map[string]*source{}
	var order []string
	for _, r := range results {
		if r.Status == job.StatusRejected || strings.HasPrefix(r.API, "Revoke") || r.API == push.APICancelScheduler {
			continue // nothing was sent, or it is an admin job's result
		}
		k := r.AppID + "\x00" + r.WorkspaceID + "\x00" + r.Campaign
		s := by[k]
		if s == nil {
			s = &source{app: r.AppID, workspace: r.WorkspaceID, campaign: r.Campaign}
			by[k] = s
			order = append(order, k)
		}
		for _, c := range r.Chunks {
			if c.Status != job.ChunkSent {
				continue
			}
			scheduled := len(c.Data) == 32
			switch {
			case action == job.ActionCancelScheduled && scheduled:
				s.ids = append(s.ids, c.Data)
			case action == job.ActionRevoke && !scheduled && r.API == job.APIMultiple && c.Data != "":
				s.ids = append(s.ids, c.Data)
			case action == job.ActionRevoke && !scheduled && r.API != job.APIMultiple:
				s.pairs = append(s.pairs, c.TargetMsgkey...)
			}
		}
	}
	out := make([]*source, 0, len(order))
	for _, k := range order {
		if s := by[k]; len(s.pairs)+len(s.ids) > 0 {
			s.ids = unique(s.ids)
			out = append(out, s)
		}
	}
	return out
}

func unique(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// adminJobs cuts a source into admin jobs of at most per units, with ids derived
// from what they carry: running the same recall again publishes the same jobs.
func adminJobs(s *source, action, resultPrefix string, per int) []*job.Admin {
	var jobs []*job.Admin
	add := func(pairs job.Targets, ids []string) {
		a := &job.Admin{AppID: s.app, WorkspaceID: s.workspace, Action: action, TargetMsgkey: pairs}
		if action == job.ActionCancelScheduled {
			a.UniqueIDs = ids
		} else {
			a.TaskIDs = ids
		}
		body, _ := a.Encode()
		sum := sha256.Sum256(body)
		a.JobID = action + "-" + hex.EncodeToString(sum[:8])
		a.ReplyTo = resultPrefix + "admin." + a.JobID
		jobs = append(jobs, a)
	}
	for p := s.pairs; len(p) > 0; {
		n := min(per, len(p))
		add(p[:n:n], nil)
		p = p[n:]
	}
	for ids := s.ids; len(ids) > 0; {
		n := min(per, len(ids))
		add(nil, ids[:n:n])
		ids = ids[n:]
	}
	return jobs
}

func (e *env) recall(action, name string, ids []string, timeout time.Duration) error {
	results, err := e.readResults(name, ids)
	if err != nil {
		return err
	}
	srcs := sources(results, action)
	var jobs []*job.Admin
	subjects := map[string]string{}
	for _, s := range srcs {
		for _, a := range adminJobs(s, action, e.topo.ResultPrefix(), job.DefaultMaxTargets) {
			jobs = append(jobs, a)
			subjects[a.JobID] = e.topo.AdminSubject(s.campaign)
		}
	}
	verb := map[string]string{job.ActionRevoke: "revoke", job.ActionCancelScheduled: "cancel"}[action]
	if len(jobs) == 0 {
		fmt.Fprintf(e.stdout, "nothing to %s: %d results read, none with what %s takes\n", verb, len(results), verb)
		return nil
	}
	units := 0
	for _, a := range jobs {
		body, _ := a.Encode()
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		_, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: subjects[a.JobID], Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{a.JobID}}})
		cancel()
		if err != nil {
			return fmt.Errorf("publishing %s: %w", a.JobID, err)
		}
		units += a.Units()
	}
	fmt.Fprintf(e.stdout, "%d results read: %d admin jobs published (%d calls to make)\n", len(results), len(jobs), units)
	return e.followAdmin(jobs, timeout)
}

// followAdmin reads the admin jobs' results as a stream and prints the totals.
func (e *env) followAdmin(jobs []*job.Admin, timeout time.Duration) error {
	want := map[string]bool{}
	for _, a := range jobs {
		want[a.JobID] = true
	}
	t := campaign.Totals{FailedBy: map[string]int{}}
	done := map[string]bool{}
	last := time.Now()
	err := e.follow(e.topo.ResultPrefix()+"admin.>", timeout, func(r *job.Result) bool {
		if want[r.JobID] && !done[r.JobID] {
			done[r.JobID] = true
			t.Add(r)
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stderr, "%d of %d admin jobs done: %d done, %d failed\n", len(done), len(want), t.Sent+t.Duplicates, t.Failed)
		}
		return len(done) >= len(want)
	})
	e.printRecall(t)
	if errors.Is(err, errTimedOut) {
		return fmt.Errorf("%d of %d admin jobs ended within %s: are the workers running?", len(done), len(want), timeout)
	}
	if err != nil {
		return err
	}
	if t.Failed > 0 {
		return exitError{1}
	}
	return nil
}

func (e *env) printRecall(t campaign.Totals) {
	fmt.Fprintf(e.stdout, "done: %d calls succeeded (%d by an earlier run), %d failed\n", t.Sent+t.Duplicates, t.Duplicates, t.Failed)
	e.printFailedBy("  ", t.FailedBy)
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
	AppID       string               `json:"appId"`
	WorkspaceID string               `json:"workspaceId"`
	Tasks       []push.ScheduledTask `json:"tasks"`
}

func (e *env) scheduledList(app, ws string, asJSON bool) error {
	apps := [][2]string{{app, ws}}
	if app == "" {
		results, err := e.readResults("", nil)
		if err != nil {
			return err
		}
		apps = nil
		for _, s := range sources(results, job.ActionCancelScheduled) {
			apps = append(apps, [2]string{s.app, s.workspace})
		}
		if len(apps) == 0 {
			fmt.Fprintln(e.stdout, "no scheduled push among the stored results: give --app-id and --workspace-id")
			return nil
		}
	}
	var lists []scheduledList
	for _, a := range apps {
		req, _ := json.Marshal(map[string]string{"appId": a[0], "workspaceId": a[1]})
		m, err := e.nc.RequestWithContext(e.ctx, e.topo.ScheduledListSubject(), req)
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
