package recall

import (
	"context"
	"strings"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

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

// call makes one unit's call until it ends: done, failed for good, or handed back.
func (h *Handler) call(ctx context.Context, a *job.Admin, u *unit, holder dedupe.Holder, last bool, log *zap.Logger) {
	limiter := pipeline.LimiterFor(h.limiter, a.AppID)
	for attempts := 1; ; attempts++ {
		if err := h.untilOK(ctx, func() error { return limiter.Wait(ctx, false) }); err != nil {
			h.release(holder, u)
			return
		}
		var out push.CallResult
		switch {
		case a.Action == job.ActionCancelScheduled:
			out = h.client.CancelScheduled(ctx, a.AppID, a.WorkspaceID, []string{u.task})
		case u.task != "":
			out = h.client.RevokeTask(ctx, a.AppID, a.WorkspaceID, u.task)
		default:
			out = h.client.RevokeMessage(ctx, a.AppID, a.WorkspaceID, u.pair.Target, u.pair.MsgKey)
		}
		h.obs.Call("admin", out)
		if out.Throttled {
			limiter.Throttled()
		}
		switch {
		case out.Class == push.Success:
			_ = h.untilOK(ctx, func() error {
				return h.store.MarkSent(ctx, holder, []dedupe.Key{u.key}, dedupe.Mark{RequestID: out.RequestID, Attempts: attempts})
			})
			u.result = u.chunk(out, attempts, job.ChunkSent)
			return
		case out.Class == push.JobFault: // too old, not found, refused: counted, not retried
			h.release(holder, u)
			u.handed, u.result = false, u.chunk(out, attempts, job.ChunkFailed)
			return
		case out.Class == push.ConfigFault || attempts >= h.cfg.Attempts:
			h.release(holder, u)
			if last { // no delivery comes after this one: fail it, never hand it back
				u.handed, u.result = false, u.chunk(out, attempts, job.ChunkFailed)
			}
			log.Info("recall call still failing", zap.String("code", out.ResultCode), zap.Int("attempts", attempts), zap.Error(out.Err))
			return
		}
		if !h.cfg.Clock.Sleep(ctx, h.cfg.Call.NextRetry(attempts)) {
			h.release(holder, u)
			return
		}
	}
}

// chunk is the unit's entry in the result: its pair (none for a task) and, as
// Data, the task id the call concerned.
func (u *unit) chunk(out push.CallResult, attempts int, status string) job.ChunkResult {
	var t job.Targets
	if u.task == "" {
		t = job.Targets{u.pair}
	}
	c := job.ChunkResult{TargetMsgkey: t, Status: status, Attempts: attempts, RequestID: out.RequestID,
		ResultCode: out.ResultCode, ResultMessage: job.Clip(out.ResultMessage), PushSuccess: out.PushSuccess, Data: u.task}
	if status == job.ChunkFailed && out.Err != nil {
		c.Error = job.Clip(out.Err.Error()) // mPaaS's answers may quote the job's parameters
	}
	return c
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

// api names the mPaaS actions of the job's calls, as a result's api.
func api(a *job.Admin) string {
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
