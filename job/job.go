// Package job holds the public push job and result types of the mPaaS push worker:
// what producers publish to push.jobs.*, what result consumers read from push.results.>,
// the validation every job passes before a single push is sent, and chunking into
// calls: at most ten targets for PushTemplate and PushSimple, a hundred for
// PushMultiple, one call for a whole PushBroadcast.
//
// Programs outside this module import it to build jobs and read results.
package job

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// MaxTargetsPerCall is how many target→msgKey pairs one PushTemplate call takes.
const MaxTargetsPerCall = 10

// MaxTargetsPerMultipleCall is how many targets one PushMultiple call takes.
const MaxTargetsPerMultipleCall = 100

// The mPaaS actions a job's calls use: a targetMsgkey job is sent with
// PushTemplate, a targetMsgs job with PushMultiple, a targetMsgkey job with a
// title and content and no templateName with PushSimple, and a broadcast job
// with PushBroadcast.
const (
	APITemplate  = "PushTemplate"
	APIMultiple  = "PushMultiple"
	APISimple    = "PushSimple"
	APIBroadcast = "PushBroadcast"
)

// BroadcastTarget is the target of a broadcast's one pair, (appId, workspaceId,
// BroadcastTarget, msgKey): what the dedupe store claims, so that a broadcast
// goes out at most once per msgKey.
const BroadcastTarget = "broadcast"

// The mPaaS actions of admin jobs' calls (see Admin), as a result's api names them.
const (
	APIRevokeMessage   = "RevokePushMessage"   // one pair of a PushTemplate push
	APIRevokeTask      = "RevokePushTask"      // a whole PushMultiple task
	APICancelScheduler = "CancelPushScheduler" // scheduled tasks that have not run
)

// Job is one push job: the 25 PushTemplate parameters of the mPaaS API under their
// lowerCamelCase names, ChannelID and TenantID, plus the envelope fields JobID,
// ReplyTo and NotAfter. It carries its targets in exactly one of TargetMsgkey (one
// set of template values for all: PushTemplate) or TargetMsgs (each target its
// own values: PushMultiple).
//
// Optional integers are pointers so that an explicit 0 ("strategyType":0) is told
// apart from an absent field: every parameter the job carries is sent to mPaaS, and
// absent ones are not.
type Job struct {
	JobID    string     `json:"jobId,omitempty"`
	ReplyTo  string     `json:"replyTo,omitempty"`
	NotAfter *time.Time `json:"notAfter,omitempty"`

	TaskName       string      `json:"taskName"`
	AppID          string      `json:"appId"`
	WorkspaceID    string      `json:"workspaceId"`
	DeliveryType   int64       `json:"deliveryType"`
	TargetMsgkey   Targets     `json:"targetMsgkey,omitempty"`
	TargetMsgs     []TargetMsg `json:"targetMsgs,omitempty"`
	ExpiredSeconds int64       `json:"expiredSeconds"`
	TemplateName   string      `json:"templateName"`

	TemplateKeyValue          Object `json:"templateKeyValue,omitempty"`
	ExtendedParams            Object `json:"extendedParams,omitempty"`
	StrategyContent           Object `json:"strategyContent,omitempty"`
	SmsTemplateParam          Object `json:"smsTemplateParam,omitempty"`
	TransparentMessagePayload Object `json:"transparentMessagePayload,omitempty"`
	ThirdChannelCategory      Object `json:"thirdChannelCategory,omitempty"`
	NotifyLevel               Object `json:"notifyLevel,omitempty"`
	ActivityContentState      Object `json:"activityContentState,omitempty"`

	Classification            string `json:"classification,omitempty"`
	NotifyType                string `json:"notifyType,omitempty"`
	TransparentMessageUrgency string `json:"transparentMessageUrgency,omitempty"`
	SmsSignName               string `json:"smsSignName,omitempty"`
	SmsTemplateCode           string `json:"smsTemplateCode,omitempty"`
	MiChannelID               string `json:"miChannelId,omitempty"`
	ActivityEvent             string `json:"activityEvent,omitempty"`
	ChannelID                 string `json:"channelId,omitempty"`
	TenantID                  string `json:"tenantId,omitempty"`

	StrategyType  *int64 `json:"strategyType,omitempty"`
	SmsStrategy   *int64 `json:"smsStrategy,omitempty"`
	DismissalDate *int64 `json:"dismissalDate,omitempty"`

	// PushAction and Silent: PushSimple, PushBroadcast (and the typed requests
	// of the other two actions) take them.
	PushAction *int64 `json:"pushAction,omitempty"`
	Silent     *int64 `json:"silent,omitempty"`

	// A PushSimple job (no templateName): free text and how it shows.
	Title     string `json:"title,omitempty"`
	Content   string `json:"content,omitempty"`
	PushStyle *int64 `json:"pushStyle,omitempty"`
	ImageUrls Object `json:"imageUrls,omitempty"`
	IconUrls  Object `json:"iconUrls,omitempty"`
	URI       string `json:"uri,omitempty"`

	// Broadcast makes the job a PushBroadcast to every device of the app: it
	// carries no targets.
	Broadcast *Broadcast `json:"broadcast,omitempty"`
}

// Broadcast is what a PushBroadcast job sends besides the template: its msgKey
// (the business's own id of the broadcast, required) and which devices.
type Broadcast struct {
	MsgKey         string `json:"msgKey"`
	PushStatus     *int64 `json:"pushStatus,omitempty"` // 0 bound devices, 1 all, 2 unbound
	BindPeriod     *int64 `json:"bindPeriod,omitempty"`
	UnBindPeriod   *int64 `json:"unBindPeriod,omitempty"`
	AndroidChannel *int64 `json:"androidChannel,omitempty"`
}

// encode marshals v without HTML escaping.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Scheduled reports whether every call of this job creates a scheduled task at
// mPaaS (strategyType 1 or 2).
func (j *Job) Scheduled() bool {
	return j.StrategyType != nil && (*j.StrategyType == 1 || *j.StrategyType == 2)
}

// Multiple reports whether the job carries targetMsgs, each target with its own
// values: its calls use PushMultiple.
func (j *Job) Multiple() bool { return len(j.TargetMsgs) > 0 && j.Broadcast == nil }

// Simple reports a PushSimple job: free text (title, content) instead of a
// template, for targetMsgkey targets.
func (j *Job) Simple() bool {
	return j.TemplateName == "" && j.Broadcast == nil && len(j.TargetMsgs) == 0 && (j.Title != "" || j.Content != "")
}

// IsBroadcast reports a PushBroadcast job: every device of the app, one call.
func (j *Job) IsBroadcast() bool { return j.Broadcast != nil }

// API is the mPaaS action of the job's calls: the job's kind decides it.
func (j *Job) API() string {
	switch {
	case j.IsBroadcast():
		return APIBroadcast
	case j.Multiple():
		return APIMultiple
	case j.Simple():
		return APISimple
	}
	return APITemplate
}

// CallSize is how many targets one call of this job takes at most; a
// broadcast's one call takes its one pair.
func (j *Job) CallSize() int {
	switch {
	case j.IsBroadcast():
		return 1
	case j.Multiple():
		return MaxTargetsPerMultipleCall
	}
	return MaxTargetsPerCall
}

// TargetCount is the number of targets the job carries, of either kind; a
// broadcast counts as one.
func (j *Job) TargetCount() int {
	if j.IsBroadcast() {
		return 1
	}
	return len(j.TargetMsgkey) + len(j.TargetMsgs)
}

// Pairs are the job's target→msgKey pairs in order, of either kind: what the
// dedupe store claims and a result reports. For a targetMsgs job it is a new
// slice; a broadcast's one pair is (BroadcastTarget, its msgKey).
func (j *Job) Pairs() Targets {
	if j.IsBroadcast() {
		return Targets{{Target: BroadcastTarget, MsgKey: j.Broadcast.MsgKey}}
	}
	if !j.Multiple() {
		return j.TargetMsgkey
	}
	t := make(Targets, len(j.TargetMsgs))
	for i, m := range j.TargetMsgs {
		t[i] = Target{Target: m.Target, MsgKey: m.MsgKey}
	}
	return t
}

// Messages are the targetMsgs entries of targets (which must be the job's own), in
// the order of targets; ok is false when one of them is not in the job.
func (j *Job) Messages(targets Targets) (msgs []TargetMsg, ok bool) {
	msgs = make([]TargetMsg, 0, len(targets))
	var index map[string]int
	next := 0
	for _, t := range targets {
		// Calls take the job's targets in order, so the match is usually next.
		if next < len(j.TargetMsgs) && j.TargetMsgs[next].Target == t.Target {
			msgs = append(msgs, j.TargetMsgs[next])
			next++
			continue
		}
		if index == nil {
			index = make(map[string]int, len(j.TargetMsgs))
			for i, m := range j.TargetMsgs {
				index[m.Target] = i
			}
		}
		i, found := index[t.Target]
		if !found {
			return nil, false
		}
		msgs = append(msgs, j.TargetMsgs[i])
		next = i + 1
	}
	return msgs, true
}

// Only is a copy of the job that carries only targets (the job's own), each with
// its values: a dead letter of its failed targets replays as the same kind of job.
func (j *Job) Only(targets Targets) *Job {
	c := *j
	if j.IsBroadcast() {
		return &c // its one pair is its msgKey
	}
	if !j.Multiple() {
		c.TargetMsgkey = targets
		return &c
	}
	c.TargetMsgs, _ = j.Messages(targets)
	return &c
}

// TargetMsg is one target of a targetMsgs job, with its own template values and
// extended parameters.
type TargetMsg struct {
	Target           string `json:"target"`
	MsgKey           string `json:"msgKey"`
	TemplateKeyValue Object `json:"templateKeyValue,omitempty"`
	ExtendedParams   Object `json:"extendedParams,omitempty"`
}

// Int64 returns a pointer to v, for the optional integer fields.
func Int64(v int64) *int64 { return &v }

// Target is one target→msgKey pair.
type Target struct {
	Target string
	MsgKey string
}

// Targets is an ordered target→msgKey map. It is a JSON object on the wire; the
// order is kept as written, so the same job always gives the same chunks.
type Targets []Target

// MarshalJSON writes the pairs as one JSON object, in order.
func (t Targets) MarshalJSON() ([]byte, error) { return t.appendJSON(nil), nil }

// UnmarshalJSON reads an object (or a string holding one) of string values, in order.
func (t *Targets) UnmarshalJSON(data []byte) error {
	v, err := parseTargets("targetMsgkey", data)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Object is a JSON object kept as compact JSON text, in the order it was written.
// The mPaaS API takes these parameters as JSON strings; a job may give them as an
// object or as a string holding one.
type Object []byte

// NewObject marshals v, which must encode as a JSON object (a map or a struct).
func NewObject(v any) (Object, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return parseObject("object", b)
}

// MarshalJSON writes the object itself.
func (o Object) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

// UnmarshalJSON reads an object or a string holding one.
func (o *Object) UnmarshalJSON(data []byte) error {
	v, err := parseObject("object", data)
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// String is the compact JSON text that goes on the wire.
func (o Object) String() string { return string(o) }

// Chunk splits targets into calls of at most size pairs (a job's CallSize; 0
// means MaxTargetsPerCall, and size is capped at MaxTargetsPerMultipleCall), in the
// order given. The same list always gives the same chunks; the chunks share the
// backing array of t.
func Chunk(t Targets, size int) []Targets {
	if size <= 0 {
		size = MaxTargetsPerCall
	}
	size = min(size, MaxTargetsPerMultipleCall)
	chunks := make([]Targets, 0, (len(t)+size-1)/size)
	for len(t) > 0 {
		n := min(size, len(t))
		chunks = append(chunks, t[:n:n])
		t = t[n:]
	}
	return chunks
}

// String is a short description for logs: it names no target.
func (t Targets) String() string { return fmt.Sprintf("%d targets", len(t)) }
