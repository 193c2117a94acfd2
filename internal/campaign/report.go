package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/job"
)

// ReportRequest asks a worker for a campaign's delivery figures: what to ask
// mPaaS, read from the campaign's stored results.
type ReportRequest struct {
	Campaign string         `json:"campaign"`
	Finished bool           `json:"finished"` // nothing of it queued, in flight or parked: figures complete are kept
	Sources  []ReportSource `json:"sources"`
}

// ReportSource is what one app and workspace of the campaign pushed.
type ReportSource struct {
	AppID       string   `json:"appId"`
	WorkspaceID string   `json:"workspaceId"`
	TaskIDs     []string `json:"taskIds,omitempty"` // PushMultiple (and broadcast) tasks: QueryPushAnalysisTaskDetail each
	// Windows are the first-to-last-call windows of its pushes without a task
	// of their own (PushTemplate: type TEMPLATE): QueryPushAnalysisCoreIndex each.
	Windows []ReportWindow `json:"windows,omitempty"`
}

// ReportWindow is the window of one push type's calls.
type ReportWindow struct {
	Type string    `json:"type"` // TEMPLATE, SIMPLE
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Delivery is a campaign's delivery figures as a worker fetched them.
type Delivery struct {
	Campaign  string    `json:"campaign"`
	FetchedAt time.Time `json:"fetchedAt"`
	Cached    bool      `json:"cached"` // kept from an earlier fetch of the finished campaign
	// Ready: mPaaS has figures for at least one task or window; until then
	// the report is "not ready yet".
	Ready bool `json:"ready"`
	// Tasks are the figures of the push tasks, summed; TasksCounted of
	// TaskIDs had figures, the others none yet.
	Tasks        job.Figures `json:"tasks"`
	TaskIDs      int         `json:"taskIds"`
	TasksCounted int         `json:"tasksCounted"`
	// Windows are the app's figures over each window (other pushes of that
	// type made meanwhile included).
	Windows []WindowFigures `json:"windows,omitempty"`
	Total   job.Figures     `json:"total"` // Tasks and every window
}

// WindowFigures are an app's figures of one push type over a window.
type WindowFigures struct {
	AppID       string `json:"appId"`
	WorkspaceID string `json:"workspaceId"`
	ReportWindow
	Ready   bool        `json:"ready"`
	Figures job.Figures `json:"figures"`
}

// Complete: every task and window had figures (what a finished campaign keeps).
func (r *Delivery) Complete() bool {
	if r.TasksCounted < r.TaskIDs {
		return false
	}
	for _, w := range r.Windows {
		if !w.Ready {
			return false
		}
	}
	return r.Ready
}

// ReportTTL is how long a finished campaign's figures are kept: as long as
// its totals.
const ReportTTL = TotalsTTL

// KeptDeliveries keep the figures of finished campaigns.
type KeptDeliveries interface {
	Get(ctx context.Context, name string) (*Delivery, error) // nil, nil when none is kept
	Put(ctx context.Context, r *Delivery) error
}

// RedisDeliveries keep each finished campaign's figures as JSON at
// <prefix><campaign> (the worker's Redis prefix + "campaign:*report:").
type RedisDeliveries struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisDeliveries keeps the reports under prefix.
func NewRedisDeliveries(rdb redis.UniversalClient, prefix string) *RedisDeliveries {
	return &RedisDeliveries{rdb: rdb, prefix: prefix}
}

// Get is the kept report of the campaign, or nil.
func (s *RedisDeliveries) Get(ctx context.Context, name string) (*Delivery, error) {
	b, err := s.rdb.Get(ctx, s.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Delivery
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("kept report of %s unreadable: %w", name, err)
	}
	return &r, nil
}

// Put keeps r for ReportTTL.
func (s *RedisDeliveries) Put(ctx context.Context, r *Delivery) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.prefix+r.Campaign, b, ReportTTL).Err()
}

// MemoryDeliveries keep the reports in memory (dev mode, as its totals).
type MemoryDeliveries struct {
	mu sync.Mutex
	m  map[string]Delivery
}

// NewMemoryDeliveries keeps reports in memory.
func NewMemoryDeliveries() *MemoryDeliveries { return &MemoryDeliveries{m: map[string]Delivery{}} }

// Get is the kept report of the campaign, or nil.
func (s *MemoryDeliveries) Get(_ context.Context, name string) (*Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[name]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

// Put keeps r.
func (s *MemoryDeliveries) Put(_ context.Context, r *Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.Campaign] = *r
	return nil
}
