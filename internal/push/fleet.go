package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mpaas-push/pushworker/job"
)

// ErrNoCredential is the answer to a call for an app that no credential
// serves. Jobs are checked against the apps before they run (job.Rules), so a
// call meets it only when that check was skipped.
var ErrNoCredential = errors.New("no credential serves this appId")

// Fleet is one Client per AccessKey of a credentials file: each call goes
// through the client of the credential that serves the job's app, and is
// signed with that credential's key.
type Fleet struct {
	byApp    map[string]*Client
	clients  []*Client
	endpoint Endpoint
}

// FleetKey is one AccessKey of a Fleet and the apps it serves.
type FleetKey struct {
	AccessKeyID, AccessKeySecret string
	AppIDs                       []string
}

// NewFleet makes a client per key, each from base with the key's AccessKey.
// An app may have one key only.
func NewFleet(base Config, keys []FleetKey) (*Fleet, error) {
	f := &Fleet{byApp: map[string]*Client{}}
	for _, k := range keys {
		cfg := base
		cfg.AccessKeyID, cfg.AccessKeySecret = k.AccessKeyID, k.AccessKeySecret
		c, err := New(cfg)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.clients = append(f.clients, c)
		f.endpoint = c.Endpoint()
		for _, app := range k.AppIDs {
			if _, dup := f.byApp[app]; dup {
				f.Close()
				return nil, fmt.Errorf("app %q has two credentials", job.Clip(app))
			}
			f.byApp[app] = c
		}
	}
	if len(f.clients) == 0 {
		return nil, errors.New("mPaaS fleet: no credential")
	}
	return f, nil
}

// Serves reports whether a credential serves app.
func (f *Fleet) Serves(app string) bool { _, ok := f.byApp[app]; return ok }

// Endpoint is where the calls go (the same for every credential).
func (f *Fleet) Endpoint() Endpoint { return f.endpoint }

// Close drops every client's idle connections.
func (f *Fleet) Close() {
	for _, c := range f.clients {
		c.Close()
	}
}

// noCredential answers a call for an app no credential serves: the job's
// fault, never the worker's (a config fault would pause every app).
func noCredential(api, app string) CallResult {
	return CallResult{API: api, Class: JobFault, ResultCode: "NoCredential",
		Err: fmt.Errorf("appId %q: %w", job.Clip(app), ErrNoCredential)}
}

// Push is Client.Push with the client of j's app.
func (f *Fleet) Push(ctx context.Context, j *job.Job, targets job.Targets) CallResult {
	c, ok := f.byApp[j.AppID]
	if !ok {
		return noCredential(j.API(), j.AppID)
	}
	return c.Push(ctx, j, targets)
}

// RevokeMessage is Client.RevokeMessage with the client of app.
func (f *Fleet) RevokeMessage(ctx context.Context, app, workspace, target, msgKey string) CallResult {
	c, ok := f.byApp[app]
	if !ok {
		return noCredential(APIRevokeMessage, app)
	}
	return c.RevokeMessage(ctx, app, workspace, target, msgKey)
}

// RevokeTask is Client.RevokeTask with the client of app.
func (f *Fleet) RevokeTask(ctx context.Context, app, workspace, taskID string) CallResult {
	c, ok := f.byApp[app]
	if !ok {
		return noCredential(APIRevokeTask, app)
	}
	return c.RevokeTask(ctx, app, workspace, taskID)
}

// CancelScheduled is Client.CancelScheduled with the client of app.
func (f *Fleet) CancelScheduled(ctx context.Context, app, workspace string, uniqueIDs []string) CallResult {
	c, ok := f.byApp[app]
	if !ok {
		return noCredential(APICancelScheduler, app)
	}
	return c.CancelScheduled(ctx, app, workspace, uniqueIDs)
}

// QueryScheduled is Client.QueryScheduled with the client of app.
func (f *Fleet) QueryScheduled(ctx context.Context, app, workspace string, from, to time.Time, page, size int) ([]ScheduledTask, int, CallResult) {
	c, ok := f.byApp[app]
	if !ok {
		return nil, 0, noCredential(APIQueryScheduler, app)
	}
	return c.QueryScheduled(ctx, app, workspace, from, to, page, size)
}

// TaskDetail is Client.TaskDetail with the client of app.
func (f *Fleet) TaskDetail(ctx context.Context, app, workspace, taskID string) (Analysis, CallResult) {
	c, ok := f.byApp[app]
	if !ok {
		return Analysis{}, noCredential(APITaskDetail, app)
	}
	return c.TaskDetail(ctx, app, workspace, taskID)
}

// CoreIndex is Client.CoreIndex with the client of app.
func (f *Fleet) CoreIndex(ctx context.Context, app, workspace, pushType string, from, to time.Time) (Analysis, CallResult) {
	c, ok := f.byApp[app]
	if !ok {
		return Analysis{}, noCredential(APICoreIndex, app)
	}
	return c.CoreIndex(ctx, app, workspace, pushType, from, to)
}
