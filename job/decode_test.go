package job

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const exampleJob = `{"jobId":"order-8812-paid","replyTo":"push.results.orders",
 "taskName":"order paid","appId":"ONEX570DA89211721","workspaceId":"test",
 "deliveryType":3,"targetMsgkey":{"user1024":"1578807462788"},"expiredSeconds":300,
 "templateName":"测试模板","templateKeyValue":{"money":"200","name":"张三"}}`

func TestDecodeInterfaceExample(t *testing.T) {
	j, err := Decode([]byte(exampleJob))
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{
		JobID: "order-8812-paid", ReplyTo: "push.results.orders",
		TaskName: "order paid", AppID: "ONEX570DA89211721", WorkspaceID: "test",
		DeliveryType: 3, TargetMsgkey: Targets{{"user1024", "1578807462788"}}, ExpiredSeconds: 300,
		TemplateName: "测试模板", TemplateKeyValue: Object(`{"money":"200","name":"张三"}`),
	}
	if !reflect.DeepEqual(j, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", j, want)
	}
	if err := j.Validate(Rules{}); err != nil {
		t.Fatalf("the interface's example must be valid: %v", err)
	}
}

const minimalJob = `{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"targetMsgkey":{"u":"1"},"expiredSeconds":300,"templateName":"n"}`

// withMembers is the example job with more members appended.
func withMembers(extra string) string {
	return strings.TrimSuffix(exampleJob, "}") + "," + extra + "}"
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, body, field, contains string
	}{
		{"not json", `{"appId":`, "", "not a JSON object"},
		{"array", `[1,2]`, "", "expected an object"},
		{"trailing data", exampleJob + `{}`, "", "after the object"},
		{"invalid utf-8", "{\"taskName\":\"\xff\xfe\"}", "", "UTF-8"},
		{"case variant", withMembers(`"APPID":"x"`), "APPID", `did you mean "appId"`},
		{"case variant 2", withMembers(`"TargetMsgKey":{"a":"b"}`), "TargetMsgKey", `did you mean "targetMsgkey"`},
		{"unknown field", withMembers(`"priority":1`), "priority", "unknown field"},
		{"repeated field", withMembers(`"appId":"again"`), "appId", "more than once"},
		{"both strategy spellings", withMembers(`"strategyContent":{},"StrategyContent":{}`), "strategyContent", "not both"},
		{"both strategy spellings reversed", withMembers(`"StrategyContent":{},"strategyContent":{}`), "strategyContent", "not both"},
		{"number as string", withMembers(`"strategyType":"1"`), "strategyType", "must be an integer, not a string"},
		{"string as number", withMembers(`"smsSignName":5`), "smsSignName", "must be a string, not a number"},
		{"float", withMembers(`"smsStrategy":1.5`), "smsStrategy", "no fraction"},
		{"exponent", withMembers(`"dismissalDate":1e9`), "dismissalDate", "no fraction"},
		{"huge number", withMembers(`"dismissalDate":99999999999999999999999`), "dismissalDate", "out of range"},
		{"huge negative", withMembers(`"strategyType":-99999999999999999999`), "strategyType", "out of range"},
		{"bool as int", withMembers(`"smsStrategy":true`), "smsStrategy", "not a boolean"},
		{"object as string field", withMembers(`"notifyType":{"a":1}`), "notifyType", "not an object"},
		{"map as array", withMembers(`"extendedParams":["a"]`), "extendedParams", "not an array"},
		{"map as number", withMembers(`"notifyLevel":2`), "notifyLevel", "not a number"},
		{"string holding non-json", withMembers(`"extendedParams":"name=张三"`), "extendedParams", "does not hold valid JSON"},
		{"string holding array", withMembers(`"thirdChannelCategory":"[1]"`), "thirdChannelCategory", "not an array"},
		{"bad notAfter", withMembers(`"notAfter":"tomorrow"`), "notAfter", "RFC 3339"},
		{"notAfter number", withMembers(`"notAfter":1700000000`), "notAfter", "must be a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.body))
			assertFieldError(t, err, c.field, c.contains)
		})
	}
}

func TestDecodeTargetErrors(t *testing.T) {
	cases := []struct{ name, targets, contains string }{
		{"duplicate target", `{"u1":"a","u1":"b"}`, `target "u1" given more than once`},
		{"number msgKey", `{"u1":1578807462788}`, `msgKey of target "u1" must be a string`},
		{"array", `["u1"]`, "not an array"},
		{"string holding duplicate", `"{\"u1\":\"a\",\"u1\":\"b\"}"`, "more than once"},
		{"string holding garbage", `"{u1:a}"`, "does not hold valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(exampleJob, `{"user1024":"1578807462788"}`, c.targets, 1)
			_, err := Decode([]byte(body))
			assertFieldError(t, err, "targetMsgkey", c.contains)
		})
	}
}

const multipleJob = `{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"expiredSeconds":300,"templateName":"n",
 "targetMsgs":[{"target":"u1","msgKey":"k1","templateKeyValue":{"name":"张三"}},
               {"target":"u2","msgKey":"k2","templateKeyValue":"{\"name\":\"李四\"}","extendedParams":{"k":"v"}}]}`

func TestDecodeTargetMsgs(t *testing.T) {
	j, err := Decode([]byte(multipleJob))
	if err != nil {
		t.Fatal(err)
	}
	want := []TargetMsg{
		{Target: "u1", MsgKey: "k1", TemplateKeyValue: Object(`{"name":"张三"}`)},
		{Target: "u2", MsgKey: "k2", TemplateKeyValue: Object(`{"name":"李四"}`), ExtendedParams: Object(`{"k":"v"}`)},
	}
	if !reflect.DeepEqual(j.TargetMsgs, want) {
		t.Fatalf("decoded %+v, want %+v", j.TargetMsgs, want)
	}
	if err := j.Validate(Rules{}); err != nil {
		t.Fatal(err)
	}
	if j.API() != APIMultiple || j.CallSize() != 100 || j.TargetCount() != 2 {
		t.Fatalf("api %s, call size %d, %d targets", j.API(), j.CallSize(), j.TargetCount())
	}
	if got := j.Pairs(); !reflect.DeepEqual(got, Targets{{"u1", "k1"}, {"u2", "k2"}}) {
		t.Fatalf("pairs %v", got)
	}
}

func TestDecodeTargetMsgsErrors(t *testing.T) {
	base := `{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"expiredSeconds":300,"templateName":"n","targetMsgs":%s}`
	cases := []struct{ name, msgs, field, contains string }{
		{"object, not array", `{"u1":"k1"}`, "targetMsgs", "must be an array"},
		{"string", `"[]"`, "targetMsgs", "must be an array"},
		{"element not an object", `[{"target":"u1","msgKey":"k1"},"u2"]`, "targetMsgs[1]", "must be an object"},
		{"unknown element field", `[{"target":"u1","msgKey":"k1","name":"x"}]`, "targetMsgs[0].name", "unknown field"},
		{"case variant element field", `[{"target":"u1","msgkey":"k1"}]`, "targetMsgs[0].msgkey", `did you mean "msgKey"`},
		{"target a number", `[{"target":1,"msgKey":"k1"}]`, "targetMsgs[0].target", "must be a string"},
		{"msgKey a number", `[{"target":"u","msgKey":"k"},{"target":"u1","msgKey":17}]`, "targetMsgs[1].msgKey", "must be a string"},
		{"repeated element field", `[{"target":"u1","msgKey":"k1","msgKey":"k2"}]`, "targetMsgs[0].msgKey", "more than once"},
		{"templateKeyValue an array", `[{"target":"u1","msgKey":"k1","templateKeyValue":["a"]}]`, "targetMsgs[0].templateKeyValue", "not an array"},
		{"extendedParams not json", `[{"target":"u1","msgKey":"k1","extendedParams":"a=b"}]`, "targetMsgs[0].extendedParams", "does not hold valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := Decode([]byte(strings.Replace(base, "%s", c.msgs, 1)))
			assertFieldError(t, err, c.field, c.contains)
			var elems []json.RawMessage
			if json.Unmarshal([]byte(c.msgs), &elems) == nil && j.TargetCount() != len(elems) {
				t.Fatalf("a rejected job must still count its targets: %d", j.TargetCount())
			}
		})
	}
	j, err := Decode([]byte(strings.Replace(base, "%s", `[{"target":"u1","msgKey":"k1","templateKeyValue":null}]`, 1)))
	if err != nil || j.TargetMsgs[0].TemplateKeyValue != nil {
		t.Fatalf("null must mean absent inside an element too: %v %+v", err, j)
	}
}

func TestOnlyKeepsEachTargetsValues(t *testing.T) {
	j, err := Decode([]byte(multipleJob))
	if err != nil {
		t.Fatal(err)
	}
	only := j.Only(Targets{{"u2", "k2"}})
	if len(only.TargetMsgs) != 1 || only.TargetMsgs[0].TemplateKeyValue.String() != `{"name":"李四"}` || len(j.TargetMsgs) != 2 {
		t.Fatalf("Only gave %+v (job now %+v)", only.TargetMsgs, j.TargetMsgs)
	}
	if _, ok := j.Messages(Targets{{"u9", "k9"}}); ok {
		t.Fatal("a target that is not the job's must not be found")
	}
	if m, ok := j.Messages(Targets{{"u2", "k2"}, {"u1", "k1"}}); !ok || m[0].Target != "u2" || m[1].Target != "u1" {
		t.Fatalf("out of order lookup: %+v", m)
	}
}

func TestDecodeKeepsPartialJobOnFieldError(t *testing.T) {
	j, err := Decode([]byte(withMembers(`"APPID":"x"`)))
	if err == nil || j == nil {
		t.Fatalf("want an error and the partial job, got %v, %v", j, err)
	}
	if len(j.TargetMsgkey) != 1 || j.JobID != "order-8812-paid" {
		t.Fatalf("partial job lost fields: %+v", j)
	}
}

func TestDecodeNullMeansAbsent(t *testing.T) {
	j, err := Decode([]byte(withMembers(`"strategyType":null,"extendedParams":null,"notAfter":null,"smsSignName":null`)))
	if err != nil {
		t.Fatal(err)
	}
	if j.StrategyType != nil || j.ExtendedParams != nil || j.NotAfter != nil || j.SmsSignName != "" {
		t.Fatalf("null must mean absent: %+v", j)
	}
}

func TestDecodeObjectAndStringFormsAgree(t *testing.T) {
	obj := `{"hms":{"title":"标题","n":1},"fcm":{"k":"v"}}`
	quoted, _ := json.Marshal(obj)
	fields := []string{"templateKeyValue", "extendedParams", "smsTemplateParam", "transparentMessagePayload",
		"thirdChannelCategory", "notifyLevel", "activityContentState", "strategyContent", "StrategyContent"}
	for _, f := range fields {
		t.Run(f, func(t *testing.T) {
			body := minimalJob
			a, err := Decode([]byte(withMembersOf(body, `"`+f+`":`+obj)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Decode([]byte(withMembersOf(body, `"`+f+`":`+string(quoted))))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("object and string forms differ:\n%+v\n%+v", a, b)
			}
			// The key order is kept as written: hms before fcm.
			raw, _ := json.Marshal(a)
			if !strings.Contains(string(raw), `{"hms":{"title":"标题","n":1},"fcm":{"k":"v"}}`) {
				t.Fatalf("object not kept compact and in order: %s", raw)
			}
		})
	}
}

func withMembersOf(body, extra string) string {
	return strings.TrimSuffix(strings.TrimSpace(body), "}") + "," + extra + "}"
}

func TestTargetOrderKept(t *testing.T) {
	body := strings.Replace(exampleJob, `{"user1024":"1578807462788"}`,
		`"{\"z\":\"1\",\"张三\":\"2\",\"a\":\"3\",\"m\":\"4\"}"`, 1)
	j, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Targets{{"z", "1"}, {"张三", "2"}, {"a", "3"}, {"m", "4"}}
	if !reflect.DeepEqual(j.TargetMsgkey, want) {
		t.Fatalf("order lost: %v", j.TargetMsgkey)
	}
	out, _ := json.Marshal(j.TargetMsgkey)
	if string(out) != `{"z":"1","张三":"2","a":"3","m":"4"}` {
		t.Fatalf("marshal changed order: %s", out)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	j, err := Decode([]byte(withMembers(`"strategyType":0,"smsStrategy":0,"dismissalDate":1700000000,"notAfter":"2026-11-27T10:00:00.5+08:00","StrategyContent":"{\"fixedTime\":1}"`)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"strategyType":0`) || !strings.Contains(string(b), `"strategyContent":{"fixedTime":1}`) {
		t.Fatalf("explicit 0 or strategyContent lost: %s", b)
	}
	var back Job
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.NotAfter.Equal(*j.NotAfter) {
		t.Fatalf("notAfter changed: %v vs %v", back.NotAfter, j.NotAfter)
	}
	back.NotAfter, j.NotAfter = nil, nil
	if !reflect.DeepEqual(&back, j) {
		t.Fatalf("round trip changed the job:\n%+v\n%+v", back, *j)
	}
}

func assertFieldError(t *testing.T, err error, field, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %q, got none", field)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	if fe.Field != field {
		t.Fatalf("error %q names field %q, want %q", err, fe.Field, field)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line", err)
	}
}

func TestEncodeKeepsObjectsAsWritten(t *testing.T) {
	j, err := Decode([]byte(withMembers(`"extendedParams":{"url":"https://x/?a=1&b=<2>"}`)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"extendedParams":{"url":"https://x/?a=1&b=<2>"}`) {
		t.Fatalf("Encode escaped the object: %s", b)
	}
	back, err := Decode(b)
	if err != nil || string(back.ExtendedParams) != string(j.ExtendedParams) {
		t.Fatalf("Encode does not round-trip: %v %s", err, back.ExtendedParams)
	}
}

func TestFieldNamesWithControlCharactersAreQuoted(t *testing.T) {
	_, err := Decode([]byte(withMembers(`"a\r\nb":1`)))
	if err == nil || strings.ContainsAny(err.Error(), "\r\n") || !strings.Contains(err.Error(), `"a\r\nb": unknown field`) {
		t.Fatalf("want a quoted field name on one line, got %q", err)
	}
}

// An error quotes at most a few hundred bytes of what the producer sent, however
// long or strange the name or value it is about.
func TestErrorsQuoteLittleOfTheInput(t *testing.T) {
	base := `"taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"expiredSeconds":60,"templateName":"n"`
	for name, body := range map[string]string{
		"a 900 KB unknown field name": `{` + base + `,"targetMsgkey":{"u":"m"},"` + strings.Repeat("x", 900<<10) + `":1}`,
		"a 614 KB name of U+0085":     `{` + base + `,"targetMsgkey":{"u":"m"},"` + strings.Repeat("\u0085", 307<<10) + `":1}`,
		"a long target given twice":   `{` + base + `,"targetMsgkey":{"` + strings.Repeat("t", 100<<10) + `":"m","` + strings.Repeat("t", 100<<10) + `":"m"}}`,
		"a long strategy time":        `{` + base + `,"targetMsgkey":{"u":"m"},"strategyType":2,"strategyContent":{"time":"` + strings.Repeat("9", 50<<10) + `"}}`,
	} {
		j, err := Decode([]byte(body))
		if err == nil {
			err = j.Validate(Rules{})
		}
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: want an invalid job, got %v", name, err)
		}
		if n := len(err.Error()); n > 512 {
			t.Errorf("%s: the error is %d bytes, want at most a few hundred: %.200s…", name, n, err.Error())
		}
	}
}
