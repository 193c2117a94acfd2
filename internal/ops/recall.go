package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/job"
)

// RecallPlan is what a recall takes back, read from the stored results: the
// admin jobs it publishes, and the calls they make by mPaaS action. Recall
// decides from what each job asked (a chunk's strategyType), never from the
// form of an id: mPaaS documents neither a push task id's nor a scheduled
// task id's.
type RecallPlan struct {
	Action   string   // job.ActionRevoke or job.ActionCancelScheduled
	Campaign string   // the campaign asked for, or ""
	JobIDs   []string // the job ids asked for, when no campaign
	Results  int      // stored push results read

	Sources []*RecallSource // by app, workspace and campaign, in the order first read
	Jobs    []AdminJob      // what Recall publishes

	// Revoke only: chunks it leaves alone. A scheduled chunk's data is a
	// scheduled task's id, which RevokePushTask does not take: scheduled cancel
	// cancels the tasks that have not run.
	Scheduled int
	NoTaskID  int // PushMultiple and PushBroadcast chunks whose answer carried no task id
}

// RecallSource is what the results of one app, workspace and campaign let a
// recall take back.
type RecallSource struct {
	AppID, WorkspaceID, Campaign string
	Pairs                        job.Targets // revoke: pairs sent with PushTemplate or PushSimple
	TaskIDs                      []string    // revoke: push task ids; cancelScheduled: scheduled task ids
	Jobs                         int         // admin jobs made of it
}

// AdminJob is one admin job and the subject it goes to.
type AdminJob struct {
	Subject string
	Job     *job.Admin
}

// Calls is how many calls the plan makes, by mPaaS action.
func (p *RecallPlan) Calls() map[string]int {
	out := map[string]int{}
	for _, s := range p.Sources {
		for api, n := range s.Calls(p.Action) {
			out[api] += n
		}
	}
	return out
}

// Calls is how many calls the source makes, by mPaaS action.
func (s *RecallSource) Calls(action string) map[string]int {
	out := map[string]int{}
	if action == job.ActionCancelScheduled {
		out[job.APICancelScheduler] = len(s.TaskIDs)
		return out
	}
	if len(s.Pairs) > 0 {
		out[job.APIRevokeMessage] = len(s.Pairs)
	}
	if len(s.TaskIDs) > 0 {
		out[job.APIRevokeTask] = len(s.TaskIDs)
	}
	return out
}

// Units is how many calls the plan makes in all.
func (p *RecallPlan) Units() int {
	n := 0
	for _, a := range p.Jobs {
		n += a.Job.Units()
	}
	return n
}

// PlanRecall reads the stored results of a campaign (or of the job ids) and
// plans the admin jobs of action (job.ActionRevoke or job.ActionCancelScheduled).
// When they take nothing back, the plan comes with an error wrapping
// ErrNothingToRecall that says so in a sentence.
func (o *Ops) PlanRecall(ctx context.Context, action, campaignName string, jobIDs []string) (*RecallPlan, error) {
	if action != job.ActionRevoke && action != job.ActionCancelScheduled {
		return nil, fmt.Errorf("recall action %q: want %s or %s", action, job.ActionRevoke, job.ActionCancelScheduled)
	}
	results, err := o.pushResults(ctx, campaignName, jobIDs)
	if err != nil {
		return nil, err
	}
	p := &RecallPlan{Action: action, Campaign: campaignName, JobIDs: jobIDs, Results: len(results)}
	p.plan(results)
	for _, s := range p.Sources {
		for _, a := range adminJobs(s, action, o.topo.ResultPrefix(), job.DefaultMaxTargets) {
			p.Jobs = append(p.Jobs, AdminJob{Subject: o.topo.AdminSubject(s.Campaign), Job: a})
			s.Jobs++
		}
	}
	if len(p.Jobs) == 0 {
		return p, fmt.Errorf("%w: %s", ErrNothingToRecall, p.nothing())
	}
	return p, nil
}

// nothing is the sentence of a plan with no admin job.
func (p *RecallPlan) nothing() string {
	of := "the stored results"
	switch {
	case p.Campaign != "":
		of = fmt.Sprintf("campaign %s", p.Campaign)
	case len(p.JobIDs) > 0:
		of = "job " + strings.Join(p.JobIDs, ", ")
	}
	if p.Results == 0 {
		return fmt.Sprintf("no stored push result of %s, so there is nothing to %s", of, verb(p.Action))
	}
	what := "no chunk sent with a scheduled task (strategyType 1 or 2)"
	if p.Action == job.ActionRevoke {
		what = "no PushTemplate or PushSimple pair, nor PushMultiple or PushBroadcast task, sent now (not scheduled)"
	}
	s := fmt.Sprintf("%d stored push results of %s, with %s: nothing to %s", p.Results, of, what, verb(p.Action))
	if p.Scheduled > 0 {
		s += fmt.Sprintf(" (%d scheduled chunks: use 'enqueue scheduled cancel')", p.Scheduled)
	}
	return s
}

func verb(action string) string {
	if action == job.ActionCancelScheduled {
		return "cancel"
	}
	return "revoke"
}

// pushResults reads the result stream and keeps the push jobs' results wanted:
// the campaign's, or those of the job ids, or (neither given) all. Rejected
// jobs sent nothing and admin jobs' results are a recall's: both are left out.
func (o *Ops) pushResults(ctx context.Context, campaignName string, ids []string) ([]job.Result, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []job.Result
	err := o.ReadNewest(ctx, o.topo.ResultsStream, 0, func(m jetstream.Msg) {
		var r job.Result
		if json.Unmarshal(m.Data(), &r) != nil || r.Status == job.StatusRejected || isAdminAPI(r.API) {
			return
		}
		if campaignName != "" && r.Campaign == campaignName || want[r.JobID] || campaignName == "" && len(want) == 0 {
			out = append(out, r)
		}
	})
	return out, err
}

// isAdminAPI: a result's api names the recall actions of an admin job.
func isAdminAPI(api string) bool {
	for _, a := range strings.Split(api, ",") {
		if a == job.APIRevokeMessage || a == job.APIRevokeTask || a == job.APICancelScheduler {
			return true
		}
	}
	return false
}

// plan groups what the results sent (or scheduled) by app, workspace and
// campaign. A chunk is scheduled when its strategyType is 1 or 2; a result
// stored before chunks carried it reads as not scheduled.
func (p *RecallPlan) plan(results []job.Result) {
	by := map[string]*RecallSource{}
	for _, r := range results {
		k := r.AppID + "\x00" + r.WorkspaceID + "\x00" + r.Campaign
		s := by[k]
		if s == nil {
			s = &RecallSource{AppID: r.AppID, WorkspaceID: r.WorkspaceID, Campaign: r.Campaign}
			by[k] = s
			p.Sources = append(p.Sources, s)
		}
		for _, c := range r.Chunks {
			if c.Status != job.ChunkSent {
				continue
			}
			switch {
			case p.Action == job.ActionCancelScheduled:
				if c.Scheduled() && c.Data != "" {
					s.TaskIDs = append(s.TaskIDs, c.Data)
				}
			case c.Scheduled():
				p.Scheduled++
			case sentAsTask(r.API) && c.Data == "":
				p.NoTaskID++
			case sentAsTask(r.API):
				s.TaskIDs = append(s.TaskIDs, c.Data)
			default: // PushTemplate and PushSimple: per pair
				s.Pairs = append(s.Pairs, c.TargetMsgkey...)
			}
		}
	}
	p.Sources = slices.DeleteFunc(p.Sources, func(s *RecallSource) bool {
		s.TaskIDs = unique(s.TaskIDs)
		return len(s.Pairs)+len(s.TaskIDs) == 0
	})
}

// sentAsTask: a PushMultiple or PushBroadcast call is one task at mPaaS, which
// RevokePushTask takes back whole; PushTemplate and PushSimple pushes are
// revoked per pair.
func sentAsTask(api string) bool { return api == job.APIMultiple || api == job.APIBroadcast }

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

// adminJobs cuts a source into admin jobs of at most per calls, with ids derived
// from what they carry: running the same recall again publishes the same jobs,
// which the job stream's duplicate window drops and the dedupe store refuses.
func adminJobs(s *RecallSource, action, resultPrefix string, per int) []*job.Admin {
	var jobs []*job.Admin
	add := func(pairs job.Targets, ids []string) {
		a := &job.Admin{AppID: s.AppID, WorkspaceID: s.WorkspaceID, Action: action, TargetMsgkey: pairs}
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
	for p := s.Pairs; len(p) > 0; {
		n := min(per, len(p))
		add(p[:n:n], nil)
		p = p[n:]
	}
	for ids := s.TaskIDs; len(ids) > 0; {
		n := min(per, len(ids))
		add(nil, ids[:n:n])
		ids = ids[n:]
	}
	return jobs
}

// PublishTimeout bounds the publish of one admin job.
const PublishTimeout = 10 * time.Second

// Recall publishes the plan's admin jobs, each with its job id as Nats-Msg-Id.
func (o *Ops) Recall(ctx context.Context, p *RecallPlan) error {
	for _, a := range p.Jobs {
		body, err := a.Job.Encode()
		if err != nil {
			return fmt.Errorf("admin job %s: %w", a.Job.JobID, err)
		}
		pctx, cancel := context.WithTimeout(ctx, PublishTimeout)
		_, err = o.js.PublishMsg(pctx, &nats.Msg{Subject: a.Subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{a.Job.JobID}}})
		cancel()
		if err != nil {
			return fmt.Errorf("publishing admin job %s (%d calls) to %s: %w", a.Job.JobID, a.Job.Units(), a.Subject, err)
		}
	}
	return nil
}

// RecallProgress is what the plan's admin jobs did so far, counted by call.
type RecallProgress struct {
	Jobs, Done int            // admin jobs, and those with a result
	Succeeded  int            // calls mPaaS did (a re-run's included)
	Earlier    int            // calls another admin job made (a re-run's duplicates)
	Failed     int            // calls that failed for good; a rejected admin job counts 1
	FailedBy   map[string]int // mPaaS code (or its error, or rejected) → calls
}

// FollowRecall reads the plan's admin jobs' results until each has one, or
// timeout; progress, when not nil, is told of each new result. A timeout is an
// error wrapping ErrTimedOut that says how many ended.
func (o *Ops) FollowRecall(ctx context.Context, p *RecallPlan, timeout time.Duration, progress func(RecallProgress)) (RecallProgress, error) {
	want := map[string]bool{}
	for _, a := range p.Jobs {
		want[a.Job.JobID] = true
	}
	pr := RecallProgress{Jobs: len(want), FailedBy: map[string]int{}}
	done := map[string]bool{}
	err := o.Follow(ctx, o.topo.ResultPrefix()+"admin.>", timeout, func(r *job.Result) bool {
		if !want[r.JobID] || done[r.JobID] {
			return false
		}
		done[r.JobID] = true
		pr.Done++
		calls := campaign.Recall(r)
		pr.Succeeded += r.Sent
		pr.Earlier += r.Duplicates
		pr.Failed += calls.Failed
		for code, n := range calls.FailedBy {
			pr.FailedBy[code] += n
		}
		if progress != nil {
			progress(pr)
		}
		return pr.Done >= pr.Jobs
	})
	if err == ErrTimedOut {
		err = fmt.Errorf("%w: %d of %d admin jobs ended within %s: are the workers running?", ErrTimedOut, pr.Done, pr.Jobs, timeout)
	}
	return pr, err
}
