package job

import (
	"time"
)

// Status of a whole job.
type Status string

// The statuses of a result (docs/jobs.md, "The result").
const (
	StatusSucceeded Status = "succeeded" // nothing failed
	StatusPartial   Status = "partial"   // some targets failed, some were sent or were duplicates
	StatusFailed    Status = "failed"    // every target failed
	StatusRejected  Status = "rejected"  // the job itself is invalid; nothing was sent
	StatusCanceled  Status = "canceled"  // its campaign was canceled before every target was sent
)

// Chunk statuses.
const (
	ChunkSent   = "sent"
	ChunkFailed = "failed"
)

// Result is the one final answer to a job, published on the job's replyTo.
//
// Build it with NewResult, AddChunk and AddSkipped, then Finish: Finish keeps
// Targets = Sent + Duplicates + Failed and computes Status.
type Result struct {
	JobID       string        `json:"jobId"`
	Status      Status        `json:"status"`
	Error       string        `json:"error"`
	AppID       string        `json:"appId"`
	WorkspaceID string        `json:"workspaceId"`
	TaskName    string        `json:"taskName"`
	API         string        `json:"api,omitempty"`      // the mPaaS action of the job's calls: APITemplate, APIMultiple, APISimple or APIBroadcast; absent when rejected
	Campaign    string        `json:"campaign,omitempty"` // the job's campaign (bulk lane); absent for event jobs
	Targets     int           `json:"targets"`
	Sent        int           `json:"sent"`
	Duplicates  int           `json:"duplicates"`
	Failed      int           `json:"failed"`
	Chunks      []ChunkResult `json:"chunks"`
	Skipped     Targets       `json:"skipped"`
	Deliveries  int           `json:"deliveries"`
	StartedAt   Time          `json:"startedAt"`
	FinishedAt  Time          `json:"finishedAt"`
	TraceID     string        `json:"traceId,omitempty"` // the W3C trace the job came with (or began), when it had one
	// Truncated: the whole result was over the server's maximum message size,
	// so it was stored without its chunks and skipped targets (empty here);
	// ResultBytes is the whole result's size. Counts, status, error and
	// times are whole.
	Truncated   bool `json:"truncated,omitempty"`
	ResultBytes int  `json:"resultBytes,omitempty"`

	strategyType int64 // the job's, stamped on each chunk by AddChunk
}

// ChunkResult is one mPaaS call that ended a job's chunk. TargetMsgkey lists its
// targets (up to 100 for PushMultiple, without their values; none for
// PushBroadcast, whose one call counts as one target).
type ChunkResult struct {
	TargetMsgkey  Targets `json:"targetMsgkey"`
	Status        string  `json:"status"` // ChunkSent or ChunkFailed
	Attempts      int     `json:"attempts"`
	RequestID     string  `json:"requestId"`
	ResultCode    string  `json:"resultCode"`
	ResultMessage string  `json:"resultMessage"`
	PushSuccess   bool    `json:"pushSuccess"`
	Data          string  `json:"data"` // the PushResult's Data: a push task id, or a scheduled task's id when StrategyType is 1 or 2
	Error         string  `json:"error"`
	// StrategyType is the job's strategyType when it was not 0: 1 or 2 make
	// Data a scheduled task's id. mPaaS documents the form of neither id, so
	// this is how recall tells them apart. Results stored before it existed
	// lack it, and read as 0 (an immediate push).
	StrategyType int64 `json:"strategyType,omitempty"`
}

// Scheduled reports whether the chunk's call created a scheduled task, whose id
// is Data (strategyType 1 or 2).
func (c ChunkResult) Scheduled() bool { return c.StrategyType == 1 || c.StrategyType == 2 }

// NewResult starts the result of job j (which must have its JobID set).
func NewResult(j *Job, deliveries int, startedAt time.Time) *Result {
	r := &Result{
		JobID:       j.JobID,
		AppID:       j.AppID,
		WorkspaceID: j.WorkspaceID,
		TaskName:    j.TaskName,
		API:         j.API(),
		Deliveries:  deliveries,
		StartedAt:   Time{startedAt},
	}
	if j.StrategyType != nil {
		r.strategyType = *j.StrategyType
	}
	return r
}

// AddChunk records a call that ended: its targets count as sent or failed. A
// result begun by NewResult stamps the job's strategyType on the chunk. A
// broadcast's chunk lists no target and counts as one.
func (r *Result) AddChunk(c ChunkResult) {
	if c.StrategyType == 0 {
		c.StrategyType = r.strategyType
	}
	n := len(c.TargetMsgkey)
	if r.API == APIBroadcast {
		c.TargetMsgkey, n = Targets{}, 1
	}
	r.Chunks = append(r.Chunks, c)
	if c.Status == ChunkSent {
		r.Sent += n
	} else {
		r.Failed += n
	}
}

// AddSkipped records a target that another job sent or is sending: a duplicate.
func (r *Result) AddSkipped(t Target) {
	r.Skipped = append(r.Skipped, t)
	r.Duplicates++
}

// Finish sets FinishedAt, Targets and Status.
func (r *Result) Finish(at time.Time) *Result {
	r.FinishedAt = Time{at}
	if r.Status != StatusRejected {
		r.Targets = r.Sent + r.Duplicates + r.Failed
		r.Status = StatusOf(r.Sent, r.Duplicates, r.Failed)
	}
	if r.Chunks == nil {
		r.Chunks = []ChunkResult{}
	}
	return r
}

// Encode is the result's JSON message body, without HTML escaping.
func (r *Result) Encode() ([]byte, error) { return encode(r) }

// Truncate is the result without its chunks and skipped targets, for a result
// of size bytes too big to store: the same counts, status and times, and the
// fields echoed from the job clipped (Clip).
func (r *Result) Truncate(size int) *Result {
	t := *r
	t.Chunks, t.Skipped = []ChunkResult{}, Targets{}
	t.Truncated, t.ResultBytes = true, size
	t.Error, t.AppID, t.WorkspaceID, t.TaskName, t.Campaign = Clip(r.Error), Clip(r.AppID), Clip(r.WorkspaceID), Clip(r.TaskName), Clip(r.Campaign)
	return &t
}

// StatusOf is the status rule of docs/jobs.md for a job that was not rejected.
func StatusOf(sent, duplicates, failed int) Status {
	switch {
	case failed == 0:
		return StatusSucceeded
	case sent+duplicates == 0:
		return StatusFailed
	default:
		return StatusPartial
	}
}

// Rejected is the result of an invalid job: nothing was sent, every parsed target
// counts as failed, and Error names the field and the rule. j may be nil when the
// message could not be read at all.
func Rejected(jobID string, j *Job, err error, deliveries int, at time.Time) *Result {
	r := &Result{JobID: jobID, Status: StatusRejected, Error: Clip(err.Error()), Deliveries: deliveries, StartedAt: Time{at}}
	if j != nil {
		r.AppID, r.WorkspaceID, r.TaskName = j.AppID, j.WorkspaceID, j.TaskName
		r.Targets = j.TargetCount()
		r.Failed = r.Targets
	}
	return r.Finish(at)
}

// Time is a UTC time that marshals as RFC 3339 with milliseconds.
type Time struct{ time.Time }

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes the time in UTC with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(timeLayout) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	return t.Time.UnmarshalJSON(b)
}
