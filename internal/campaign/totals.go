package campaign

import (
	"context"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/redisbatch"
	"github.com/mpaas-push/pushworker/job"
)

// Totals count a campaign's results, over every worker. Jobs to FailedBy count
// push jobs only; the recall's admin jobs are counted apart, by call.
type Totals struct {
	Jobs       int            `json:"jobs"`     // push jobs with a result
	Canceled   int            `json:"canceled"` // of them, canceled
	Targets    int            `json:"targets"`
	Sent       int            `json:"sent"`
	Duplicates int            `json:"duplicates"`
	Failed     int            `json:"failed"`
	FailedBy   map[string]int `json:"failedBy"` // mPaaS code (or rejected, campaign canceled, …) → targets

	Revoked           int            `json:"revoked"`                  // RevokePushMessage and RevokePushTask calls that succeeded
	CanceledScheduled int            `json:"canceledScheduled"`        // CancelPushScheduler calls that succeeded
	RecallFailed      int            `json:"recallFailed"`             // recall calls that failed for good, and rejected admin jobs
	RecallFailedBy    map[string]int `json:"recallFailedBy,omitempty"` // mPaaS code (or rejected) → calls
}

// Recalled reports whether any recall result was counted.
func (t Totals) Recalled() bool { return t.Revoked+t.CanceledScheduled+t.RecallFailed > 0 }

// AddRecall counts one admin job's result: its calls, not targets (a
// RevokePushTask call takes back a whole task and lists no target).
func (t *Totals) AddRecall(r *job.Result) {
	rc := Recall(r)
	t.Revoked += rc.Revoked
	t.CanceledScheduled += rc.CanceledScheduled
	t.RecallFailed += rc.Failed
	if len(rc.FailedBy) > 0 && t.RecallFailedBy == nil {
		t.RecallFailedBy = map[string]int{}
	}
	for code, n := range rc.FailedBy {
		t.RecallFailedBy[code] += n
	}
}

// RecallCalls are an admin job's result counted by call.
type RecallCalls struct {
	Revoked           int            // RevokePushMessage and RevokePushTask calls that succeeded
	CanceledScheduled int            // CancelPushScheduler calls that succeeded
	Failed            int            // calls that failed for good; a rejected job counts 1
	FailedBy          map[string]int // mPaaS code (or its error, or rejected) → calls
}

// Recall counts an admin job's result by call: each chunk is one call, a pair's
// or a task's alike.
func Recall(r *job.Result) RecallCalls {
	out := RecallCalls{FailedBy: map[string]int{}}
	if r.Status == job.StatusRejected {
		out.Failed, out.FailedBy["rejected"] = 1, 1
		return out
	}
	for _, c := range r.Chunks {
		switch {
		case c.Status != job.ChunkSent:
			out.Failed++
			out.FailedBy[codeOf(c)]++
		case r.API == job.APICancelScheduler: // a cancelScheduled job carries scheduled task ids only
			out.CanceledScheduled++
		default:
			out.Revoked++
		}
	}
	return out
}

func codeOf(c job.ChunkResult) string {
	if c.ResultCode != "" {
		return c.ResultCode
	}
	return c.Error
}

// Add counts one result.
func (t *Totals) Add(r *job.Result) {
	t.Jobs++
	if r.Status == job.StatusCanceled {
		t.Canceled++
	}
	t.Targets += r.Targets
	t.Sent += r.Sent
	t.Duplicates += r.Duplicates
	t.Failed += r.Failed
	if t.FailedBy == nil {
		t.FailedBy = map[string]int{}
	}
	for code, n := range FailedBy(r) {
		t.FailedBy[code] += n
	}
}

// FailedBy is a result's failed targets by cause: the mPaaS code of the call, or
// its error (deadline passed, campaign canceled), or rejected.
func FailedBy(r *job.Result) map[string]int {
	out := map[string]int{}
	if r.Status == job.StatusRejected {
		if r.Failed > 0 {
			out["rejected"] = r.Failed
		}
		return out
	}
	for _, c := range r.Chunks {
		if c.Status != job.ChunkFailed {
			continue
		}
		out[codeOf(c)] += len(c.TargetMsgkey)
	}
	return out
}

// TotalsTTL is how long a campaign's totals are kept after its last result.
const TotalsTTL = 30 * 24 * time.Hour

// RedisTotals keeps the totals in one Redis hash per campaign, shared by every
// worker. The counts of results stored at the same time share one round trip
// (redisbatch), and the hash's expiry is renewed once a minute per campaign, not
// with every result.
type RedisTotals struct {
	rdb    redis.UniversalClient
	prefix string
	batch  *redisbatch.Batcher  // shared with the dedupe store's claims and marks
	renew  *redisbatch.Renewals // of each campaign's expiry (TotalsTTL): once a minute per worker
}

// NewRedisTotals keeps the hashes under prefix (the worker's Redis prefix +
// "campaign:"), writing through batch.
func NewRedisTotals(batch *redisbatch.Batcher, prefix string) *RedisTotals {
	return &RedisTotals{rdb: batch.Client(), prefix: prefix, batch: batch, renew: redisbatch.NewRenewals(time.Minute, 10000)}
}

// Add counts one stored result of the campaign's push jobs.
func (s *RedisTotals) Add(ctx context.Context, name string, r *job.Result) error {
	failedBy := FailedBy(r)
	return s.incr(ctx, name, func(incr func(string, int)) {
		incr("jobs", 1)
		if r.Status == job.StatusCanceled {
			incr("canceled", 1)
		}
		incr("targets", r.Targets)
		incr("sent", r.Sent)
		incr("duplicates", r.Duplicates)
		incr("failed", r.Failed)
		for code, n := range failedBy {
			incr("failed:"+code, n)
		}
	})
}

// AddRecall counts one stored result of the campaign's admin jobs, in fields of
// their own in the same hash.
func (s *RedisTotals) AddRecall(ctx context.Context, name string, r *job.Result) error {
	rc := Recall(r)
	return s.incr(ctx, name, func(incr func(string, int)) {
		incr("revoked", rc.Revoked)
		incr("canceledScheduled", rc.CanceledScheduled)
		incr("recallFailed", rc.Failed)
		for code, n := range rc.FailedBy {
			incr("recallFailed:"+code, n)
		}
	})
}

// incr adds to the campaign's hash the counts fields gives, in one batch, and
// renews its expiry when due.
func (s *RedisTotals) incr(ctx context.Context, name string, fields func(incr func(field string, n int))) error {
	key := s.prefix + name
	renew := s.renew.Due(name, time.Now())
	err := s.batch.Do(ctx, func(p redis.Pipeliner) {
		fields(func(field string, n int) {
			if n != 0 {
				p.HIncrBy(ctx, key, field, int64(n))
			}
		})
		if renew {
			p.Expire(ctx, key, TotalsTTL)
			p.SAdd(ctx, s.prefix+indexKey, name)
		}
	})
	if err != nil && renew {
		s.renew.Failed(name) // renew with the next result
	}
	return err
}

// indexKey (under the prefix) is the set of the campaigns that have totals:
// added to once a minute per campaign and worker, with the expiry's renewal. A
// campaign name cannot be it: names have no '*'.
const indexKey = "*index"

// Names are the campaigns with totals, sorted. Those whose totals expired leave
// the index as they are found.
func (s *RedisTotals) Names(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.prefix+indexKey).Result()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	exists := make([]*redis.IntCmd, len(names))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			exists[i] = p.Exists(ctx, s.prefix+n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for i, n := range names {
		if exists[i].Val() > 0 {
			out = append(out, n)
		} else {
			s.rdb.SRem(ctx, s.prefix+indexKey, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Get reads the campaign's totals.
func (s *RedisTotals) Get(ctx context.Context, name string) (Totals, error) {
	m, err := s.rdb.HGetAll(ctx, s.prefix+name).Result()
	if err != nil {
		return Totals{}, err
	}
	return totalsOf(m), nil
}

// GetMany reads the totals of every campaign in names in one round trip (a
// worker's answer for all its campaigns); errs[i] is names[i]'s error.
func (s *RedisTotals) GetMany(ctx context.Context, names []string) ([]Totals, []error) {
	cmds := make([]*redis.MapStringStringCmd, len(names))
	pipe := s.rdb.Pipeline()
	for i, n := range names {
		cmds[i] = pipe.HGetAll(ctx, s.prefix+n)
	}
	_, _ = pipe.Exec(ctx) // each command keeps its own error
	out, errs := make([]Totals, len(names)), make([]error, len(names))
	for i, c := range cmds {
		m, err := c.Result()
		if err != nil {
			errs[i] = err
			continue
		}
		out[i] = totalsOf(m)
	}
	return out, errs
}

// totalsOf reads a campaign's totals from its hash's fields.
func totalsOf(m map[string]string) Totals {
	t := Totals{FailedBy: map[string]int{}}
	for k, v := range m {
		n, _ := strconv.Atoi(v)
		switch k {
		case "jobs":
			t.Jobs = n
		case "canceled":
			t.Canceled = n
		case "targets":
			t.Targets = n
		case "sent":
			t.Sent = n
		case "duplicates":
			t.Duplicates = n
		case "failed":
			t.Failed = n
		case "revoked":
			t.Revoked = n
		case "canceledScheduled":
			t.CanceledScheduled = n
		case "recallFailed":
			t.RecallFailed = n
		default:
			if code, ok := strings.CutPrefix(k, "failed:"); ok {
				t.FailedBy[code] = n
			} else if code, ok := strings.CutPrefix(k, "recallFailed:"); ok {
				if t.RecallFailedBy == nil {
					t.RecallFailedBy = map[string]int{}
				}
				t.RecallFailedBy[code] = n
			}
		}
	}
	return t
}

// MemoryTotals keeps the totals in the process (dev mode).
type MemoryTotals struct {
	mu sync.Mutex
	m  map[string]*Totals
}

// NewMemoryTotals makes in-process totals.
func NewMemoryTotals() *MemoryTotals { return &MemoryTotals{m: map[string]*Totals{}} }

// Add counts one stored result of the campaign's push jobs.
func (s *MemoryTotals) Add(_ context.Context, name string, r *job.Result) error {
	s.of(name, (*Totals).Add, r)
	return nil
}

// AddRecall counts one stored result of the campaign's admin jobs.
func (s *MemoryTotals) AddRecall(_ context.Context, name string, r *job.Result) error {
	s.of(name, (*Totals).AddRecall, r)
	return nil
}

func (s *MemoryTotals) of(name string, add func(*Totals, *job.Result), r *job.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.m[name]
	if t == nil {
		t = &Totals{}
		s.m[name] = t
	}
	add(t, r)
}

// Names are the campaigns with totals, sorted.
func (s *MemoryTotals) Names(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for n := range s.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Get reads the campaign's totals.
func (s *MemoryTotals) Get(_ context.Context, name string) (Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Totals{FailedBy: map[string]int{}}
	if t := s.m[name]; t != nil {
		out = *t
		out.FailedBy = map[string]int{}
		for k, v := range t.FailedBy {
			out.FailedBy[k] = v
		}
		if t.RecallFailedBy != nil {
			out.RecallFailedBy = maps.Clone(t.RecallFailedBy)
		}
	}
	return out, nil
}

// GetMany reads the totals of every campaign in names.
func (s *MemoryTotals) GetMany(ctx context.Context, names []string) ([]Totals, []error) {
	out, errs := make([]Totals, len(names)), make([]error, len(names))
	for i, n := range names {
		out[i], errs[i] = s.Get(ctx, n)
	}
	return out, errs
}

// Report is one worker's answer to a status request: what it has in flight for
// the campaign, the campaign's totals (the same from every worker on one
// Redis), its state as the worker sees it, and why a value was not taken.
type Report struct {
	Campaign string `json:"campaign,omitempty"`
	Worker   string `json:"worker"`
	InFlight int    `json:"inFlight"`
	Totals   Totals `json:"totals"`
	State    State  `json:"state"`
	Invalid  string `json:"invalid,omitempty"`
	// TotalsError says why Totals is empty: the worker could not read them in
	// time. Its state and jobs in flight still hold.
	TotalsError string `json:"totalsError,omitempty"`
}

// StatusRequest asks every worker about one campaign, or (All) about every
// campaign it knows: those with totals, with a state in the bucket, or with jobs
// in its hands. One request answers a console's whole refresh.
type StatusRequest struct {
	Campaign string `json:"campaign,omitempty"`
	All      bool   `json:"all,omitempty"`
}

// Reports is one worker's answer to a StatusRequest with All.
type Reports struct {
	Worker    string   `json:"worker"`
	Campaigns []Report `json:"campaigns"`
}

// Invalid is why name's latest control value was not taken, or "".
func (w *Watcher) Invalid(name string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.invalid[name]
}
