package job

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// now is 2026-11-27 10:00 in the mPaaS zone (02:00 UTC).
var now = time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

// day is 00:00 UTC+8 of today plus n days, in Unix milliseconds.
func day(n int) int64 {
	return ms(time.Date(2026, 11, 27+n, 0, 0, 0, 0, MPaaSZone))
}

func validJob() *Job {
	return &Job{
		TaskName: "order paid", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: Targets{{"user1024", "1578807462788"}}, ExpiredSeconds: 300,
		TemplateName: "测试模板",
	}
}

func manyTargets(n int) Targets {
	t := make(Targets, n)
	for i := range t {
		t[i] = Target{fmt.Sprintf("u%d", i), fmt.Sprintf("k%d", i)}
	}
	return t
}

func recurring(start, end int64, clock string) Object {
	return Object(fmt.Sprintf(`{"startTime":%d,"endTime":%d,"circleType":2,"circleValue":[1,7],"time":%q}`, start, end, clock))
}

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Job)
		field  string // "" means valid
		rule   string
	}{
		{"valid minimal", func(*Job) {}, "", ""},

		// envelope
		{"jobId ok", func(j *Job) { j.JobID = "order.8812:paid_x-1" }, "", ""},
		{"jobId 128", func(j *Job) { j.JobID = strings.Repeat("a", 128) }, "", ""},
		{"jobId 129", func(j *Job) { j.JobID = strings.Repeat("a", 129) }, "jobId", "1–128"},
		{"jobId empty token", func(j *Job) { j.JobID = "a..b" }, "jobId", "tokens"},
		{"jobId leading dot", func(j *Job) { j.JobID = ".a" }, "jobId", "tokens"},
		{"jobId trailing dot", func(j *Job) { j.JobID = "a." }, "jobId", "tokens"},
		{"jobId wildcard", func(j *Job) { j.JobID = "a.*" }, "jobId", "tokens"},
		{"jobId space", func(j *Job) { j.JobID = "a b" }, "jobId", "tokens"},
		{"jobId non-ascii", func(j *Job) { j.JobID = "订单" }, "jobId", "tokens"},
		{"replyTo ok", func(j *Job) { j.ReplyTo = "push.results.orders.eu" }, "", ""},
		{"replyTo outside", func(j *Job) { j.ReplyTo = "orders.results" }, "replyTo", "push.results.>"},
		{"replyTo bare prefix", func(j *Job) { j.ReplyTo = "push.results." }, "replyTo", "push.results.>"},
		{"replyTo wildcard", func(j *Job) { j.ReplyTo = "push.results.>" }, "replyTo", "wildcards"},
		{"replyTo star", func(j *Job) { j.ReplyTo = "push.results.*" }, "replyTo", "wildcards"},
		{"replyTo empty token", func(j *Job) { j.ReplyTo = "push.results.a..b" }, "replyTo", "empty tokens"},
		{"replyTo space", func(j *Job) { j.ReplyTo = "push.results.a b" }, "replyTo", "spaces"},

		// required fields
		{"taskName missing", func(j *Job) { j.TaskName = "" }, "taskName", "required"},
		{"taskName blank", func(j *Job) { j.TaskName = "  " }, "taskName", "required"},
		{"appId missing", func(j *Job) { j.AppID = "" }, "appId", "required"},
		{"workspaceId missing", func(j *Job) { j.WorkspaceID = "" }, "workspaceId", "required"},
		{"templateName missing", func(j *Job) { j.TemplateName = "" }, "templateName", "required"},
		{"deliveryType missing", func(j *Job) { j.DeliveryType = 0 }, "deliveryType", "required"},
		{"targetMsgkey missing", func(j *Job) { j.TargetMsgkey = nil }, "targetMsgkey", "required"},
		{"expiredSeconds missing", func(j *Job) { j.ExpiredSeconds = 0 }, "expiredSeconds", "greater than 0"},
		{"expiredSeconds negative", func(j *Job) { j.ExpiredSeconds = -5 }, "expiredSeconds", "greater than 0"},
		{"expiredSeconds 3 days", func(j *Job) { j.ExpiredSeconds = 259200 }, "", ""},
		{"expiredSeconds over 3 days", func(j *Job) { j.ExpiredSeconds = 259201 }, "expiredSeconds", "more than the 259200"},
		{"templateName comma", func(j *Job) { j.TemplateName = "a,b" }, "templateName", "comma"},

		// allowed values
		{"deliveryType 1", func(j *Job) { j.DeliveryType = 1 }, "", ""},
		{"deliveryType 2", func(j *Job) { j.DeliveryType = 2 }, "", ""},
		{"deliveryType 5", func(j *Job) { j.DeliveryType = 5 }, "", ""},
		{"deliveryType 6", func(j *Job) { j.DeliveryType = 6 }, "", ""},
		{"deliveryType 7", func(j *Job) { j.DeliveryType = 7 }, "", ""},
		{"deliveryType 4", func(j *Job) { j.DeliveryType = 4 }, "deliveryType", "not 4"},
		{"deliveryType -1", func(j *Job) { j.DeliveryType = -1 }, "deliveryType", "not -1"},
		{"notifyType transparent", func(j *Job) { j.NotifyType = "transparent" }, "", ""},
		{"notifyType notify", func(j *Job) { j.NotifyType = "notify" }, "", ""},
		{"notifyType other", func(j *Job) { j.NotifyType = "NOTIFY" }, "notifyType", `not "NOTIFY"`},
		{"classification 0", func(j *Job) { j.Classification = "0" }, "", ""},
		{"classification 1", func(j *Job) { j.Classification = "1" }, "", ""},
		{"classification 2", func(j *Job) { j.Classification = "2" }, "classification", `not "2"`},
		{"activityEvent update", func(j *Job) { j.ActivityEvent = "update" }, "", ""},
		{"activityEvent end", func(j *Job) { j.ActivityEvent = "end"; j.DismissalDate = Int64(1893456000) }, "", ""},
		{"activityEvent start", func(j *Job) { j.ActivityEvent = "start" }, "activityEvent", `not "start"`},
		{"urgency HIGH with payload", func(j *Job) {
			j.TransparentMessageUrgency = "HIGH"
			j.TransparentMessagePayload = Object(`{"hms":{}}`)
		}, "", ""},
		{"urgency NORMAL with payload", func(j *Job) {
			j.TransparentMessageUrgency = "NORMAL"
			j.TransparentMessagePayload = Object(`{"harmonyos":{}}`)
		}, "", ""},
		{"urgency LOW", func(j *Job) {
			j.TransparentMessageUrgency = "LOW"
			j.TransparentMessagePayload = Object(`{"hms":{}}`)
		}, "transparentMessageUrgency", `not "LOW"`},
		{"urgency without payload", func(j *Job) { j.TransparentMessageUrgency = "HIGH" }, "transparentMessageUrgency", "only valid with transparentMessagePayload"},
		{"dismissalDate zero", func(j *Job) { j.DismissalDate = Int64(0) }, "dismissalDate", "positive"},

		// targets
		{"target empty", func(j *Job) { j.TargetMsgkey = Targets{{"", "k"}} }, "targetMsgkey", "a target is empty"},
		{"msgKey empty", func(j *Job) { j.TargetMsgkey = Targets{{"u1", ""}} }, "targetMsgkey", `msgKey of target "u1" is empty`},
		{"target repeated", func(j *Job) { j.TargetMsgkey = Targets{{"u1", "a"}, {"u1", "b"}} }, "targetMsgkey", "more than once"},
		{"1000 targets", func(j *Job) { j.TargetMsgkey = manyTargets(1000) }, "", ""},
		{"1001 targets", func(j *Job) { j.TargetMsgkey = manyTargets(1001) }, "targetMsgkey", "more than the 1000"},

		// sms
		{"sms 0 needs nothing", func(j *Job) { j.SmsStrategy = Int64(0) }, "", ""},
		{"sms complete", func(j *Job) {
			j.SmsStrategy = Int64(2)
			j.SmsSignName, j.SmsTemplateCode, j.SmsTemplateParam = "mPaaS 测试", "SMS_216070269", Object(`{"code":123456}`)
		}, "", ""},
		{"sms no sign name", func(j *Job) {
			j.SmsStrategy = Int64(1)
			j.SmsTemplateCode, j.SmsTemplateParam = "SMS_1", Object(`{}`)
		}, "smsSignName", "required when smsStrategy is not 0"},
		{"sms no template code", func(j *Job) {
			j.SmsStrategy = Int64(1)
			j.SmsSignName, j.SmsTemplateParam = "s", Object(`{}`)
		}, "smsTemplateCode", "required when smsStrategy is not 0"},
		{"sms no template param", func(j *Job) {
			j.SmsStrategy = Int64(2)
			j.SmsSignName, j.SmsTemplateCode = "s", "SMS_1"
		}, "smsTemplateParam", "required when smsStrategy is not 0"},
		{"sms 3", func(j *Job) { j.SmsStrategy = Int64(3) }, "smsStrategy", "0, 1 or 2"},

		// extended params
		{"20 extendedParams", func(j *Job) { j.ExtendedParams = params(20) }, "", ""},
		{"21 extendedParams", func(j *Job) { j.ExtendedParams = params(21) }, "extendedParams", "at most 20"},

		// strategies
		{"strategyType 0 explicit", func(j *Job) { j.StrategyType = Int64(0) }, "", ""},
		{"strategyType 3", func(j *Job) { j.StrategyType = Int64(3) }, "strategyType", "not 3"},
		{"fixed future", func(j *Job) {
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(now.Add(time.Hour))))
		}, "", ""},
		{"fixed missing content", func(j *Job) { j.StrategyType = Int64(1) }, "strategyContent.fixedTime", "required when strategyType is 1"},
		{"fixed past", func(j *Job) {
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(now.Add(-time.Second))))
		}, "strategyContent.fixedTime", "future"},
		{"fixed as string", func(j *Job) {
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(`{"fixedTime":"1630303126000"}`)
		}, "strategyContent.fixedTime", "must be an integer"},
		{"strategy unknown key", func(j *Job) {
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(`{"fixTime":1}`)
		}, "strategyContent.fixTime", "unknown field"},
		{"recurring ok today", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(0), day(30), "09:45:11")
		}, "", ""},
		{"recurring ends on day 180", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(1), day(180), "23:59:59")
		}, "", ""},
		{"recurring ends after day 180", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(1), day(181), "00:00:00")
		}, "strategyContent.endTime", "180 days"},
		{"recurring starts yesterday", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(-1), day(3), "09:45:11")
		}, "strategyContent.startTime", "today 00:00"},
		{"recurring end before start", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(3), day(2), "09:45:11")
		}, "strategyContent.endTime", "before startTime"},
		{"recurring bad clock", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(0), day(2), "9:45")
		}, "strategyContent.time", "HH:mm:ss"},
		{"recurring 24h clock", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(0), day(2), "24:00:00")
		}, "strategyContent.time", "HH:mm:ss"},
		{"recurring no startTime", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(`{"endTime":1,"circleType":1,"circleValue":[1],"time":"10:00:00"}`)
		}, "strategyContent.startTime", "required when strategyType is 2"},
		{"recurring no endTime", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(fmt.Sprintf(`{"startTime":%d,"circleType":1,"circleValue":[1],"time":"10:00:00"}`, day(1)))
		}, "strategyContent.endTime", "required"},
		{"recurring no circleType", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(fmt.Sprintf(`{"startTime":%d,"endTime":%d,"circleValue":[1],"time":"10:00:00"}`, day(1), day(2)))
		}, "strategyContent.circleType", "required"},
		{"recurring no circleValue", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(fmt.Sprintf(`{"startTime":%d,"endTime":%d,"circleType":1,"circleValue":[],"time":"10:00:00"}`, day(1), day(2)))
		}, "strategyContent.circleValue", "required"},
		{"recurring circleValue strings", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(`{"circleValue":["1"]}`)
		}, "strategyContent.circleValue", "must be an integer"},
		{"recurring no time", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = Object(fmt.Sprintf(`{"startTime":%d,"endTime":%d,"circleType":1,"circleValue":[1]}`, day(1), day(2)))
		}, "strategyContent.time", "required"},
		{"scheduled 100 targets", func(j *Job) {
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(now.Add(time.Hour))))
			j.TargetMsgkey = manyTargets(100)
		}, "", ""},
		{"scheduled 101 targets", func(j *Job) {
			j.StrategyType = Int64(2)
			j.StrategyContent = recurring(day(0), day(1), "10:00:00")
			j.TargetMsgkey = manyTargets(101)
		}, "targetMsgkey", "at most 10; this one needs 11"},
		{"content with strategyType 0 is only shape-checked", func(j *Job) {
			j.StrategyContent = Object(`{"fixedTime":1}`)
		}, "", ""},

		// reserved extended-param keys, at the job's level
		{"extendedParams reserved notifyType", func(j *Job) { j.ExtendedParams = Object(`{"a":"1","notifyType":"x"}`) }, "extendedParams", `"notifyType" is reserved`},
		{"extendedParams reserved taskId", func(j *Job) { j.ExtendedParams = Object(`{"taskId":"x"}`) }, "extendedParams", `"taskId" is reserved`},
		{"extendedParams reserved is case-sensitive", func(j *Job) { j.ExtendedParams = Object(`{"TaskId":"x"}`) }, "", ""},
		{"channelId and tenantId accepted", func(j *Job) { j.ChannelID, j.TenantID = "c1", "t1" }, "", ""},

		// targetMsgs (PushMultiple)
		{"targetMsgs ok", func(j *Job) { j.TargetMsgkey, j.TargetMsgs = nil, msgs(3) }, "", ""},
		{"targetMsgs and targetMsgkey", func(j *Job) { j.TargetMsgs = msgs(2) }, "targetMsgs", "not both"},
		{"neither targetMsgs nor targetMsgkey", func(j *Job) { j.TargetMsgkey = nil }, "targetMsgkey", "or targetMsgs"},
		{"targetMsgs empty target", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(3)
			j.TargetMsgs[2].Target = ""
		}, "targetMsgs[2].target", "required"},
		{"targetMsgs empty msgKey", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(3)
			j.TargetMsgs[1].MsgKey = ""
		}, "targetMsgs[1].msgKey", "required"},
		{"targetMsgs repeated target", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(4)
			j.TargetMsgs[3].Target = j.TargetMsgs[1].Target
		}, "targetMsgs[3].target", "already targetMsgs[1]"},
		{"targetMsgs over the cap", func(j *Job) { j.TargetMsgkey, j.TargetMsgs = nil, msgs(1001) }, "targetMsgs", "more than the 1000"},
		{"targetMsgs with job templateKeyValue", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(1)
			j.TemplateKeyValue = Object(`{"name":"x"}`)
		}, "templateKeyValue", "each target carries its own"},
		{"targetMsgs with smsStrategy", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(1)
			j.SmsStrategy, j.SmsSignName, j.SmsTemplateCode, j.SmsTemplateParam = Int64(1), "s", "c", Object(`{}`)
		}, "smsStrategy", "no SMS fallback"},
		{"targetMsgs with smsStrategy 0", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.SmsStrategy = nil, msgs(1), Int64(0) }, "", ""},
		{"targetMsgs with smsSignName", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.SmsSignName = nil, msgs(1), "s" }, "smsSignName", "no SMS fallback"},
		{"targetMsgs with smsTemplateCode", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.SmsTemplateCode = nil, msgs(1), "c" }, "smsTemplateCode", "no SMS fallback"},
		{"targetMsgs with smsTemplateParam", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs, j.SmsTemplateParam = nil, msgs(1), Object(`{"a":1}`)
		}, "smsTemplateParam", "no SMS fallback"},
		{"targetMsgs deliveryType 7", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.DeliveryType = nil, msgs(1), 7 }, "", ""},
		{"targetMsgs deliveryType 5", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.DeliveryType = nil, msgs(1), 5 }, "deliveryType", "1, 2, 3 or 7 with targetMsgs"},
		{"targetMsgs deliveryType 6", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.DeliveryType = nil, msgs(1), 6 }, "deliveryType", "1, 2, 3 or 7 with targetMsgs"},
		{"targetMsgs 9 extendedParams", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(2)
			j.TargetMsgs[1].ExtendedParams = params(9)
		}, "", ""},
		{"targetMsgs 10 extendedParams", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(2)
			j.TargetMsgs[1].ExtendedParams = params(10)
		}, "targetMsgs[1].extendedParams", "fewer than 10"},
		{"targetMsgs reserved extendedParams", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(2)
			j.TargetMsgs[0].ExtendedParams = Object(`{"silent":"1"}`)
		}, "targetMsgs[0].extendedParams", `"silent" is reserved`},
		{"targetMsgs job extendedParams 20", func(j *Job) { j.TargetMsgkey, j.TargetMsgs, j.ExtendedParams = nil, msgs(1), params(20) }, "", ""},
		{"targetMsgs job extendedParams 21", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs, j.ExtendedParams = nil, msgs(1), params(21)
		}, "extendedParams", "at most 20"},
		{"targetMsgs expiredSeconds over 3 days", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs, j.ExpiredSeconds = nil, msgs(1), 259201
		}, "expiredSeconds", "259200"},
		{"targetMsgs scheduled 1000 targets: 10 tasks", func(j *Job) {
			j.TargetMsgkey, j.TargetMsgs = nil, msgs(1000)
			j.StrategyType = Int64(1)
			j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(now.Add(time.Hour))))
		}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := validJob()
			c.mutate(j)
			err := j.Validate(Rules{Now: now})
			if c.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			assertFieldError(t, err, c.field, c.rule)
		})
	}
}

// msgs are n targetMsgs entries, each with its own template values.
func msgs(n int) []TargetMsg {
	m := make([]TargetMsg, n)
	for i := range m {
		m[i] = TargetMsg{Target: fmt.Sprintf("u%d", i), MsgKey: fmt.Sprintf("k%d", i),
			TemplateKeyValue: Object(fmt.Sprintf(`{"name":"用户%d"}`, i))}
	}
	return m
}

func params(n int) Object {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	b.WriteByte('}')
	return Object(b.String())
}

func TestValidateTimeRulesOffForRedelivery(t *testing.T) {
	j := validJob()
	j.StrategyType = Int64(1)
	j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(now.Add(-time.Hour))))
	if err := j.Validate(Rules{Now: now, SkipTimeRules: true}); err != nil {
		t.Fatalf("a redelivered job must not fail a time rule: %v", err)
	}
	j.StrategyType = Int64(2)
	j.StrategyContent = recurring(day(-3), day(-1), "10:00:00")
	if err := j.Validate(Rules{Now: now, SkipTimeRules: true}); err != nil {
		t.Fatalf("a redelivered recurring job must not fail a time rule: %v", err)
	}
	// The rules that do not depend on now still hold.
	j.StrategyContent = recurring(day(-1), day(-3), "10:00:00")
	assertFieldError(t, j.Validate(Rules{Now: now, SkipTimeRules: true}), "strategyContent.endTime", "before startTime")
}

func TestValidateTodayIsCountedInTheConfiguredZone(t *testing.T) {
	// 2026-11-27 20:00 UTC is already 2026-11-28 04:00 in UTC+8.
	late := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	j := validJob()
	j.StrategyType = Int64(2)
	// Starts 2026-11-27 23:00 UTC+8 = 15:00 UTC: before "today" in UTC+8, not in UTC-10.
	j.StrategyContent = recurring(day(1)-3600_000, day(2), "10:00:00")
	assertFieldError(t, j.Validate(Rules{Now: late}), "strategyContent.startTime", "today")
	if err := j.Validate(Rules{Now: late, Zone: time.FixedZone("UTC-10", -10*3600)}); err != nil {
		t.Fatalf("in UTC-10 it is still 2026-11-27: %v", err)
	}
}

func TestValidateConfigurableCaps(t *testing.T) {
	j := validJob()
	j.TargetMsgkey = manyTargets(11)
	assertFieldError(t, j.Validate(Rules{MaxTargets: 10}), "targetMsgkey", "more than the 10")
	j.StrategyType = Int64(1)
	j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(time.Now().Add(time.Hour))))
	assertFieldError(t, j.Validate(Rules{MaxScheduledChunks: 1}), "targetMsgkey", "at most 1;")
	if err := j.Validate(Rules{MaxScheduledChunks: 2}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateScheduledTargetMsgsCountCallsOf100(t *testing.T) {
	j := validJob()
	j.TargetMsgkey, j.TargetMsgs = nil, msgs(201)
	j.StrategyType = Int64(1)
	j.StrategyContent = Object(fmt.Sprintf(`{"fixedTime":%d}`, ms(time.Now().Add(time.Hour))))
	assertFieldError(t, j.Validate(Rules{MaxScheduledChunks: 2}), "targetMsgs", "one mPaaS task per 100 targets and may create at most 2; this one needs 3")
	if err := j.Validate(Rules{MaxScheduledChunks: 3}); err != nil {
		t.Fatal(err)
	}
}
