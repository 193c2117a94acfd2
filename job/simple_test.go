package job

import (
	"strings"
	"testing"
)

// simpleJob is a valid PushSimple job: title and content, no templateName.
func simpleJob() *Job {
	return &Job{
		TaskName: "order shipped", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: Targets{{"user1024", "ship-1024"}}, ExpiredSeconds: 300,
		Title: "已发货", Content: "您的订单已发货",
	}
}

// broadcastJob is a valid PushBroadcast job.
func broadcastJob() *Job {
	return &Job{
		TaskName: "launch", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 1, ExpiredSeconds: 3600, TemplateName: "新版本",
		TemplateKeyValue: Object(`{"version":"2.0"}`),
		Broadcast:        &Broadcast{MsgKey: "launch-2026", PushStatus: Int64(1)},
	}
}

func TestSimpleAndBroadcastJobsPickTheirAction(t *testing.T) {
	for _, c := range []struct {
		j        *Job
		api      string
		size     int
		pairs    Targets
		nTargets int
	}{
		{validJob(), APITemplate, 10, validJob().TargetMsgkey, 1},
		{simpleJob(), APISimple, 10, simpleJob().TargetMsgkey, 1},
		{broadcastJob(), APIBroadcast, 1, Targets{{BroadcastTarget, "launch-2026"}}, 1},
	} {
		if err := c.j.Validate(Rules{Now: now}); err != nil {
			t.Fatalf("%s: %v", c.api, err)
		}
		if c.j.API() != c.api || c.j.CallSize() != c.size || c.j.TargetCount() != c.nTargets {
			t.Fatalf("%s: api %s, call size %d, targets %d", c.api, c.j.API(), c.j.CallSize(), c.j.TargetCount())
		}
		if got := c.j.Pairs(); len(got) != len(c.pairs) || got[0] != c.pairs[0] {
			t.Fatalf("%s: pairs %v", c.api, got)
		}
	}
	// A broadcast's dead letter replays as the same broadcast: no targets added.
	b := broadcastJob()
	if only := b.Only(b.Pairs()); len(only.TargetMsgkey) != 0 || only.Broadcast.MsgKey != "launch-2026" {
		t.Fatalf("Only of a broadcast: %+v", only)
	}
}

func TestValidateSimpleAndBroadcastRules(t *testing.T) {
	images := Object(`{"defaultUrl":"https://example.com/a.png"}`)
	cases := []struct {
		name   string
		base   func() *Job
		mutate func(*Job)
		field  string // "" means valid
		rule   string
	}{
		{"simple valid", simpleJob, func(*Job) {}, "", ""},
		{"simple every parameter", simpleJob, func(j *Job) {
			j.PushStyle, j.ImageUrls, j.IconUrls, j.URI = Int64(2), images, Object(`{"defaultUrl":"i"}`), "app://orders/1"
			j.PushAction, j.Silent, j.NotifyType, j.Classification = Int64(1), Int64(0), "notify", "1"
			j.ExtendedParams, j.StrategyType = Object(`{"k":"v"}`), Int64(0)
			j.SmsStrategy, j.SmsSignName, j.SmsTemplateCode, j.SmsTemplateParam = Int64(2), "sign", "SMS_1", Object(`{"a":"b"}`)
		}, "", ""},
		{"simple missing title", simpleJob, func(j *Job) { j.Title = "" }, "title", "required"},
		{"simple blank title", simpleJob, func(j *Job) { j.Title = "  " }, "title", "required"},
		{"simple missing content", simpleJob, func(j *Job) { j.Content = "" }, "content", "required"},
		{"neither template nor title", simpleJob, func(j *Job) { j.Title, j.Content = "", "" }, "templateName", "PushSimple"},
		{"simple style 2 without image", simpleJob, func(j *Job) { j.PushStyle = Int64(2) }, "imageUrls", "pushStyle is 2"},
		{"simple style 3", simpleJob, func(j *Job) { j.PushStyle = Int64(3) }, "pushStyle", "0 (default), 1 (big text) or 2 (image)"},
		{"simple sms without sign", simpleJob, func(j *Job) { j.SmsStrategy = Int64(1) }, "smsSignName", "required when smsStrategy"},
		{"simple sms without param", simpleJob, func(j *Job) {
			j.SmsStrategy, j.SmsSignName, j.SmsTemplateCode = Int64(1), "sign", "SMS_1"
		}, "smsTemplateParam", "required when smsStrategy"},
		{"simple with template values", simpleJob, func(j *Job) { j.TemplateKeyValue = Object(`{"a":"b"}`) }, "templateKeyValue", "no template"},
		{"simple with targetMsgs", simpleJob, func(j *Job) { j.TargetMsgkey, j.TargetMsgs = nil, msgs(2) }, "targetMsgs", "targetMsgkey"},
		{"simple without targets", simpleJob, func(j *Job) { j.TargetMsgkey = nil }, "targetMsgkey", "required"},
		{"simple 11 targets is fine", simpleJob, func(j *Job) { j.TargetMsgkey = manyTargets(25) }, "", ""},
		{"simple live activity", simpleJob, func(j *Job) { j.DeliveryType = 5 }, "deliveryType", "1, 2, 3 or 7"},
		{"simple transparent payload", simpleJob, func(j *Job) { j.TransparentMessagePayload = Object(`{"hms":{}}`) }, "transparentMessagePayload", "PushSimple"},
		{"simple tenant", simpleJob, func(j *Job) { j.TenantID = "t" }, "tenantId", "PushSimple"},
		{"silent 2", simpleJob, func(j *Job) { j.Silent = Int64(2) }, "silent", "0 or 1"},
		{"pushAction 5", simpleJob, func(j *Job) { j.PushAction = Int64(5) }, "pushAction", "0 or 1"},
		{"title on a template job", validJob, func(j *Job) { j.Title = "t" }, "title", "only for a PushSimple job"},
		{"imageUrls on a template job", validJob, func(j *Job) { j.ImageUrls = images }, "imageUrls", "only for a PushSimple job"},

		{"broadcast valid", broadcastJob, func(*Job) {}, "", ""},
		{"broadcast every parameter", broadcastJob, func(j *Job) {
			j.Broadcast = &Broadcast{MsgKey: "m", PushStatus: Int64(2), BindPeriod: Int64(7), UnBindPeriod: Int64(30), AndroidChannel: Int64(1)}
			j.PushAction, j.Silent, j.NotifyType, j.Classification, j.ExtendedParams = Int64(0), Int64(1), "transparent", "0", Object(`{"k":"v"}`)
		}, "", ""},
		{"broadcast without msgKey", broadcastJob, func(j *Job) { j.Broadcast.MsgKey = "" }, "broadcast.msgKey", "required"},
		{"broadcast with targets", broadcastJob, func(j *Job) { j.TargetMsgkey = Targets{{"u", "k"}} }, "targetMsgkey", "every device"},
		{"broadcast with targetMsgs", broadcastJob, func(j *Job) { j.TargetMsgs = msgs(1) }, "targetMsgs", "every device"},
		{"broadcast to user ids", broadcastJob, func(j *Job) { j.DeliveryType = 3 }, "deliveryType", "1 (Android), 2 (iOS) or 7"},
		{"broadcast without template", broadcastJob, func(j *Job) { j.TemplateName = "" }, "templateName", "required"},
		{"broadcast pushStatus 3", broadcastJob, func(j *Job) { j.Broadcast.PushStatus = Int64(3) }, "broadcast.pushStatus", "0 (bound devices), 1 (all) or 2 (unbound)"},
		{"broadcast negative bindPeriod", broadcastJob, func(j *Job) { j.Broadcast.BindPeriod = Int64(-1) }, "broadcast.bindPeriod", "negative"},
		{"broadcast sms", broadcastJob, func(j *Job) { j.SmsSignName = "s" }, "smsSignName", "no SMS fallback"},
		{"broadcast title", broadcastJob, func(j *Job) { j.Title = "t" }, "title", "PushBroadcast"},
		{"broadcast activity", broadcastJob, func(j *Job) { j.ActivityEvent = "update" }, "activityEvent", "PushBroadcast"},
		{"broadcast expired too long", broadcastJob, func(j *Job) { j.ExpiredSeconds = MaxExpiredSeconds + 1 }, "expiredSeconds", "3 days"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := c.base()
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

func TestDecodeSimpleAndBroadcast(t *testing.T) {
	body := `{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":1,"expiredSeconds":60,
	 "title":"标题","content":"内容","pushStyle":2,"imageUrls":"{\"defaultUrl\":\"x\"}","iconUrls":{"defaultUrl":"y"},
	 "uri":"app://x","pushAction":1,"silent":0,"targetMsgkey":{"u1":"k1"}}`
	j, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if j.API() != APISimple || j.ImageUrls.String() != `{"defaultUrl":"x"}` || j.IconUrls.String() != `{"defaultUrl":"y"}` ||
		*j.PushStyle != 2 || *j.PushAction != 1 || *j.Silent != 0 || j.URI != "app://x" {
		t.Fatalf("decoded %+v", j)
	}
	checkSame(t, j)
	b, err := Decode([]byte(`{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":2,"expiredSeconds":60,"templateName":"x",
	 "broadcast":{"msgKey":"m1","pushStatus":0,"bindPeriod":3,"unBindPeriod":null,"androidChannel":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.API() != APIBroadcast || b.Broadcast.MsgKey != "m1" || *b.Broadcast.PushStatus != 0 || b.Broadcast.UnBindPeriod != nil || *b.Broadcast.AndroidChannel != 2 {
		t.Fatalf("decoded %+v", b.Broadcast)
	}
	checkSame(t, b)
	for _, c := range []struct{ extra, field, rule string }{
		{`"broadcast":true`, "broadcast", "must be an object"},
		{`"broadcast":{"msgkey":"m"}`, "broadcast.msgkey", `did you mean "msgKey"`},
		{`"broadcast":{"msgKey":"m","pushStatus":"1"}`, "broadcast.pushStatus", "integer"},
		{`"imageUrls":"[1]"`, "imageUrls", "must be an object"},
		{`"pushStyle":1.5`, "pushStyle", "integer"},
		{`"Title":"x"`, "Title", `did you mean "title"`},
	} {
		_, err := Decode([]byte(`{"appId":"a",` + c.extra + `}`))
		assertFieldError(t, err, c.field, c.rule)
	}
}

func TestBroadcastResultHasOneChunkWithoutTargets(t *testing.T) {
	j := broadcastJob()
	j.JobID = "b1"
	r := NewResult(j, 1, now)
	r.AddChunk(ChunkResult{TargetMsgkey: j.Pairs(), Status: ChunkSent, Attempts: 1, Data: "90000001"})
	r.Finish(now)
	body, _ := r.Encode()
	if r.Targets != 1 || r.Sent != 1 || r.Status != StatusSucceeded || r.API != APIBroadcast ||
		!strings.Contains(string(body), `"chunks":[{"targetMsgkey":{},"status":"sent"`) {
		t.Fatalf("result %s", body)
	}
	f := NewResult(j, 1, now)
	f.AddChunk(ChunkResult{TargetMsgkey: j.Pairs(), Status: ChunkFailed, Error: "x"})
	if f.Finish(now); f.Status != StatusFailed || f.Failed != 1 {
		t.Fatalf("failed broadcast: %+v", f)
	}
}
