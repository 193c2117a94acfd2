package push_test

import (
	"context"
	"testing"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// Every parameter a PushSimple job carries reaches mPaaS under its wire name,
// objects as compact JSON, and a PushSimple pair is revoked per pair.
func TestPushSimpleParametersArriveIntact(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{})
	c := newClient(t, srv.URL)
	j := validJob(t, `{"taskName":"发货","appId":"ONEX570DA89211721","workspaceId":"test","deliveryType":3,
		"targetMsgkey":{"张三":"ship-1","user 2":"ship+2"},"expiredSeconds":600,
		"title":"已发货 & 在路上","content":"您的订单 <8812> 已发货","pushStyle":2,
		"imageUrls":"{\"defaultUrl\":\"https://img/a.png?x=1&y=2\"}","iconUrls":{"defaultUrl":"https://img/i.png"},
		"uri":"app://orders/8812","pushAction":1,"silent":0,"notifyType":"notify","classification":"1",
		"extendedParams":{"orderId":"8812"},"strategyType":0,
		"smsStrategy":1,"smsSignName":"签名","smsTemplateCode":"SMS_1","smsTemplateParam":{"code":"1"}}`)
	out := c.Push(context.Background(), j, j.TargetMsgkey)
	if out.Class != push.Success || out.API != job.APISimple {
		t.Fatalf("push: %+v", out)
	}
	call := sim.Calls()[0]
	if call.Action != job.APISimple {
		t.Fatalf("action %q", call.Action)
	}
	targets, _ := j.TargetMsgkey.MarshalJSON()
	sameParams(t, call.Params, map[string]string{
		"TaskName": "发货", "AppId": j.AppID, "WorkspaceId": "test", "DeliveryType": "3", "TargetMsgkey": string(targets),
		"ExpiredSeconds": "600", "Title": "已发货 & 在路上", "Content": "您的订单 <8812> 已发货", "PushStyle": "2",
		"ImageUrls": `{"defaultUrl":"https://img/a.png?x=1&y=2"}`, "IconUrls": `{"defaultUrl":"https://img/i.png"}`,
		"Uri": "app://orders/8812", "PushAction": "1", "Silent": "0", "NotifyType": "notify", "Classification": "1",
		"ExtendedParams": `{"orderId":"8812"}`, "StrategyType": "0",
		"SmsStrategy": "1", "SmsSignName": "签名", "SmsTemplateCode": "SMS_1", "SmsTemplateParam": `{"code":"1"}`,
	})
	if out := c.RevokeMessage(context.Background(), j.AppID, "test", "张三", "ship-1"); out.Class != push.Success {
		t.Fatalf("revoke of a PushSimple pair: %+v", out)
	}
	// What mPaaS refuses, the emulator refuses: a job that skipped validation.
	bad := *j
	bad.ImageUrls = nil
	if out := c.Push(context.Background(), &bad, j.TargetMsgkey); out.Class != push.JobFault || out.ResultCode != "3028" {
		t.Fatalf("style 2 without ImageUrls: %+v", out)
	}
}

// A broadcast goes out as PushBroadcast with its msgKey as Msgkey and every
// parameter it carries; its answer's Data is a push task that RevokePushTask
// takes back.
func TestPushBroadcastParametersArriveIntact(t *testing.T) {
	sim, srv := startSim(t, mpaassim.Config{Templates: map[string]string{"新版本": "#version# 上线了"}})
	c := newClient(t, srv.URL)
	j := validJob(t, `{"taskName":"launch","appId":"ONEX570DA89211721","workspaceId":"test","deliveryType":7,
		"expiredSeconds":3600,"templateName":"新版本","templateKeyValue":{"version":"2.0"},
		"broadcast":{"msgKey":"launch-2026","pushStatus":2,"bindPeriod":7,"unBindPeriod":30,"androidChannel":1},
		"pushAction":0,"silent":1,"notifyType":"transparent","classification":"0","extendedParams":{"from":"console"}}`)
	out := c.Push(context.Background(), j, j.Pairs())
	if out.Class != push.Success || out.API != job.APIBroadcast || out.Data == "" {
		t.Fatalf("push: %+v", out)
	}
	call := sim.Calls()[0]
	if call.Action != job.APIBroadcast {
		t.Fatalf("action %q", call.Action)
	}
	sameParams(t, call.Params, map[string]string{
		"TaskName": "launch", "AppId": j.AppID, "WorkspaceId": "test", "DeliveryType": "7", "ExpiredSeconds": "3600",
		"TemplateName": "新版本", "TemplateKeyValue": `{"version":"2.0"}`, "Msgkey": "launch-2026",
		"PushStatus": "2", "BindPeriod": "7", "UnBindPeriod": "30", "AndroidChannel": "1",
		"PushAction": "0", "Silent": "1", "NotifyType": "transparent", "Classification": "0", "ExtendedParams": `{"from":"console"}`,
	})
	if sim.Broadcasts(j.AppID, "test", "launch-2026") != 1 || sim.Stats().ByAPI[job.APIBroadcast].Accepted != 1 {
		t.Fatalf("emulator: %d broadcasts, stats %+v", sim.Broadcasts(j.AppID, "test", "launch-2026"), sim.Stats().ByAPI)
	}
	// Its delivery figures are those of every device of the app (the emulator's
	// DefaultBroadcastDevices), asked by its task id.
	if a, qr := c.TaskDetail(context.Background(), j.AppID, "test", out.Data); qr.Class != push.Success || !a.Ready || a.Figures.Pushed != mpaassim.DefaultBroadcastDevices {
		t.Fatalf("the broadcast's task figures: %+v %+v", a, qr)
	}
	if out := c.RevokeTask(context.Background(), j.AppID, "test", out.Data); out.Class != push.Success {
		t.Fatalf("revoke of the broadcast's task: %+v", out)
	}
	if st := sim.Stats(); st.Recall.RevokedTasks != 1 {
		t.Fatalf("revoked tasks: %d", st.Recall.RevokedTasks)
	}
	// The template's values are checked as for PushTemplate.
	bad := *j
	bad.TemplateKeyValue = nil
	if out := c.Push(context.Background(), &bad, j.Pairs()); out.Class != push.JobFault || out.ResultCode != "3023" {
		t.Fatalf("broadcast without the template's values: %+v", out)
	}
	// A call carries only the broadcast's own pair.
	if out := c.Push(context.Background(), j, job.Targets{{Target: "u1", MsgKey: "k"}}); out.Class != push.JobFault {
		t.Fatalf("a broadcast call with a target: %+v", out)
	}
}
