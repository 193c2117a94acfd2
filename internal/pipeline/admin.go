package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/health"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// Recaller makes the recall calls of admin jobs; the mPaaS client is one.
type Recaller interface {
	RevokeMessage(ctx context.Context, app, workspace, target, msgKey string) push.CallResult
	RevokeTask(ctx context.Context, app, workspace, taskID string) push.CallResult
	CancelScheduled(ctx context.Context, app, workspace string, uniqueIDs []string) push.CallResult
}

// unit is one call of an admin job: a pair to revoke, a push task to revoke or
// a scheduled task to cancel. Its dedupe key keeps a re-run from calling twice.
type unit struct {
	pair      job.Target
	task      string // a push task id or a scheduled task id
	key       dedupe.Key
	result    job.ChunkResult
	handed    bool
	duplicate bool // another job made this call
}

func units(a *job.Admin) []*unit {
	var out []*unit
	key := func(kind, id, msgKey string) dedupe.Key {
		return dedupe.Key{AppID: a.AppID, WorkspaceID: a.WorkspaceID, Target: kind + ":" + id, MsgKey: msgKey}
	}
	for _, p := range a.TargetMsgkey {
		out = append(out, &unit{pair: p, key: key("revoke", p.Target, p.MsgKey)})
	}
	for _, id := range a.TaskIDs {
		out = append(out, &unit{task: id, key: key("revoke-task", id, "-")})
	}
	for _, id := range a.UniqueIDs {
		out = append(out, &unit{task: id, key: key("cancel-scheduled", id, "-")})
	}
	return out
}

// handleAdmin runs one delivery of an admin job: one call per unit, each under
// a claim, a call slot and a slot of the shared rate, retried like a push.
func (p *Pipeline) handleAdmin(ctx context.Context, d consumer.Delivery) consumer.Outcome {
	fallback := fallbackID(d)
	a, err := job.DecodeAdmin(d.Data)
	if err == nil {
		if a.JobID == "" {
			a.JobID = fallback
		}
		err = a.Validate(p.cfg.Rules)
	}
	if err != nil {
		var j *job.Job
		if a != nil {
			j = &job.Job{JobID: a.JobID, ReplyTo: a.ReplyTo, AppID: a.AppID, WorkspaceID: a.WorkspaceID, TaskName: a.Action}
		}
		return p.reject(d, j, fallback, err)
	}
	rc, ok := p.pusher.(Recaller)
	if !ok {
		return p.reject(d, nil, a.JobID, errors.New("this worker's mPaaS client cannot recall"))
	}
	log := p.log.With(zap.String("job", a.JobID), zap.String("action", a.Action), zap.Int("delivery", d.Number))
	holder := dedupe.Holder{JobID: a.JobID, Message: "admin", Token: newToken()}
	started := p.cfg.Clock.Now()
	us := units(a)
	keys := make([]dedupe.Key, len(us))
	for i, u := range us {
		keys[i] = u.key
	}
	var claims []dedupe.Claim
	if err := p.untilOK(ctx, health.CauseRedis, func() error {
		var err error
		claims, err = p.store.Claim(ctx, holder, keys)
		return err
	}); err != nil {
		return consumer.Outcome{Action: consumer.Release}
	}
	res := &job.Result{JobID: a.JobID, AppID: a.AppID, WorkspaceID: a.WorkspaceID, TaskName: a.Action, API: adminAPI(a),
		Campaign: p.cfg.Rules.Topology.Campaign(d.Subject), Deliveries: d.Number, StartedAt: job.Time{Time: started},
		Skipped: job.Targets{}}
	var wg sync.WaitGroup
	for i, u := range us {
		switch claims[i].State {
		case dedupe.SentBySelf: // an earlier delivery made this call
			u.result = chunkOf(u, push.CallResult{RequestID: claims[i].Mark.RequestID, ResultCode: "OK", PushSuccess: true}, claims[i].Mark.Attempts, job.ChunkSent)
			continue
		case dedupe.Claimed:
		default: // another job made or is making this very call: it reports it
			u.duplicate = true
			continue
		}
		if err := p.acquire(ctx, false); err != nil {
			u.handed = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.release(false)
			p.recall(ctx, rc, a, u, holder, d.Last, log)
		}()
	}
	wg.Wait()
	handed := false
	for _, u := range us {
		switch {
		case u.handed:
			handed = true
		case u.duplicate:
			res.Duplicates++
		default:
			// Each unit is one call and counts as one target, pair or task alike.
			res.Chunks = append(res.Chunks, u.result)
			if u.result.Status == job.ChunkSent {
				res.Sent++
			} else {
				res.Failed++
			}
		}
	}
	switch {
	case !handed:
		res.Finish(p.cfg.Clock.Now())
		log.Info("admin job done", zap.Int("done", res.Sent), zap.Int("failed", res.Failed))
		out := consumer.Outcome{Result: res, ResultSubject: p.cfg.Rules.Topology.ResultSubject(a.ReplyTo, a.JobID), Action: consumer.Ack}
		if failed := failedOnly(a, us); failed != nil {
			body, _ := failed.Encode()
			out.DeadLetter = &consumer.DeadLetter{JobID: a.JobID, Body: body, Reason: consumer.ReasonFailed, Error: lastError(us)}
		}
		return out
	case ctx.Err() != nil:
		return consumer.Outcome{Action: consumer.Release}
	default:
		return consumer.Outcome{Action: consumer.Retry, Delay: p.cfg.HandBack.NextRetry(d.Number)}
	}
}

// recall makes one unit's call until it ends: done, failed for good, or handed back.
func (p *Pipeline) recall(ctx context.Context, rc Recaller, a *job.Admin, u *unit, holder dedupe.Holder, last bool, log *zap.Logger) {
	for attempts := 1; ; attempts++ {
		if err := p.untilOK(ctx, health.CauseRedis, func() error { return p.limiter.Wait(ctx, false) }); err != nil {
			p.giveBack(holder, u)
			return
		}
		var out push.CallResult
		switch {
		case a.Action == job.ActionCancelScheduled:
			out = rc.CancelScheduled(ctx, a.AppID, a.WorkspaceID, []string{u.task})
		case u.task != "":
			out = rc.RevokeTask(ctx, a.AppID, a.WorkspaceID, u.task)
		default:
			out = rc.RevokeMessage(ctx, a.AppID, a.WorkspaceID, u.pair.Target, u.pair.MsgKey)
		}
		p.obs.Call("admin", out)
		if out.Throttled {
			p.limiter.Throttled()
		}
		switch {
		case out.Class == push.Success:
			_ = p.untilOK(ctx, health.CauseRedis, func() error {
				return p.store.MarkSent(ctx, holder, []dedupe.Key{u.key}, dedupe.Mark{RequestID: out.RequestID, Attempts: attempts})
			})
			u.result = chunkOf(u, out, attempts, job.ChunkSent)
			return
		case out.Class == push.JobFault: // too old, not found, refused: counted, not retried
			p.giveBack(holder, u)
			u.handed, u.result = false, chunkOf(u, out, attempts, job.ChunkFailed)
			return
		case out.Class == push.ConfigFault || attempts >= p.cfg.Attempts:
			p.giveBack(holder, u)
			if last { // no delivery comes after this one: fail it, never hand it back
				u.handed, u.result = false, chunkOf(u, out, attempts, job.ChunkFailed)
			}
			log.Info("recall call still failing", zap.String("code", out.ResultCode), zap.Int("attempts", attempts), zap.Error(out.Err))
			return
		}
		if !p.cfg.Clock.Sleep(ctx, p.cfg.Call.NextRetry(attempts)) {
			p.giveBack(holder, u)
			return
		}
	}
}

// failedOnly is the admin job with only the units that failed for good, or nil.
func failedOnly(a *job.Admin, us []*unit) *job.Admin {
	f := &job.Admin{JobID: a.JobID, ReplyTo: a.ReplyTo, AppID: a.AppID, WorkspaceID: a.WorkspaceID, Action: a.Action}
	for _, u := range us {
		if u.handed || u.duplicate || u.result.Status != job.ChunkFailed {
			continue
		}
		switch {
		case u.task == "":
			f.TargetMsgkey = append(f.TargetMsgkey, u.pair)
		case a.Action == job.ActionCancelScheduled:
			f.UniqueIDs = append(f.UniqueIDs, u.task)
		default:
			f.TaskIDs = append(f.TaskIDs, u.task)
		}
	}
	if f.Units() == 0 {
		return nil
	}
	return f
}

func lastError(us []*unit) string {
	for i := len(us) - 1; i >= 0; i-- {
		if us[i].result.Status == job.ChunkFailed && us[i].result.Error != "" {
			return us[i].result.Error
		}
	}
	return ""
}

func (p *Pipeline) giveBack(holder dedupe.Holder, u *unit) {
	u.handed = true
	p.releaseHeld(holder, p.log, []dedupe.Key{u.key})
}

func chunkOf(u *unit, out push.CallResult, attempts int, status string) job.ChunkResult {
	var t job.Targets
	data := u.task // the task id the call concerned
	if u.task == "" {
		t = job.Targets{u.pair}
	}
	c := chunkResult(t, out, attempts, status)
	c.Data = data
	return c
}

// adminAPI names the mPaaS actions of the job's calls, as a result's api.
func adminAPI(a *job.Admin) string {
	var apis []string
	if a.Action == job.ActionCancelScheduled {
		apis = append(apis, push.APICancelScheduler)
	}
	if len(a.TargetMsgkey) > 0 {
		apis = append(apis, push.APIRevokeMessage)
	}
	if len(a.TaskIDs) > 0 {
		apis = append(apis, push.APIRevokeTask)
	}
	return strings.Join(apis, ",")
}
