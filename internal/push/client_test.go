package push_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

const (
	testKeyID     = "LTAI-test-id"
	testKeySecret = "test-secret-never-logged"
)

func startSim(t testing.TB, cfg mpaassim.Config) (*mpaassim.Server, *httptest.Server) {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = map[string]string{testKeyID: testKeySecret}
	}
	sim := mpaassim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func newClient(t *testing.T, endpoint string, mutate ...func(*push.Config)) *push.Client {
	t.Helper()
	cfg := push.Config{Endpoint: endpoint, AccessKeyID: testKeyID, AccessKeySecret: testKeySecret, Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := push.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fullJob carries all 25 parameters; objects are given in both forms.
func fullJob(t *testing.T) *job.Job {
	t.Helper()
	fixed := time.Now().Add(time.Hour).UnixMilli()
	body := fmt.Sprintf(`{
		"taskName":"全参数 task","appId":"ONEX570DA89211721","workspaceId":"test","deliveryType":3,
		"targetMsgkey":{"张三":"k-1","user 2":"k+2"},"expiredSeconds":300,"templateName":"测试模板",
		"templateKeyValue":"{\"money\":\"200\",\"name\":\"张三\"}",
		"extendedParams":{"key1":"value1","url":"https://a/?x=1&y=2"},
		"strategyType":1,"StrategyContent":"{\"fixedTime\":%d}",
		"smsStrategy":2,"smsSignName":"mPaaS 测试","smsTemplateCode":"SMS_216070269","smsTemplateParam":{"code":123456},
		"transparentMessagePayload":{"hms":{"title":"标题","body":"正文"},"fcm":{"k":"v"}},
		"transparentMessageUrgency":"HIGH",
		"thirdChannelCategory":{"hms":"9","vivo":"1"},"notifyLevel":"{\"oppo\":\"2\"}",
		"classification":"0","notifyType":"notify","miChannelId":"123321",
		"activityEvent":"end","activityContentState":{"score":"1:0","team":"红队"},"dismissalDate":1893456000,
		"channelId":"渠道-7","tenantId":"tenant&1"
	}`, fixed)
	return validJob(t, body)
}

// validJob decodes body, which must be a valid job.
func validJob(t *testing.T, body string) *job.Job {
	t.Helper()
	j, err := job.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Validate(job.Rules{}); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestAllParametersArriveIntact(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	j := fullJob(t)
	out := c.Push(context.Background(), j, j.TargetMsgkey)
	if out.Class != push.Success {
		t.Fatalf("push failed: %+v", out)
	}
	if out.RequestID == "" || out.Data == "" {
		t.Fatalf("want a request id and a scheduled task id, got %+v", out)
	}
	calls := sim.Calls()
	got := calls[len(calls)-1].Params
	if calls[len(calls)-1].RequestID != out.RequestID {
		t.Fatal("the outcome's request id is not the emulator's")
	}
	targets, _ := j.TargetMsgkey.MarshalJSON()
	want := map[string]string{
		"TaskName": j.TaskName, "AppId": j.AppID, "WorkspaceId": j.WorkspaceID, "DeliveryType": "3",
		"TargetMsgkey": string(targets), "ExpiredSeconds": "300", "TemplateName": j.TemplateName,
		"TemplateKeyValue": `{"money":"200","name":"张三"}`, "ExtendedParams": `{"key1":"value1","url":"https://a/?x=1&y=2"}`,
		"StrategyType": "1", "StrategyContent": string(j.StrategyContent),
		"SmsStrategy": "2", "SmsSignName": "mPaaS 测试", "SmsTemplateCode": "SMS_216070269", "SmsTemplateParam": `{"code":123456}`,
		"TransparentMessagePayload": `{"hms":{"title":"标题","body":"正文"},"fcm":{"k":"v"}}`, "TransparentMessageUrgency": "HIGH",
		"ThirdChannelCategory": `{"hms":"9","vivo":"1"}`, "NotifyLevel": `{"oppo":"2"}`,
		"Classification": "0", "NotifyType": "notify", "MiChannelId": "123321",
		"ActivityEvent": "end", "ActivityContentState": `{"score":"1:0","team":"红队"}`, "DismissalDate": "1893456000",
		"ChannelId": "渠道-7", "TenantId": "tenant&1",
	}
	if len(want) != 27 {
		t.Fatalf("the test must cover the seed's 25 parameters, ChannelId and TenantId; covers %d", len(want))
	}
	if calls[len(calls)-1].Action != job.APITemplate {
		t.Fatalf("action %q", calls[len(calls)-1].Action)
	}
	sameParams(t, got, want)
	if sim.Delivered(j.AppID, j.WorkspaceID, "张三", "k-1") != 1 || sim.Delivered(j.AppID, j.WorkspaceID, "user 2", "k+2") != 1 {
		t.Fatal("targets not recorded as delivered")
	}
}

func sameParams(t *testing.T, got, want map[string]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected parameter %s=%q", k, got[k])
		}
	}
}

// fullMultipleJob carries every parameter a targetMsgs job may have, and three
// targets with values of their own (one with none).
func fullMultipleJob(t *testing.T) *job.Job {
	t.Helper()
	fixed := time.Now().Add(time.Hour).UnixMilli()
	body := fmt.Sprintf(`{
		"taskName":"个性化 task","appId":"ONEX570DA89211721","workspaceId":"test","deliveryType":7,
		"targetMsgs":[
			{"target":"张三","msgKey":"k-1","templateKeyValue":{"name":"张三","money":"200"},"extendedParams":{"url":"https://a/?x=1&y=2"}},
			{"target":"user 2","msgKey":"k+2","templateKeyValue":"{\"name\":\"Zoë \\\"Z\\\"\",\"money\":\"5\"}"},
			{"target":"u3","msgKey":"k3"}],
		"expiredSeconds":259200,"templateName":"测试模板",
		"extendedParams":{"key1":"value1"},
		"strategyType":1,"strategyContent":{"fixedTime":%d},
		"transparentMessagePayload":{"hms":{"title":"标题"}},"transparentMessageUrgency":"NORMAL",
		"thirdChannelCategory":{"hms":"9"},"notifyLevel":{"oppo":"2"},
		"classification":"1","notifyType":"transparent","miChannelId":"123321",
		"activityEvent":"update","activityContentState":{"team":"红队"},"dismissalDate":1893456000,
		"channelId":"渠道-7","tenantId":"tenant-1"
	}`, fixed)
	return validJob(t, body)
}

func TestPushMultipleParametersArriveIntact(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	j := fullMultipleJob(t)
	out := c.Push(context.Background(), j, j.Pairs())
	if out.Class != push.Success || out.Data == "" {
		t.Fatalf("push failed or no task id: %+v", out)
	}
	call := sim.Calls()[0]
	if call.Action != job.APIMultiple {
		t.Fatalf("action %q, want PushMultiple", call.Action)
	}
	want := map[string]string{
		"TaskName": j.TaskName, "AppId": j.AppID, "WorkspaceId": j.WorkspaceID, "DeliveryType": "7",
		"ExpiredSeconds": "259200", "TemplateName": j.TemplateName,
		"TargetMsg.1.Target": "张三", "TargetMsg.1.MsgKey": "k-1",
		"TargetMsg.1.TemplateKeyValue": `{"name":"张三","money":"200"}`, "TargetMsg.1.ExtendedParams": `{"url":"https://a/?x=1&y=2"}`,
		"TargetMsg.2.Target": "user 2", "TargetMsg.2.MsgKey": "k+2", "TargetMsg.2.TemplateKeyValue": `{"name":"Zoë \"Z\"","money":"5"}`,
		"TargetMsg.3.Target": "u3", "TargetMsg.3.MsgKey": "k3",
		"ExtendedParams": `{"key1":"value1"}`, "StrategyType": "1", "StrategyContent": string(j.StrategyContent),
		"TransparentMessagePayload": `{"hms":{"title":"标题"}}`, "TransparentMessageUrgency": "NORMAL",
		"ThirdChannelCategory": `{"hms":"9"}`, "NotifyLevel": `{"oppo":"2"}`,
		"Classification": "1", "NotifyType": "transparent", "MiChannelId": "123321",
		"ActivityEvent": "update", "ActivityContentState": `{"team":"红队"}`, "DismissalDate": "1893456000",
		"ChannelId": "渠道-7", "TenantId": "tenant-1",
	}
	sameParams(t, call.Params, want)
	byTarget := map[string]mpaassim.Delivery{}
	for _, d := range sim.Deliveries(1) {
		byTarget[d.Target] = d
	}
	if d := byTarget["user 2"]; d.API != job.APIMultiple || d.TemplateKeyValue != `{"name":"Zoë \"Z\"","money":"5"}` || d.Count != 1 {
		t.Fatalf("the emulator recorded %+v for user 2", d)
	}
	if st := sim.Stats(); st.ByAPI[job.APIMultiple].Deliveries != 3 || st.ByAPI[job.APIMultiple].Calls != 1 {
		t.Fatalf("stats by action: %+v", st.ByAPI)
	}
}

func TestPushMultipleTakesAHundredTargets(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{Templates: map[string]string{"hi": "Hi #name#"}})
	c := newClient(t, srv.URL)
	j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "hi"}
	for i := range 101 {
		j.TargetMsgs = append(j.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("u%d", i), MsgKey: fmt.Sprintf("k%d", i),
			TemplateKeyValue: job.ObjectOf([]string{"name"}, []string{fmt.Sprintf("用户%d", i)})})
	}
	all := j.Pairs()
	if out := c.Push(context.Background(), j, all[:100]); out.Class != push.Success {
		t.Fatalf("100 targets: %+v", out)
	}
	if out := c.Push(context.Background(), j, all); out.Class != push.JobFault {
		t.Fatalf("101 targets must be refused before the call: %+v", out)
	}
	// A target without a value for #name# is the job's fault (3023), and the
	// answer names the variable, not a value.
	j.TargetMsgs[100].TemplateKeyValue = job.Object(`{"nom":"secret-value"}`)
	out := c.Push(context.Background(), j, all[1:])
	if out.Class != push.JobFault || out.ResultCode != "3023" || strings.Contains(out.ResultMessage, "secret-value") {
		t.Fatalf("want 3023 naming no value, got %+v", out)
	}
	if sim.Stats().ByAPI[job.APIMultiple].Deliveries != 100 {
		t.Fatalf("stats: %+v", sim.Stats().ByAPI)
	}
}

func TestAbsentParametersAreNotSentAndZeroIs(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
		TargetMsgkey: job.Targets{{Target: "u", MsgKey: "k"}}, StrategyType: job.Int64(0)}
	if out := c.Push(context.Background(), j, j.TargetMsgkey); out.Class != push.Success {
		t.Fatalf("push failed: %+v", out)
	}
	got := sim.Calls()[0].Params
	keys := []string{}
	for k := range got {
		keys = append(keys, k)
	}
	if len(got) != 8 || got["StrategyType"] != "0" {
		t.Fatalf("want the 7 required parameters and StrategyType=0, got %v", keys)
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL, func(cfg *push.Config) { cfg.AccessKeySecret = "wrong" })
	j := fullJob(t)
	out := c.Push(context.Background(), j, j.TargetMsgkey[:1])
	if out.Class != push.ConfigFault || out.ResultCode != "SignatureDoesNotMatch" || out.HTTPStatus != 400 {
		t.Fatalf("want a config fault SignatureDoesNotMatch, got %+v", out)
	}
	if sim.Stats().Accepted != 0 {
		t.Fatal("a refused call was recorded")
	}
	c = newClient(t, srv.URL, func(cfg *push.Config) { cfg.AccessKeyID = "LTAI-unknown" })
	if out := c.Push(context.Background(), j, j.TargetMsgkey[:1]); out.Class != push.ConfigFault {
		t.Fatalf("unknown key: %+v", out)
	}
}

func TestClassificationOverTheWire(t *testing.T) {
	j := fullJob(t)
	j.StrategyType, j.StrategyContent = nil, nil
	cases := []struct {
		name      string
		cfg       mpaassim.Config
		class     push.Class
		code      string
		throttled bool
		maybeSent bool
	}{
		{"success", mpaassim.Config{AcceptAnyTemplate: true}, push.Success, "OK", false, false},
		{"8011", mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{Rate8011: 1}}, push.Transient, "8011", true, false},
		{"unknown template", mpaassim.Config{Templates: map[string]string{}}, push.JobFault, "3022", false, false},
		{"missing template value", mpaassim.Config{Templates: map[string]string{"测试模板": "#money# #missing#"}}, push.JobFault, "3023", false, false},
		{"throttling", mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{RateThrottle: 1}}, push.Transient, "Throttling.User", true, false},
		{"5xx", mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{Rate5xx: 1}}, push.Transient, "", false, false},
		{"refused signature", mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{RefuseSignatures: true}}, push.ConfigFault, "SignatureDoesNotMatch", false, false},
		{"clock skew", mpaassim.Config{AcceptAnyTemplate: true, Now: func() time.Time { return time.Now().Add(time.Hour) }}, push.ConfigFault, "InvalidTimeStamp.Expired", false, false},
		{"timeout after the push was recorded", mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{RateTimeout: 1, TimeoutHold: 5 * time.Second}}, push.Transient, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, srv := startSim(t, c.cfg)
			client := newClient(t, srv.URL, func(cfg *push.Config) { cfg.Timeout = 300 * time.Millisecond })
			out := client.Push(context.Background(), j, j.TargetMsgkey)
			if out.Class != c.class || out.Throttled != c.throttled || out.MaybeSent != c.maybeSent {
				t.Fatalf("got %s throttled=%v maybeSent=%v (%+v), want %s %v %v", out.Class, out.Throttled, out.MaybeSent, out, c.class, c.throttled, c.maybeSent)
			}
			if c.code != "" && out.ResultCode != c.code {
				t.Fatalf("code %q, want %q", out.ResultCode, c.code)
			}
			if c.class != push.Success && out.Err == nil {
				t.Fatal("a failure must carry an error")
			}
			if c.maybeSent && sim.Delivered(j.AppID, j.WorkspaceID, "张三", "k-1") != 1 {
				t.Fatal("the emulator did not record the push that timed out")
			}
			if out.Err != nil && strings.Contains(out.Err.Error(), testKeySecret) {
				t.Fatal("the error holds the secret")
			}
		})
	}
}

func TestConnectionRefusedIsTransientAndNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr)
	j := fullJob(t)
	out := c.Push(context.Background(), j, j.TargetMsgkey)
	if out.Class != push.Transient || out.MaybeSent || out.HTTPStatus != 0 {
		t.Fatalf("want transient, not sent: %+v", out)
	}
	if strings.Contains(out.Err.Error(), "Signature=") || strings.Contains(out.Err.Error(), testKeyID) {
		t.Fatalf("the error leaks the signed URL: %v", out.Err)
	}
}

func TestCanceledContextStopsTheCall(t *testing.T) {
	_, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true, Faults: mpaassim.Faults{Latency: 5 * time.Second}})
	c := newClient(t, srv.URL, func(cfg *push.Config) { cfg.Timeout = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	j := fullJob(t)
	start := time.Now()
	out := c.Push(ctx, j, j.TargetMsgkey)
	if time.Since(start) > 2*time.Second || out.Class != push.Transient || !out.MaybeSent {
		t.Fatalf("a canceled call must end at once as an unknown outcome: %v %+v", time.Since(start), out)
	}
}

func TestHTTPSVerifiesTheCertificate(t *testing.T) {
	sim := mpaassim.New(mpaassim.Config{AcceptAnyTemplate: true, Keys: map[string]string{testKeyID: testKeySecret}})
	srv := httptest.NewTLSServer(sim)
	defer srv.Close()
	j := fullJob(t)
	host := strings.TrimPrefix(srv.URL, "https://")

	// A bare host means HTTPS; the test server's certificate is not trusted by default.
	c := newClient(t, host)
	if out := c.Push(context.Background(), j, j.TargetMsgkey); out.Class != push.ConfigFault {
		t.Fatalf("an untrusted certificate must be a config fault, got %+v", out)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c = newClient(t, host, func(cfg *push.Config) { cfg.TLS = &tls.Config{RootCAs: pool} })
	if out := c.Push(context.Background(), j, j.TargetMsgkey); out.Class != push.Success {
		t.Fatalf("HTTPS with the CA: %+v", out)
	}
}

// 32 goroutines × 100 calls through one Client, under -race.
func TestConcurrentCalls(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{AcceptAnyTemplate: true})
	c := newClient(t, srv.URL)
	const workers, calls = 32, 100
	var wg sync.WaitGroup
	failures := make(chan string, workers*calls)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
					TargetMsgkey: job.Targets{{Target: fmt.Sprintf("u%d-%d", w, i), MsgKey: "k"}}}
				if out := c.Push(context.Background(), j, j.TargetMsgkey); out.Class != push.Success {
					failures <- fmt.Sprintf("%+v", out)
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Fatal(f)
	}
	st := sim.Stats()
	if st.Accepted != workers*calls || st.Pairs != workers*calls || st.DuplicatePairs != 0 {
		t.Fatalf("emulator saw %+v", st)
	}
	b, _ := json.Marshal(st)
	t.Logf("stats: %s", b)
}
