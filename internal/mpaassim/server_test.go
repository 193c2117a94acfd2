package mpaassim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The worked example of Alibaba Cloud's RPC signature documentation (ECS
// DescribeRegions, AccessKey testid / testsecret).
func TestSignatureMatchesThePublishedExample(t *testing.T) {
	params := map[string]string{
		"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
		"Version": "2014-05-26", "SignatureVersion": "1.0",
	}
	wantSTS := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1" +
		"%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0" +
		"%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if got := stringToSign("GET", params); got != wantSTS {
		t.Fatalf("StringToSign\n got %s\nwant %s", got, wantSTS)
	}
	if got := sign("GET", params, "testsecret"); got != "CT9X0VtwR86fNWSnsc6v8YGOjuE=" {
		t.Fatalf("signature %s, want CT9X0VtwR86fNWSnsc6v8YGOjuE=", got)
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a b": "a%20b", "a+b": "a%2Bb", "*": "%2A", "~-_.": "~-_.", "张": "%E5%BC%A0", "{\"k\":1}": "%7B%22k%22%3A1%7D",
	} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

// request is a PushTemplate call built by hand, without the SDK.
type request struct {
	query, form url.Values
}

func newRequest(at time.Time, nonce string) request {
	q := url.Values{}
	for k, v := range map[string]string{
		"Action": "PushTemplate", "Version": "2020-10-28", "Format": "JSON", "AccessKeyId": "ak",
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": nonce, "SignatureType": "",
		"Timestamp": at.UTC().Format("2006-01-02T15:04:05Z"), "RegionId": "cn-hangzhou",
	} {
		q.Set(k, v)
	}
	f := url.Values{}
	for k, v := range map[string]string{
		"AppId": "app", "WorkspaceId": "ws", "TaskName": "t 任务", "DeliveryType": "3", "ExpiredSeconds": "300",
		"TemplateName": "hello", "TargetMsgkey": `{"u1":"k1","u2":"k2"}`, "TemplateKeyValue": `{"name":"张三"}`,
	} {
		f.Set(k, v)
	}
	return request{q, f}
}

func (r request) signed(secret string) request {
	all := map[string]string{}
	for k := range r.query {
		all[k] = r.query.Get(k)
	}
	for k := range r.form {
		all[k] = r.form.Get(k)
	}
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	q.Set("Signature", sign("POST", all, secret))
	return request{q, r.form}
}

func (r request) send(t *testing.T, srv *httptest.Server) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/?"+r.query.Encode(), "application/x-www-form-urlencoded", strings.NewReader(r.form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("answer is not JSON: %s", body)
	}
	return resp.StatusCode, out
}

// codeOf is an answer's code: the ResultCode of a 200, the gateway's Code otherwise.
func codeOf(status int, body map[string]any) string {
	key := "ResultCode"
	if status != 200 {
		key = "Code"
	}
	code, _ := body[key].(string)
	return code
}

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = map[string]string{"ak": "sk"}
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func TestHandBuiltRequests(t *testing.T) {
	now := time.Now()
	sim, srv := newTestServer(t, Config{Templates: map[string]string{"hello": "你好 #name#"}})
	cases := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"signed right", newRequest(now, "n1").signed("sk"), 200, "OK"},
		{"nonce reused", newRequest(now, "n1").signed("sk"), 400, "SignatureNonceUsed"},
		{"wrong secret", newRequest(now, "n2").signed("other"), 400, "SignatureDoesNotMatch"},
		{"clock 20 min behind", newRequest(now.Add(-20*time.Minute), "n3").signed("sk"), 400, "InvalidTimeStamp.Expired"},
		{"unsigned", newRequest(now, "n4"), 400, "IncompleteSignature"},
		{"unknown key", func() request {
			r := newRequest(now, "n5")
			r.query.Set("AccessKeyId", "nobody")
			return r.signed("sk")
		}(), 404, "InvalidAccessKeyId.NotFound"},
		{"other action", func() request { r := newRequest(now, "n6"); r.query.Set("Action", "PushByTag"); return r.signed("sk") }(), 404, "InvalidApi.NotFound"},
		{"PushSimple without Title", func() request {
			r := newRequest(now, "n6s")
			r.query.Set("Action", "PushSimple")
			return r.signed("sk")
		}(), 400, "MissingTitle"},
		{"missing AppId", func() request { r := newRequest(now, "n7"); r.form.Del("AppId"); return r.signed("sk") }(), 400, "MissingAppId"},
		{"unknown template", func() request { r := newRequest(now, "n8"); r.form.Set("TemplateName", "nope"); return r.signed("sk") }(), 200, "3022"},
		{"template value missing", func() request { r := newRequest(now, "n9"); r.form.Del("TemplateKeyValue"); return r.signed("sk") }(), 200, "3023"},
		{"11 targets", func() request {
			r := newRequest(now, "n10")
			r.form.Set("TargetMsgkey", `{"1":"a","2":"a","3":"a","4":"a","5":"a","6":"a","7":"a","8":"a","9":"a","10":"a","11":"a"}`)
			return r.signed("sk")
		}(), 200, "3029"},
		{"bad deliveryType", func() request { r := newRequest(now, "n11"); r.form.Set("DeliveryType", "4"); return r.signed("sk") }(), 200, "3028"},
		{"expiredSeconds over 3 days", func() request {
			r := newRequest(now, "n21")
			r.form.Set("ExpiredSeconds", "259201")
			return r.signed("sk")
		}(), 200, "3026"},
		{"21 extended params", func() request {
			r := newRequest(now, "n22")
			r.form.Set("ExtendedParams", `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1,"r":1,"s":1,"t":1,"u":1}`)
			return r.signed("sk")
		}(), 200, "3035"},
		{"an object parameter that is not one", func() request { r := newRequest(now, "n23"); r.form.Set("NotifyLevel", `[1]`); return r.signed("sk") }(), 200, "3028"},
		{"sms without sign name", func() request { r := newRequest(now, "n12"); r.form.Set("SmsStrategy", "1"); return r.signed("sk") }(), 200, "3028"},
	}
	for _, c := range cases {
		status, body := c.req.send(t, srv)
		if code := codeOf(status, body); status != c.status || code != c.code {
			t.Errorf("%s: got %d %s, want %d %s (%v)", c.name, status, codeOf(status, body), c.status, c.code, body)
		}
		if body["RequestId"] == "" || body["RequestId"] == nil {
			t.Errorf("%s: no RequestId", c.name)
		}
	}
	if n := sim.Delivered("app", "ws", "u1", "k1"); n != 1 {
		t.Fatalf("u1 delivered %d times, want 1 (only the first call was accepted)", n)
	}
	st := sim.Stats()
	if st.Calls != int64(len(cases)) || st.Accepted != 1 || st.Pairs != 2 || st.DuplicatePairs != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// newMultiple is a PushMultiple call of n targets built by hand, each with its own name.
func newMultiple(at time.Time, nonce string, n int) request {
	r := newRequest(at, nonce)
	r.query.Set("Action", "PushMultiple")
	r.form.Del("TargetMsgkey")
	r.form.Del("TemplateKeyValue")
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("TargetMsg.%d.", i)
		r.form.Set(p+"Target", fmt.Sprintf("m%d", i))
		r.form.Set(p+"MsgKey", fmt.Sprintf("mk%d", i))
		r.form.Set(p+"TemplateKeyValue", fmt.Sprintf(`{"name":"用户%d"}`, i))
	}
	return r
}

func TestHandBuiltPushMultiple(t *testing.T) {
	now := time.Now()
	sim, srv := newTestServer(t, Config{Templates: map[string]string{"hello": "你好 #name#"}})
	with := func(nonce string, n int, f func(r request)) request {
		r := newMultiple(now, nonce, n)
		f(r)
		return r.signed("sk")
	}
	none := func(request) {}
	tenKeys := `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1}`
	cases := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"100 targets", with("m1", 100, none), 200, "OK"},
		{"101 targets", with("m2", 101, none), 200, "3029"},
		{"no targets", with("m3", 0, none), 400, "MissingTargetMsg"},
		{"a target without msgKey", with("m4", 2, func(r request) { r.form.Del("TargetMsg.2.MsgKey") }), 200, "3028"},
		{"a gap in the list", with("m5", 2, func(r request) { r.form.Set("TargetMsg.4.Target", "x") }), 200, "3028"},
		{"a target without its value", with("m6", 3, func(r request) { r.form.Set("TargetMsg.3.TemplateKeyValue", `{"x":"y"}`) }), 200, "3023"},
		{"10 extended params on a target", with("m7", 1, func(r request) { r.form.Set("TargetMsg.1.ExtendedParams", tenKeys) }), 200, "3049"},
		{"9 extended params on a target", with("m8", 1, func(r request) {
			r.form.Set("TargetMsg.1.ExtendedParams", `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1}`)
		}), 200, "OK"},
		{"a reserved key on a target", with("m9", 1, func(r request) { r.form.Set("TargetMsg.1.ExtendedParams", `{"taskId":"1"}`) }), 200, "3028"},
		{"21 extended params on the call", with("m10", 1, func(r request) {
			r.form.Set("ExtendedParams", `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1,"r":1,"s":1,"t":1,"u":1}`)
		}), 200, "3035"},
		{"expiredSeconds over 3 days", with("m11", 1, func(r request) { r.form.Set("ExpiredSeconds", "259201") }), 200, "3026"},
		{"a Live Activity delivery type", with("m12", 1, func(r request) { r.form.Set("DeliveryType", "5") }), 200, "3028"},
		{"a call-wide TemplateKeyValue", with("m13", 1, func(r request) { r.form.Set("TemplateKeyValue", `{"name":"x"}`) }), 200, "3028"},
		{"SMS parameters", with("m14", 1, func(r request) { r.form.Set("SmsStrategy", "1") }), 200, "3028"},
	}
	for _, c := range cases {
		status, body := c.req.send(t, srv)
		if code := codeOf(status, body); status != c.status || code != c.code {
			t.Errorf("%s: got %d %s, want %d %s (%v)", c.name, status, codeOf(status, body), c.status, c.code, body)
		}
		if msg, _ := body["ResultMessage"].(string); strings.Contains(msg, "用户") {
			t.Errorf("%s: the answer shows a template value: %s", c.name, msg)
		}
	}
	st := sim.Stats()
	if m := st.ByAPI["PushMultiple"]; m.Calls != int64(len(cases)) || m.Accepted != 2 || m.Deliveries != 101 || m.Pairs != 100 {
		t.Fatalf("PushMultiple stats: %+v", m)
	}
	var got Delivery
	for _, d := range sim.Deliveries(1) {
		if d.Target == "m7" {
			got = d
		}
	}
	if got.API != "PushMultiple" || got.TemplateKeyValue != `{"name":"用户7"}` {
		t.Fatalf("delivery of m7: %+v", got)
	}
}

func TestFaultsAndAdminEndpoints(t *testing.T) {
	_, srv := newTestServer(t, Config{AcceptAnyTemplate: true})
	putStatus := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/sim/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	put := func(body string) {
		if status := putStatus(body); status != http.StatusNoContent {
			t.Fatalf("PUT /sim/faults %s: %d", body, status)
		}
	}
	now := time.Now()
	put(`{"rate5xx":1}`)
	if status, _ := newRequest(now, "f1").signed("sk").send(t, srv); status != 500 && status != 503 {
		t.Fatalf("rate5xx 1: status %d", status)
	}
	put(`{"rateThrottle":1}`)
	if status, body := newRequest(now, "f2").signed("sk").send(t, srv); status != 400 || body["Code"] != "Throttling.User" {
		t.Fatalf("rateThrottle 1: %d %v", status, body)
	}
	put(`{"rate8011":1}`)
	if _, body := newRequest(now, "f3").signed("sk").send(t, srv); body["ResultCode"] != "8011" {
		t.Fatalf("rate8011 1: %v", body)
	}
	put(`{"failNext":2}`)
	for i, want := range []int{503, 503, 200} {
		if status, body := newRequest(now, "fn"+strconv.Itoa(i)).signed("sk").send(t, srv); status != want {
			t.Fatalf("failNext 2, call %d: %d %v, want %d", i+1, status, body, want)
		}
	}
	put(`{"quotaPerSecond":2}`)
	codes := []string{}
	for i := range 3 {
		_, body := newRequest(time.Now(), "q"+string(rune('a'+i))).signed("sk").send(t, srv)
		code, _ := body["ResultCode"].(string)
		if code == "" {
			code, _ = body["Code"].(string)
		}
		codes = append(codes, code)
	}
	// Three calls may straddle a second boundary; at least one of the first two
	// seconds' worth is OK, and a third call inside one second is throttled.
	if codes[0] != "OK" {
		t.Fatalf("quota: %v", codes)
	}
	put(`{"latency":"30ms"}`)
	start := time.Now()
	newRequest(time.Now(), "l1").signed("sk").send(t, srv)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("latency 30ms: answered in %v", d)
	}
	if status := putStatus(`{"latency":"soon"}`); status != http.StatusBadRequest {
		t.Fatalf("a bad duration must be refused, got %d", status)
	}
	if status := putStatus(`{"latncy":"1s"}`); status != http.StatusBadRequest {
		t.Fatalf("an unknown fault must be refused, got %d", status)
	}
}

func TestRateOf(t *testing.T) {
	s := int64(time.Second)
	arrivals := []int64{0, s / 10, s / 2, s - 1, s, 3 * s}
	max, mean := rateOf(arrivals)
	if max != 4 {
		t.Fatalf("busiest window %d, want 4", max)
	}
	if mean < 1.66 || mean > 1.67 {
		t.Fatalf("mean %f, want 5/3", mean)
	}
}

func TestCallsKeepsTheLastThousandInOrder(t *testing.T) {
	s := New(Config{})
	for i := range recentCalls + 5 {
		s.note(Call{RequestID: strconv.Itoa(i)})
	}
	calls := s.Calls()
	if len(calls) != recentCalls || calls[0].RequestID != "5" || calls[len(calls)-1].RequestID != strconv.Itoa(recentCalls+4) {
		t.Fatalf("calls: %d, first %s, last %s", len(calls), calls[0].RequestID, calls[len(calls)-1].RequestID)
	}
}

// An immediate push's Data: a number for PushMultiple and nothing for
// PushTemplate, or 32 hex for both with HexTaskIDs; a scheduled push's is 32
// hex either way. A hex PushMultiple task is revoked like a numeric one.
func TestTaskIDForms(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, hexIDs := range []bool{false, true} {
		_, srv := newTestServer(t, Config{AcceptAnyTemplate: true, HexTaskIDs: hexIDs})
		now := time.Now()
		data := func(r request) string {
			status, body := r.signed("sk").send(t, srv)
			pr, _ := body["PushResult"].(map[string]any)
			d, _ := pr["Data"].(string)
			if codeOf(status, body) != "OK" {
				t.Fatalf("hex %v: %d %v", hexIDs, status, body)
			}
			return d
		}
		tmpl, multi := data(newRequest(now, "t1")), data(newMultiple(now, "m1", 2))
		sched := newRequest(now, "s1")
		sched.form.Set("StrategyType", "1")
		sched.form.Set("StrategyContent", fmt.Sprintf(`{"fixedTime":%d}`, now.Add(time.Hour).UnixMilli()))
		if s := data(sched); !hex32.MatchString(s) {
			t.Fatalf("hex %v: a scheduled task's id %q", hexIDs, s)
		}
		switch {
		case hexIDs && (!hex32.MatchString(tmpl) || !hex32.MatchString(multi)):
			t.Fatalf("HexTaskIDs: PushTemplate %q, PushMultiple %q", tmpl, multi)
		case !hexIDs && (tmpl != "" || !regexp.MustCompile(`^[0-9]+$`).MatchString(multi)):
			t.Fatalf("numbers: PushTemplate %q, PushMultiple %q", tmpl, multi)
		}
		rv := newRequest(now, "r1")
		rv.query.Set("Action", actionRevokeTask)
		rv.form = url.Values{"AppId": {"app"}, "WorkspaceId": {"ws"}, "TaskId": {multi}}
		if status, body := rv.signed("sk").send(t, srv); codeOf(status, body) != "OK" {
			t.Fatalf("hex %v: revoking task %q: %d %v", hexIDs, multi, status, body)
		}
	}
}

// QuotaPerKey holds each AccessKey to its own calls per second, as mPaaS holds
// each account: a key over its quota is throttled while the other goes on, and
// the stats count each key's calls, throttled answers and apps.
func TestQuotaPerKey(t *testing.T) {
	now := time.Now().Truncate(time.Second).Add(100 * time.Millisecond)
	sim, srv := newTestServer(t, Config{Keys: map[string]string{"ak": "sk", "ak2": "sk2"}, AcceptAnyTemplate: true,
		Now: func() time.Time { return now }, Faults: Faults{QuotaPerKey: map[string]int{"ak": 2, "ak2": 3}}})
	call := func(key, secret, nonce string) string {
		r := newRequest(now, nonce)
		r.query.Set("AccessKeyId", key)
		return codeOf(r.signed(secret).send(t, srv))
	}
	var a, b []string
	for i := range 4 {
		a = append(a, call("ak", "sk", "a"+strconv.Itoa(i)))
		b = append(b, call("ak2", "sk2", "b"+strconv.Itoa(i)))
	}
	if strings.Join(a, ",") != "OK,OK,Throttling.User,Throttling.User" || strings.Join(b, ",") != "OK,OK,OK,Throttling.User" {
		t.Fatalf("in one second: ak (quota 2) %v, ak2 (quota 3) %v", a, b)
	}
	now = now.Add(time.Second)
	if code := call("ak", "sk", "a-next"); code != "OK" {
		t.Fatalf("ak in the next second: %s", code)
	}
	st := sim.Stats()
	if k := st.ByKey["ak"]; k.Calls != 5 || k.Accepted != 3 || k.Throttled != 2 || len(k.Apps) != 1 {
		t.Fatalf("ak's stats: %+v", k)
	}
	if k := st.ByKey["ak2"]; k.Calls != 4 || k.Accepted != 3 || k.Throttled != 1 {
		t.Fatalf("ak2's stats: %+v", k)
	}
}
