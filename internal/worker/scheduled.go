package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/retry"
)

// ScheduledWindow is how far ahead `enqueue scheduled list` looks: a recurring
// push's window ends at most 180 days after it was made.
const ScheduledWindow = 181 * 24 * time.Hour

// ScheduledWait bounds one scheduled-list request: every page, the slots it
// waits for and its retries.
const ScheduledWait = 30 * time.Second

// scheduledPage is how many tasks one QueryPushSchedulerList call asks for.
const scheduledPage = 500

// scheduledLister lists an app's pending scheduled tasks (the mPaaS client).
type scheduledLister interface {
	QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]push.ScheduledTask, int, push.CallResult)
}

// adminCalls make the mPaaS calls the workers' endpoints ask for (the
// scheduled list, the delivery reports) as a push's are: through the same
// client, each after a slot of the same shared limit (a bulk slot: an
// operator's question yields to event pushes, as a campaign does), its
// transient failures retried with the pipeline's call policy up to its
// attempts, and counted in the same metrics (lane "admin", as recalls).
type adminCalls struct {
	limiter  pipeline.Limiter
	call     retry.Policy // between tries of a call
	attempts int          // tries of a call
	metrics  *metrics.Metrics
}

// newAdminCalls call with the limiter and the retry policy of the pipeline's
// cfg (and its defaults).
func newAdminCalls(limiter pipeline.Limiter, cfg pipeline.Config, m *metrics.Metrics) *adminCalls {
	a := &adminCalls{limiter: limiter, call: cfg.Call, attempts: cfg.Attempts, metrics: m}
	if a.call == nil {
		a.call = retry.Call
	}
	if a.attempts <= 0 {
		a.attempts = pipeline.DefaultAttempts
	}
	return a
}

// scheduledList answers `enqueue scheduled list`: an app's pending scheduled
// tasks, from mPaaS, so that operators need no mPaaS credentials. Each page is
// an adminCalls call.
type scheduledList struct {
	*adminCalls
	lister scheduledLister
	log    *zap.Logger
}

// newScheduledList lists through lister with calls.
func newScheduledList(lister scheduledLister, calls *adminCalls, log *zap.Logger) *scheduledList {
	return &scheduledList{adminCalls: calls, lister: lister, log: log}
}

// scheduledRequest is what the endpoint takes.
type scheduledRequest struct {
	AppID       string `json:"appId"`
	WorkspaceID string `json:"workspaceId"`
}

func (l *scheduledList) handle(ctx context.Context, req micro.Request) {
	var q scheduledRequest
	if err := json.Unmarshal(req.Data(), &q); err != nil || q.AppID == "" || q.WorkspaceID == "" {
		_ = req.Error("400", `want {"appId":…,"workspaceId":…}`, nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ScheduledWait)
	defer cancel()
	tasks, err := l.list(ctx, q, time.Now())
	if err != nil {
		l.log.Warn("scheduled tasks not listed", zap.String("app", q.AppID), zap.Error(err))
		_ = req.Error(errorCode(err, "500"), err.Error(), nil)
		return
	}
	_ = req.RespondJSON(map[string]any{"appId": q.AppID, "workspaceId": q.WorkspaceID, "tasks": tasks})
}

// list pages through the app's pending tasks that run from a day before now to
// ScheduledWindow after it.
func (l *scheduledList) list(ctx context.Context, q scheduledRequest, now time.Time) ([]push.ScheduledTask, error) {
	var all []push.ScheduledTask
	for page := 1; ; page++ {
		tasks, total, err := l.page(ctx, q, now.Add(-24*time.Hour), now.Add(ScheduledWindow), page)
		if err != nil {
			return nil, fmt.Errorf("QueryPushSchedulerList page %d: %w", page, err)
		}
		all = append(all, tasks...)
		if len(tasks) == 0 || len(all) >= total {
			return all, nil
		}
	}
}

// errorCode is the service error code of an admin request that failed: mPaaS's
// own code when a call failed (noCode when it gave none), 504 when the
// request's time ran out, else 503 (the limit's Redis, or the request stopped).
func errorCode(err error, noCode string) string {
	var failed callFailed
	switch {
	case errors.As(err, &failed):
		if code := failed.out.ResultCode; code != "" && code != "OK" {
			return code
		}
		return noCode
	case errors.Is(err, context.DeadlineExceeded):
		return "504"
	}
	return "503"
}

// callFailed is a page whose call failed for good, or still failed after the
// attempts.
type callFailed struct {
	out      push.CallResult
	attempts int
}

func (e callFailed) Error() string {
	why := e.out.Class.String()
	if e.out.Err != nil {
		why = e.out.Err.Error()
	}
	return why + " (calls: " + strconv.Itoa(e.attempts) + ")"
}

// page makes one page's call.
func (l *scheduledList) page(ctx context.Context, q scheduledRequest, from, to time.Time, page int) ([]push.ScheduledTask, int, error) {
	var tasks []push.ScheduledTask
	var total int
	err := l.try(ctx, q.AppID, func(ctx context.Context) push.CallResult {
		var out push.CallResult
		tasks, total, out = l.lister.QueryScheduled(ctx, q.AppID, q.WorkspaceID, from, to, page, scheduledPage)
		return out
	})
	return tasks, total, err
}

// try makes one call of app's until it is answered, fails for good, or has failed
// transiently attempts times; each try waits for a bulk slot of the shared
// limit first (app's credential's, with a credentials file), and a
// throttled answer slows that rate.
func (a *adminCalls) try(ctx context.Context, app string, call func(context.Context) push.CallResult) error {
	limiter := pipeline.LimiterFor(a.limiter, app)
	for attempt := 1; ; attempt++ {
		waited := time.Now()
		if err := limiter.Wait(ctx, false); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for a slot of the shared rate limit: %w", ctx.Err())
			}
			if errors.Is(err, ratelimit.ErrNoLimit) {
				return errors.New("appId: no credential serves it")
			}
			return errors.New("no slot of the shared rate limit: its Redis is unavailable")
		}
		a.metrics.LimiterWait("admin", time.Since(waited))
		out := call(ctx)
		a.metrics.Call("admin", out)
		if out.Throttled {
			limiter.Throttled()
		}
		switch {
		case out.Class == push.Success:
			return nil
		case out.Class != push.Transient || attempt >= a.attempts:
			return callFailed{out: out, attempts: attempt}
		}
		if !clock.Sleep(ctx, a.call.NextRetry(attempt)) {
			return fmt.Errorf("%w, retrying after %v", ctx.Err(), out.Err)
		}
	}
}
