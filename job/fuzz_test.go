package job

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeValidate feeds arbitrary bytes through Decode and Validate. No input may
// panic; every error is an ErrInvalid of one line; and a job that decodes must encode
// and decode back to the same job, with the same verdict from Validate.
func FuzzDecodeValidate(f *testing.F) {
	for _, seed := range []string{
		exampleJob, minimalJob,
		withMembers(`"APPID":"x"`),
		withMembers(`"strategyType":2,"StrategyContent":"{\"startTime\":1,\"endTime\":2,\"circleType\":1,\"circleValue\":[1,7],\"time\":\"13:45:11\"}"`),
		withMembers(`"smsStrategy":1,"smsSignName":"s","smsTemplateCode":"c","smsTemplateParam":"{\"code\":123456}"`),
		withMembers(`"transparentMessagePayload":{"hms":{"a":1}},"transparentMessageUrgency":"HIGH","notifyLevel":{"oppo":"2"}`),
		withMembers(`"notAfter":"2026-11-27T10:00:00Z","dismissalDate":1893456000,"activityEvent":"end"`),
		`{"targetMsgkey":"{\"a\":\"1\",\"a\":\"2\"}"}`,
		multipleJob,
		`{"targetMsgs":[{"target":"a","msgKey":"1","extendedParams":{"taskId":"x"}},{"target":"a"},null,7]}`,
		withMembers(`"channelId":"c","tenantId":"t","extendedParams":{"k":"v"}`),
		`{"deliveryType":99999999999999999999}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		"{\"taskName\":\"\xff\"}",
		`null`, `""`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	rules := Rules{Now: now}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Decode(data)
		if err != nil {
			checkInvalid(t, err)
			return
		}
		verdict := j.Validate(rules)
		if verdict != nil {
			checkInvalid(t, verdict)
		}
		encoded, err := j.Encode()
		if err != nil {
			t.Fatalf("a decoded job does not encode: %v", err)
		}
		back, err := Decode(encoded)
		if err != nil {
			t.Fatalf("an encoded job does not decode: %v\n%s", err, encoded)
		}
		if (j.NotAfter == nil) != (back.NotAfter == nil) || (j.NotAfter != nil && !j.NotAfter.Equal(*back.NotAfter)) {
			t.Fatalf("notAfter changed in a round trip")
		}
		a, b := *j, *back
		a.NotAfter, b.NotAfter = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the job:\n%+v\n%+v", a, b)
		}
		if again := back.Validate(rules); (again == nil) != (verdict == nil) || (again != nil && again.Error() != verdict.Error()) {
			t.Fatalf("verdict changed in a round trip: %v vs %v", verdict, again)
		}
	})
}

func checkInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// FuzzTargets holds the fast targetMsgkey reader to the general one: whatever the
// fast one accepts, the general one reads the same.
func FuzzTargets(f *testing.F) {
	for _, seed := range []string{`{"a":"1","b":"2"}`, ` { "张三" : "k" , "x":"y" } `, `{}`, `{"a":"1","a":"2"}`,
		`{"a":"\\u0041"}`, `{"a":1}`, `{"a":"1",}`, `{"a":"1"} x`, "{\"a\":\"\x01\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastTargets(data)
		if !ok || !utf8.Valid(data) {
			return
		}
		members, err := parseMembers(data)
		if err != nil {
			t.Fatalf("fast reader accepted %q, the general one refuses it: %v", data, err)
		}
		slow := Targets{}
		for _, m := range members {
			var v string
			if err := json.Unmarshal(m.value, &v); err != nil {
				t.Fatalf("fast reader accepted a non-string value in %q", data)
			}
			slow = append(slow, Target{Target: m.key, MsgKey: v})
		}
		if len(slow) == 0 {
			slow = nil
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %v, general %v", data, fast, slow)
		}
	})
}

// FuzzTargetMsgs holds the fast targetMsgs reader to the general one: whatever
// the fast one accepts, the general one reads the same, without an error.
func FuzzTargetMsgs(f *testing.F) {
	for _, seed := range []string{`[]`, ` [ ] `, `[{}]`,
		`[{"target":"u1","msgKey":"m","templateKeyValue":{"name":"张三"}},{"target":"u2","msgKey":"m","extendedParams":{"k":"v"}}]`,
		`[{"target":"u1","target":"u2"}]`, `[{"target":"u1","other":"x"}]`, `[{"target":1}]`, `[{"target":null}]`,
		`[{"target":"a\u0041"}]`, `[{"templateKeyValue":"{\"a\":\"b\"}"}]`, `[{"templateKeyValue":{"a": "b"}}]`,
		`[{"templateKeyValue":{"a":1}}]`, `[{"templateKeyValue":{}}]`, `[{"target":"u1"},]`, `[{"target":"u1"}] x`,
		"[{\"target\":\"\xff\"}]", "[{\"templateKeyValue\":{\"a\":\"\xff\"}}]", ` [ { "target" : "u1" , "msgKey" : "m" } ] `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastTargetMsgs(data)
		if !ok {
			return
		}
		slow, err := slowTargetMsgs("targetMsgs", data)
		if err != nil {
			t.Fatalf("fast reader accepted %q, the general one refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, general %#v", data, fast, slow)
		}
	})
}

// The form producers and the loader write takes the fast reader, and reads back
// what was encoded.
func TestEncodedTargetMsgsTakeTheFastReader(t *testing.T) {
	j := validJob()
	j.TargetMsgkey, j.TargetMsgs = nil, msgs(50)
	j.TargetMsgs[3].ExtendedParams = Object(`{"orderId":"A-1"}`)
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	fast, ok := fastTargetMsgs(top["targetMsgs"])
	if !ok {
		t.Fatalf("the fast reader refused an encoded job's targetMsgs: %s", top["targetMsgs"])
	}
	if !reflect.DeepEqual(fast, j.TargetMsgs) {
		t.Fatalf("read back %#v, want %#v", fast[:2], j.TargetMsgs[:2])
	}
}

// FuzzMembers holds the object walker of valid JSON to the token reader:
// whatever both take, they split into the same members.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{exampleJob, minimalJob, multipleJob, `{}`, ` { "a" : [1, {"b":"]}"}] , "\\u00e9\\"":"x\\"y", "n":-1.5e3, "t":true,"z":null } `,
		`{"a":1}x`, `[1]`, `"s"`, `{"a":{"b":{"c":[[],{}]}},"a":"again"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		slow, err := decodeMembers(data)
		fast, fastErr := parseMembers(data)
		if (err == nil) != (fastErr == nil) {
			t.Fatalf("%q: token reader %v, walker %v", data, err, fastErr)
		}
		if err != nil {
			return
		}
		if len(slow) != len(fast) {
			t.Fatalf("%q: %d members, walker %d", data, len(slow), len(fast))
		}
		for i := range slow {
			if slow[i].key != fast[i].key || string(slow[i].value) != string(fast[i].value) {
				t.Fatalf("%q: member %d is %q=%s, walker %q=%s", data, i, slow[i].key, slow[i].value, fast[i].key, fast[i].value)
			}
		}
	})
}
