package job

import (
	"time"

	"encoding/json"
	"fmt"
	"strings"
)

// The actions of an admin job.
const (
	ActionRevoke          = "revoke"          // take back what was sent: pairs (PushTemplate, PushSimple) and push tasks (PushMultiple, PushBroadcast)
	ActionCancelScheduled = "cancelScheduled" // cancel scheduled tasks that have not run
)

// Admin is an admin job: it recalls what push jobs sent, through the same rate
// limit, retries, results and dead letters. It travels on
// <root>.jobs.bulk.<campaign>.admin (or <root>.jobs.bulk.admin for event jobs).
type Admin struct {
	JobID        string   `json:"jobId,omitempty"`
	ReplyTo      string   `json:"replyTo,omitempty"`
	AppID        string   `json:"appId"`
	WorkspaceID  string   `json:"workspaceId"`
	Action       string   `json:"action"`
	TargetMsgkey Targets  `json:"targetMsgkey,omitempty"` // revoke: pairs sent with PushTemplate or PushSimple
	TaskIDs      []string `json:"taskIds,omitempty"`      // revoke: push task ids of PushMultiple and PushBroadcast calls
	UniqueIDs    []string `json:"uniqueIds,omitempty"`    // cancelScheduled: scheduled task ids
}

var adminFields = []string{"jobId", "replyTo", "appId", "workspaceId", "action", "targetMsgkey", "taskIds", "uniqueIds"}

// DecodeAdmin reads an admin job strictly, as Decode reads a push job.
func DecodeAdmin(data []byte) (*Admin, error) {
	members, err := parseMembers(data)
	if err != nil {
		return nil, invalid("", "job is not a JSON object: "+err.Error())
	}
	a := &Admin{}
	seen := map[string]bool{}
	var first error
	for _, m := range members {
		var err error
		switch {
		case seen[m.key]:
			err = invalid(m.key, "field given more than once")
		case isNull(m.value):
		case m.key == "jobId":
			a.JobID, err = parseString(m.key, m.value)
		case m.key == "replyTo":
			a.ReplyTo, err = parseString(m.key, m.value)
		case m.key == "appId":
			a.AppID, err = parseString(m.key, m.value)
		case m.key == "workspaceId":
			a.WorkspaceID, err = parseString(m.key, m.value)
		case m.key == "action":
			a.Action, err = parseString(m.key, m.value)
		case m.key == "targetMsgkey":
			a.TargetMsgkey, err = parseTargets(m.key, m.value)
		case m.key == "taskIds":
			a.TaskIDs, err = parseStrings(m.key, m.value)
		case m.key == "uniqueIds":
			a.UniqueIDs, err = parseStrings(m.key, m.value)
		default:
			err = unknownFieldOf(m.key, m.key, adminFields)
		}
		seen[m.key] = true
		if err != nil && first == nil {
			first = err
		}
	}
	return a, first
}

func parseStrings(field string, raw json.RawMessage) ([]string, error) {
	if kindOf(raw) != "an array" {
		return nil, invalid(field, "must be an array of strings, not "+kindOf(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, invalid(field, "not valid JSON: "+err.Error())
	}
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		s, err := parseString(fmt.Sprintf("%s[%d]", field, i), e)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Units is how many mPaaS calls the job makes: one per pair, task id or unique id.
func (a *Admin) Units() int { return len(a.TargetMsgkey) + len(a.TaskIDs) + len(a.UniqueIDs) }

// Validate checks an admin job: the envelope as for push jobs, appId and
// workspaceId, the action and what it carries, the id forms, and the cap.
func (a *Admin) Validate(r Rules) error {
	r = r.withDefaults()
	env := &Job{JobID: a.JobID, ReplyTo: a.ReplyTo}
	if err := env.checkEnvelope(r); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(a.AppID) == "":
		return invalid("appId", "required")
	case strings.TrimSpace(a.WorkspaceID) == "":
		return invalid("workspaceId", "required")
	}
	if err := (&Job{AppID: a.AppID}).checkServed(r); err != nil {
		return err
	}
	switch a.Action {
	case ActionRevoke:
		if len(a.UniqueIDs) > 0 {
			return invalid("uniqueIds", "not with action revoke (cancelScheduled takes them)")
		}
		if len(a.TargetMsgkey) == 0 && len(a.TaskIDs) == 0 {
			return invalid("targetMsgkey", "revoke needs targetMsgkey (pairs sent with PushTemplate or PushSimple) and/or taskIds (PushMultiple or PushBroadcast tasks)")
		}
		if err := checkPairs(a.TargetMsgkey); err != nil {
			return err
		}
		if err := checkIDs("taskIds", a.TaskIDs); err != nil {
			return err
		}
	case ActionCancelScheduled:
		if len(a.TargetMsgkey) > 0 || len(a.TaskIDs) > 0 {
			return invalid("action", "cancelScheduled takes uniqueIds only")
		}
		if len(a.UniqueIDs) == 0 {
			return invalid("uniqueIds", "required with cancelScheduled: the scheduled task ids (a scheduled chunk's data)")
		}
		if err := checkIDs("uniqueIds", a.UniqueIDs); err != nil {
			return err
		}
	case "":
		return invalid("action", "required: revoke or cancelScheduled")
	default:
		return invalid("action", "must be revoke or cancelScheduled, not "+quote(a.Action))
	}
	if n := a.Units(); n > r.MaxTargets {
		return invalid("action", fmt.Sprintf("%d calls, more than the %d a job may make", n, r.MaxTargets))
	}
	return nil
}

// MaxTaskIDLength bounds a task id of an admin job.
const MaxTaskIDLength = 128

// checkIDs checks task ids as opaque: mPaaS documents the form of neither push
// task ids nor scheduled task ids (a 32-hex id may be either), so only what no id
// can be is refused: empty, too long, white space, control characters, and a
// comma (CancelPushScheduler's UniqueIds may be a comma-separated list).
func checkIDs(field string, ids []string) error {
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		at := fmt.Sprintf("%s[%d]", field, i)
		if !isTaskID(id) {
			return invalid(at, fmt.Sprintf("%s is not a task id: 1 to %d printable characters, no space or comma", quote(id), MaxTaskIDLength))
		}
		if seen[id] {
			return invalid(at, quote(id)+" given more than once")
		}
		seen[id] = true
	}
	return nil
}

func isTaskID(s string) bool {
	if s == "" || len(s) > MaxTaskIDLength {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == ',' || c == 0x7f {
			return false
		}
	}
	return true
}

// Encode is the admin job's JSON message body.
func (a *Admin) Encode() ([]byte, error) { return encode(a) }

// ScheduledTask is one pending scheduled task of an app, as a worker answers
// `enqueue scheduled list` (from mPaaS QueryPushSchedulerList).
type ScheduledTask struct {
	UniqueID     string    `json:"uniqueId"`
	Type         int       `json:"type"` // 0 simple, 1 template, 2 multiple, 3 broadcast
	StrategyType int       `json:"strategyType"`
	PushTime     time.Time `json:"pushTime"`
	Created      time.Time `json:"created"`
	Status       string    `json:"executedStatus"`
}
