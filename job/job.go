// Package job holds the public push job and result types of the mPaaS push worker:
// what producers publish to push.jobs.*, what result consumers read from push.results.>,
// the validation every job passes before a single push is sent, and chunking into
// calls of at most ten targets.
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

// Job is one push job: the 25 PushTemplate parameters of the mPaaS API under their
// lowerCamelCase names, plus the envelope fields JobID, ReplyTo and NotAfter.
//
// Optional integers are pointers so that an explicit 0 ("strategyType":0) is told
// apart from an absent field: every parameter the job carries is sent to mPaaS, and
// absent ones are not.
type Job struct {
	JobID    string     `json:"jobId,omitempty"`
	ReplyTo  string     `json:"replyTo,omitempty"`
	NotAfter *time.Time `json:"notAfter,omitempty"`

	TaskName       string  `json:"taskName"`
	AppID          string  `json:"appId"`
	WorkspaceID    string  `json:"workspaceId"`
	DeliveryType   int64   `json:"deliveryType"`
	TargetMsgkey   Targets `json:"targetMsgkey"`
	ExpiredSeconds int64   `json:"expiredSeconds"`
	TemplateName   string  `json:"templateName"`

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

	StrategyType  *int64 `json:"strategyType,omitempty"`
	SmsStrategy   *int64 `json:"smsStrategy,omitempty"`
	DismissalDate *int64 `json:"dismissalDate,omitempty"`
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

// Chunk splits targets into calls of at most size pairs (size is capped at
// MaxTargetsPerCall), in the order given. The same list always gives the same chunks;
// the chunks share the backing array of t.
func Chunk(t Targets, size int) []Targets {
	if size <= 0 || size > MaxTargetsPerCall {
		size = MaxTargetsPerCall
	}
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
