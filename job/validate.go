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
	MaxExtendedParams         = 20     // job-level extendedParams keys (mPaaS 3035 above)
	MaxTargetExtendedParams   = 9      // a targetMsgs element's extendedParams keys: fewer than 10 (mPaaS 3049)
	MaxExpiredSeconds         = 259200 // 3 days (mPaaS 3026 above)
	recurringWindowDays       = 180
)

// ReservedExtendedParams are the extendedParams keys mPaaS keeps for itself, at
// the job's level and a target's.
var ReservedExtendedParams = []string{"notifyType", "action", "silent", "pushType", "templateCode", "channel", "taskId"}

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

	// Served, when set, tells whether the worker has a credential for an app
	// (a credentials file): a job for any other app is refused naming appId.
	Served func(appID string) bool
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
	clockPattern  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$`)
	deliveryTypes = map[int64]bool{1: true, 2: true, 3: true, 5: true, 6: true, 7: true}
	// PushMultiple has no Live Activity targets (5, 6).
	multipleDeliveryTypes = map[int64]bool{1: true, 2: true, 3: true, 7: true}
	notifyTypes           = []string{"transparent", "notify"}
	classes               = []string{"0", "1"}
	activityEvents        = []string{"update", "end"}
	urgencies             = []string{"HIGH", "NORMAL"}
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

// Validate checks every rule of the mPaaS API (PushTemplate, or PushMultiple for a
// targetMsgs job) that can be checked before a call, and the envelope rules of
// this worker. It returns the first broken
// rule as a *FieldError naming the field, or nil.
func (j *Job) Validate(r Rules) error {
	r = r.withDefaults()
	checks := []func(Rules) error{
		j.checkEnvelope, j.checkKind, j.checkRequired, j.checkServed, j.checkEnums, j.checkTargets,
		j.checkMultiple, j.checkSMS, j.checkStrategy, j.checkExtras,
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
		{"taskName", j.TaskName}, {"appId", j.AppID}, {"workspaceId", j.WorkspaceID},
	} {
		if strings.TrimSpace(f.value) == "" {
			return invalid(f.name, "required")
		}
	}
	if !j.Simple() && strings.TrimSpace(j.TemplateName) == "" {
		return invalid("templateName", "required (a PushSimple job carries title and content instead, and no templateName)")
	}
	if !deliveryTypes[j.DeliveryType] {
		if j.DeliveryType == 0 {
			return invalid("deliveryType", "required: 1, 2, 3, 5, 6 or 7")
		}
		return invalid("deliveryType", fmt.Sprintf("must be 1, 2, 3, 5, 6 or 7, not %d", j.DeliveryType))
	}
	if j.ExpiredSeconds <= 0 {
		return invalid("expiredSeconds", "required, and must be greater than 0")
	}
	if j.ExpiredSeconds > MaxExpiredSeconds {
		return invalid("expiredSeconds", fmt.Sprintf("%d is more than the %d (3 days) mPaaS allows", j.ExpiredSeconds, MaxExpiredSeconds))
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
	return invalid(field, "must be "+strings.Join(allowed, " or ")+", not "+quote(value))
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
	if j.IsBroadcast() {
		return nil // checkKind: a broadcast carries no targets
	}
	field := "targetMsgkey"
	switch {
	case len(j.TargetMsgkey) > 0 && len(j.TargetMsgs) > 0:
		return invalid("targetMsgs", "give targetMsgkey (one set of values for all targets) or targetMsgs (values per target), not both")
	case len(j.TargetMsgs) > 0:
		field = "targetMsgs"
		if err := j.checkTargetMsgs(); err != nil {
			return err
		}
	case len(j.TargetMsgkey) == 0:
		return invalid("targetMsgkey", "required: at least one target → msgKey (or targetMsgs, values per target)")
	default:
		if err := checkPairs(j.TargetMsgkey); err != nil {
			return err
		}
	}
	n := j.TargetCount()
	if n > r.MaxTargets {
		return invalid(field, fmt.Sprintf("%d targets, more than the %d a job may have", n, r.MaxTargets))
	}
	if j.Scheduled() {
		size := j.CallSize()
		chunks := (n + size - 1) / size
		if chunks > r.MaxScheduledChunks {
			return invalid(field, fmt.Sprintf(
				"a scheduled job (strategyType 1 or 2) creates one mPaaS task per %d targets and may create at most %d; this one needs %d",
				size, r.MaxScheduledChunks, chunks))
		}
	}
	return nil
}

func checkPairs(t Targets) error {
	seen := make(map[string]struct{}, len(t))
	for _, p := range t {
		if p.Target == "" {
			return invalid("targetMsgkey", "a target is empty")
		}
		if p.MsgKey == "" {
			return invalid("targetMsgkey", "msgKey of target "+quote(p.Target)+" is empty")
		}
		if _, dup := seen[p.Target]; dup {
			return invalid("targetMsgkey", "target "+quote(p.Target)+" given more than once")
		}
		seen[p.Target] = struct{}{}
	}
	return nil
}

func (j *Job) checkTargetMsgs() error {
	first := make(map[string]int, len(j.TargetMsgs))
	for i, m := range j.TargetMsgs {
		at := func(f string) string { return fmt.Sprintf("targetMsgs[%d].%s", i, f) }
		if m.Target == "" {
			return invalid(at("target"), "required")
		}
		if m.MsgKey == "" {
			return invalid(at("msgKey"), "required")
		}
		if k, dup := first[m.Target]; dup {
			return invalid(at("target"), fmt.Sprintf("target %s is already targetMsgs[%d]", quote(m.Target), k))
		}
		first[m.Target] = i
		if err := checkExtended(at("extendedParams"), m.ExtendedParams, MaxTargetExtendedParams,
			"fewer than 10 keys per target (mPaaS 3049)"); err != nil {
			return err
		}
	}
	return nil
}

// checkMultiple holds what PushMultiple does not take.
func (j *Job) checkMultiple(Rules) error {
	if !j.Multiple() {
		return nil
	}
	const why = "not with targetMsgs: PushMultiple has no SMS fallback"
	switch {
	case len(j.TemplateKeyValue) > 0:
		return invalid("templateKeyValue", "not with targetMsgs: each target carries its own templateKeyValue")
	case j.SmsStrategy != nil && *j.SmsStrategy != 0:
		return invalid("smsStrategy", "must be 0 or absent "+why)
	case j.SmsSignName != "":
		return invalid("smsSignName", why)
	case j.SmsTemplateCode != "":
		return invalid("smsTemplateCode", why)
	case len(j.SmsTemplateParam) > 0:
		return invalid("smsTemplateParam", why)
	case !multipleDeliveryTypes[j.DeliveryType]:
		return invalid("deliveryType", fmt.Sprintf("must be 1, 2, 3 or 7 with targetMsgs (PushMultiple has no Live Activity targets), not %d", j.DeliveryType))
	}
	return nil
}

// checkExtended holds an extendedParams object to at most max keys, none reserved.
func checkExtended(field string, o Object, max int, limit string) error {
	if len(o) == 0 {
		return nil
	}
	members, err := parseMembers(o)
	if err != nil {
		return invalid(field, "not a JSON object")
	}
	if len(members) > max {
		return invalid(field, fmt.Sprintf("%d keys, more than mPaaS allows: %s", len(members), limit))
	}
	for _, m := range members {
		for _, r := range ReservedExtendedParams {
			if m.key == r {
				return invalid(field, fmt.Sprintf("key %s is reserved by mPaaS (reserved: %s)", quote(m.key), strings.Join(ReservedExtendedParams, ", ")))
			}
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
	if err := checkExtended("extendedParams", j.ExtendedParams, MaxExtendedParams, "at most 20 (mPaaS 3035)"); err != nil {
		return err
	}
	if j.TransparentMessageUrgency != "" && len(j.TransparentMessagePayload) == 0 {
		return invalid("transparentMessageUrgency", "only valid with transparentMessagePayload")
	}
	if j.DismissalDate != nil && *j.DismissalDate <= 0 {
		return invalid("dismissalDate", "must be a positive Unix time in seconds")
	}
	return nil
}

var (
	// PushSimple has no Live Activity targets (5, 6).
	simpleDeliveryTypes = map[int64]bool{1: true, 2: true, 3: true, 7: true}
	// PushBroadcast goes to devices: Android, iOS, HarmonyOS.
	broadcastDeliveryTypes = map[int64]bool{1: true, 2: true, 7: true}
)

// optionalField is a parameter a job may carry, and whether it does: what
// checkKind holds to the parameters each mPaaS action takes.
type optionalField struct {
	name    string
	present bool
}

// templateOnly are the parameters that PushTemplate (and some PushMultiple)
// take and neither PushSimple nor PushBroadcast does.
func (j *Job) templateOnly() []optionalField {
	return []optionalField{
		{"transparentMessagePayload", len(j.TransparentMessagePayload) > 0},
		{"transparentMessageUrgency", j.TransparentMessageUrgency != ""},
		{"thirdChannelCategory", len(j.ThirdChannelCategory) > 0},
		{"notifyLevel", len(j.NotifyLevel) > 0},
		{"miChannelId", j.MiChannelID != ""},
		{"activityEvent", j.ActivityEvent != ""},
		{"activityContentState", len(j.ActivityContentState) > 0},
		{"dismissalDate", j.DismissalDate != nil},
		{"channelId", j.ChannelID != ""},
		{"tenantId", j.TenantID != ""},
	}
}

// simpleOnly are PushSimple's own parameters.
func (j *Job) simpleOnly() []optionalField {
	return []optionalField{
		{"title", j.Title != ""}, {"content", j.Content != ""}, {"pushStyle", j.PushStyle != nil},
		{"imageUrls", len(j.ImageUrls) > 0}, {"iconUrls", len(j.IconUrls) > 0}, {"uri", j.URI != ""},
	}
}

func refuse(fields []optionalField, why string) error {
	for _, f := range fields {
		if f.present {
			return invalid(f.name, why)
		}
	}
	return nil
}

// checkKind holds the job to the parameters of its action (interface §8): a
// broadcast, a PushSimple job (title and content, no templateName) or a
// template job (PushTemplate, PushMultiple).
func (j *Job) checkKind(Rules) error {
	if err := zeroOrOne("pushAction", j.PushAction); err != nil {
		return err
	}
	if err := zeroOrOne("silent", j.Silent); err != nil {
		return err
	}
	switch {
	case j.IsBroadcast():
		return j.checkBroadcast()
	case j.TemplateName == "" && (j.Title != "" || j.Content != ""):
		return j.checkSimple()
	}
	return refuse(j.simpleOnly(), "only for a PushSimple job, which carries title and content and no templateName")
}

// zeroOrOne: pushAction (0 open the app, 1 open uri) and silent (0 or 1).
func zeroOrOne(field string, v *int64) error {
	if v != nil && *v != 0 && *v != 1 {
		return invalid(field, fmt.Sprintf("must be 0 or 1, not %d", *v))
	}
	return nil
}

func (j *Job) checkSimple() error {
	const why = "not a parameter of PushSimple (a job with title and content and no templateName)"
	switch {
	case len(j.TargetMsgs) > 0:
		return invalid("targetMsgs", why+": it takes targetMsgkey")
	case strings.TrimSpace(j.Title) == "":
		return invalid("title", "required for a PushSimple job (content without templateName)")
	case strings.TrimSpace(j.Content) == "":
		return invalid("content", "required for a PushSimple job (title without templateName)")
	case len(j.TemplateKeyValue) > 0:
		return invalid("templateKeyValue", why+": it has no template")
	case j.DeliveryType != 0 && !simpleDeliveryTypes[j.DeliveryType]:
		return invalid("deliveryType", fmt.Sprintf("must be 1, 2, 3 or 7 for a PushSimple job (no Live Activity targets), not %d", j.DeliveryType))
	}
	if err := refuse(j.templateOnly(), why); err != nil {
		return err
	}
	if j.PushStyle != nil {
		switch *j.PushStyle {
		case 0, 1:
		case 2:
			if len(j.ImageUrls) == 0 {
				return invalid("imageUrls", "required when pushStyle is 2 (image)")
			}
		default:
			return invalid("pushStyle", fmt.Sprintf("must be 0 (default), 1 (big text) or 2 (image), not %d", *j.PushStyle))
		}
	}
	return nil
}

func (j *Job) checkBroadcast() error {
	const why = "not a parameter of PushBroadcast (a job with broadcast)"
	b := j.Broadcast
	switch {
	case len(j.TargetMsgkey) > 0:
		return invalid("targetMsgkey", "not with broadcast: a broadcast goes to every device of the app")
	case len(j.TargetMsgs) > 0:
		return invalid("targetMsgs", "not with broadcast: a broadcast goes to every device of the app")
	case strings.TrimSpace(b.MsgKey) == "":
		return invalid("broadcast.msgKey", "required: the broadcast's own id, which it is sent at most once under")
	case j.DeliveryType != 0 && !broadcastDeliveryTypes[j.DeliveryType]:
		return invalid("deliveryType", fmt.Sprintf("must be 1 (Android), 2 (iOS) or 7 (HarmonyOS) for a broadcast, not %d", j.DeliveryType))
	case j.SmsStrategy != nil && *j.SmsStrategy != 0:
		return invalid("smsStrategy", "must be 0 or absent: PushBroadcast has no SMS fallback")
	case j.SmsSignName != "":
		return invalid("smsSignName", why+": it has no SMS fallback")
	case j.SmsTemplateCode != "":
		return invalid("smsTemplateCode", why+": it has no SMS fallback")
	case len(j.SmsTemplateParam) > 0:
		return invalid("smsTemplateParam", why+": it has no SMS fallback")
	}
	if err := refuse(j.simpleOnly(), why); err != nil {
		return err
	}
	if err := refuse(j.templateOnly(), why); err != nil {
		return err
	}
	if b.PushStatus != nil && (*b.PushStatus < 0 || *b.PushStatus > 2) {
		return invalid("broadcast.pushStatus", fmt.Sprintf("must be 0 (bound devices), 1 (all) or 2 (unbound), not %d", *b.PushStatus))
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"broadcast.bindPeriod", b.BindPeriod}, {"broadcast.unBindPeriod", b.UnBindPeriod}, {"broadcast.androidChannel", b.AndroidChannel}} {
		if f.v != nil && *f.v < 0 {
			return invalid(f.name, fmt.Sprintf("must not be negative, not %d", *f.v))
		}
	}
	return nil
}
