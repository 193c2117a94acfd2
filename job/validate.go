package job

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/topology"
)

// Defaults of Rules.
const (
	DefaultMaxTargets         = 1000
	DefaultMaxScheduledChunks = 10
	MaxJobIDLength            = 128
	MaxExtendedParams         = 20
	recurringWindowDays       = 180
)

// MPaaSZone is the time zone of the mPaaS region (China Standard Time, UTC+8): the
// days of a recurring push's window are counted in it.
var MPaaSZone = time.FixedZone("UTC+8", 8*60*60)

// Rules are the settings validation depends on. The zero value means the defaults.
type Rules struct {
	MaxTargets         int            // targets per job; 0 means DefaultMaxTargets
	MaxScheduledChunks int            // chunks (calls) per scheduled job; 0 means DefaultMaxScheduledChunks
	Zone               *time.Location // where "today" is counted; nil means MPaaSZone
	Now                time.Time      // zero means time.Now()
	// Topology is where replyTo must point (under its result prefix); the zero
	// value means topology.Default().
	Topology topology.Topology

	// SkipTimeRules turns off the rules about now (a future fixedTime, a recurring
	// window that starts today or later). Set it for a redelivered job, so that a job
	// that was half sent is never rejected later because time moved on.
	SkipTimeRules bool
}

func (r Rules) withDefaults() Rules {
	if r.MaxTargets <= 0 {
		r.MaxTargets = DefaultMaxTargets
	}
	if r.MaxScheduledChunks <= 0 {
		r.MaxScheduledChunks = DefaultMaxScheduledChunks
	}
	if r.Zone == nil {
		r.Zone = MPaaSZone
	}
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	r.Topology = r.Topology.OrDefault()
	return r
}

var (
	clockPattern   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$`)
	deliveryTypes  = map[int64]bool{1: true, 2: true, 3: true, 5: true, 6: true, 7: true}
	notifyTypes    = []string{"transparent", "notify"}
	classes        = []string{"0", "1"}
	activityEvents = []string{"update", "end"}
	urgencies      = []string{"HIGH", "NORMAL"}
)

// ValidJobID reports whether id can be a job id: 1–128 characters, dot-separated
// tokens of letters, digits, '-', '_' and ':' (it becomes part of a subject).
func ValidJobID(id string) bool {
	if id == "" || len(id) > MaxJobIDLength || id[0] == '.' || id[len(id)-1] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == ':':
		case c == '.' && id[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

// Validate checks every rule of the mPaaS PushTemplate API that can be checked
// before a call, and the envelope rules of this worker. It returns the first broken
// rule as a *FieldError naming the field, or nil.
func (j *Job) Validate(r Rules) error {
	r = r.withDefaults()
	checks := []func(Rules) error{
		j.checkEnvelope, j.checkRequired, j.checkEnums, j.checkTargets,
		j.checkSMS, j.checkStrategy, j.checkExtras,
	}
	for _, check := range checks {
		if err := check(r); err != nil {
			return err
		}
	}
	return nil
}

func (j *Job) checkEnvelope(r Rules) error {
	if j.JobID != "" && !ValidJobID(j.JobID) {
		return invalid("jobId", "must be 1–128 characters: dot-separated tokens of letters, digits, '-', '_' or ':'")
	}
	if j.ReplyTo != "" && !r.Topology.ValidReplyTo(j.ReplyTo) {
		return invalid("replyTo", "must be a subject under "+r.Topology.ResultSubjects()+" (no wildcards, spaces or empty tokens)")
	}
	return nil
}

func (j *Job) checkRequired(Rules) error {
	for _, f := range []struct{ name, value string }{
		{"taskName", j.TaskName}, {"appId", j.AppID}, {"workspaceId", j.WorkspaceID}, {"templateName", j.TemplateName},
	} {
		if strings.TrimSpace(f.value) == "" {
			return invalid(f.name, "required")
		}
	}
	if !deliveryTypes[j.DeliveryType] {
		if j.DeliveryType == 0 {
			return invalid("deliveryType", "required: 1, 2, 3, 5, 6 or 7")
		}
		return invalid("deliveryType", fmt.Sprintf("must be 1, 2, 3, 5, 6 or 7, not %d", j.DeliveryType))
	}
	if j.ExpiredSeconds <= 0 {
		// mPaaS publishes no maximum (docs/mpaas.md: unconfirmed), so only the lower bound is checked.
		return invalid("expiredSeconds", "required, and must be greater than 0")
	}
	if strings.Contains(j.TemplateName, ",") {
		return invalid("templateName", "must not contain a comma")
	}
	return nil
}

func oneOf(field, value string, allowed []string) error {
	if value == "" {
		return nil
	}
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return invalid(field, fmt.Sprintf("must be %s, not %q", strings.Join(allowed, " or "), value))
}

func (j *Job) checkEnums(Rules) error {
	for _, e := range []error{
		oneOf("classification", j.Classification, classes),
		oneOf("notifyType", j.NotifyType, notifyTypes),
		oneOf("activityEvent", j.ActivityEvent, activityEvents),
		oneOf("transparentMessageUrgency", j.TransparentMessageUrgency, urgencies),
	} {
		if e != nil {
			return e
		}
	}
	return nil
}

func (j *Job) checkTargets(r Rules) error {
	if len(j.TargetMsgkey) == 0 {
		return invalid("targetMsgkey", "required: at least one target → msgKey")
	}
	if len(j.TargetMsgkey) > r.MaxTargets {
		return invalid("targetMsgkey", fmt.Sprintf("%d targets, more than the %d a job may have", len(j.TargetMsgkey), r.MaxTargets))
	}
	seen := make(map[string]struct{}, len(j.TargetMsgkey))
	for _, t := range j.TargetMsgkey {
		if t.Target == "" {
			return invalid("targetMsgkey", "a target is empty")
		}
		if t.MsgKey == "" {
			return invalid("targetMsgkey", fmt.Sprintf("msgKey of target %q is empty", t.Target))
		}
		if _, dup := seen[t.Target]; dup {
			return invalid("targetMsgkey", fmt.Sprintf("target %q given more than once", t.Target))
		}
		seen[t.Target] = struct{}{}
	}
	if j.Scheduled() {
		chunks := (len(j.TargetMsgkey) + MaxTargetsPerCall - 1) / MaxTargetsPerCall
		if chunks > r.MaxScheduledChunks {
			return invalid("targetMsgkey", fmt.Sprintf(
				"a scheduled job (strategyType 1 or 2) creates one mPaaS task per %d targets and may create at most %d; this one needs %d",
				MaxTargetsPerCall, r.MaxScheduledChunks, chunks))
		}
	}
	return nil
}

func (j *Job) checkSMS(Rules) error {
	if j.SmsStrategy == nil || *j.SmsStrategy == 0 {
		return nil
	}
	// The meanings of 1 and 2 are not confirmed (docs/mpaas.md); both are accepted.
	if *j.SmsStrategy != 1 && *j.SmsStrategy != 2 {
		return invalid("smsStrategy", fmt.Sprintf("must be 0, 1 or 2, not %d", *j.SmsStrategy))
	}
	switch {
	case j.SmsSignName == "":
		return invalid("smsSignName", "required when smsStrategy is not 0")
	case j.SmsTemplateCode == "":
		return invalid("smsTemplateCode", "required when smsStrategy is not 0")
	case len(j.SmsTemplateParam) == 0:
		return invalid("smsTemplateParam", "required when smsStrategy is not 0")
	}
	return nil
}

func (j *Job) checkExtras(Rules) error {
	if len(j.ExtendedParams) > 0 {
		members, err := parseMembers(j.ExtendedParams)
		if err != nil {
			return invalid("extendedParams", "not a JSON object")
		}
		if len(members) > MaxExtendedParams {
			return invalid("extendedParams", fmt.Sprintf("%d entries, more than the %d mPaaS allows", len(members), MaxExtendedParams))
		}
	}
	if j.TransparentMessageUrgency != "" && len(j.TransparentMessagePayload) == 0 {
		return invalid("transparentMessageUrgency", "only valid with transparentMessagePayload")
	}
	if j.DismissalDate != nil && *j.DismissalDate <= 0 {
		return invalid("dismissalDate", "must be a positive Unix time in seconds")
	}
	return nil
}
