package push

import (
	"strconv"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/mpaas-push/pushworker/job"
)

// APIVersion is the mPaaS API version of the Go SDK's PushTemplate and PushMultiple.
const APIVersion = "2020-10-28"

// templateRequest is PushTemplate with all 25 parameters of the API document. The
// SDK's typed mpaas.PushTemplateRequest lacks eight of them, and embedding it would
// silently drop every inherited field, so this embeds RpcRequest directly. Every
// field is a string: the SDK sends a non-empty string as a form field of the POST
// body under its name and leaves an empty one out, which is how absent parameters
// stay absent while an explicit 0 is sent.
type templateRequest struct {
	*requests.RpcRequest
	TaskName                  string `position:"Body" name:"TaskName"`
	AppId                     string `position:"Body" name:"AppId"`
	WorkspaceId               string `position:"Body" name:"WorkspaceId"`
	DeliveryType              string `position:"Body" name:"DeliveryType"`
	TargetMsgkey              string `position:"Body" name:"TargetMsgkey"`
	ExpiredSeconds            string `position:"Body" name:"ExpiredSeconds"`
	TemplateName              string `position:"Body" name:"TemplateName"`
	TemplateKeyValue          string `position:"Body" name:"TemplateKeyValue"`
	ExtendedParams            string `position:"Body" name:"ExtendedParams"`
	StrategyContent           string `position:"Body" name:"StrategyContent"`
	SmsTemplateParam          string `position:"Body" name:"SmsTemplateParam"`
	TransparentMessagePayload string `position:"Body" name:"TransparentMessagePayload"`
	ThirdChannelCategory      string `position:"Body" name:"ThirdChannelCategory"`
	NotifyLevel               string `position:"Body" name:"NotifyLevel"`
	ActivityContentState      string `position:"Body" name:"ActivityContentState"`
	Classification            string `position:"Body" name:"Classification"`
	NotifyType                string `position:"Body" name:"NotifyType"`
	TransparentMessageUrgency string `position:"Body" name:"TransparentMessageUrgency"`
	SmsSignName               string `position:"Body" name:"SmsSignName"`
	SmsTemplateCode           string `position:"Body" name:"SmsTemplateCode"`
	MiChannelId               string `position:"Body" name:"MiChannelId"`
	ActivityEvent             string `position:"Body" name:"ActivityEvent"`
	ChannelId                 string `position:"Body" name:"ChannelId"`
	TenantId                  string `position:"Body" name:"TenantId"`
	StrategyType              string `position:"Body" name:"StrategyType"`
	SmsStrategy               string `position:"Body" name:"SmsStrategy"`
	DismissalDate             string `position:"Body" name:"DismissalDate"`
	PushAction                string `position:"Body" name:"PushAction"`
	Silent                    string `position:"Body" name:"Silent"`
}

// newTemplateRequest builds a fresh request (the SDK writes into a request, so one
// is never reused) for the targets of one call of job j.
func newTemplateRequest(j *job.Job, targets job.Targets) (*templateRequest, error) {
	tm, err := targets.MarshalJSON()
	if err != nil {
		return nil, err
	}
	r := &templateRequest{
		RpcRequest: &requests.RpcRequest{},

		TaskName:       j.TaskName,
		AppId:          j.AppID,
		WorkspaceId:    j.WorkspaceID,
		DeliveryType:   strconv.FormatInt(j.DeliveryType, 10),
		TargetMsgkey:   string(tm),
		ExpiredSeconds: strconv.FormatInt(j.ExpiredSeconds, 10),
		TemplateName:   j.TemplateName,

		TemplateKeyValue:          j.TemplateKeyValue.String(),
		ExtendedParams:            j.ExtendedParams.String(),
		StrategyContent:           j.StrategyContent.String(),
		SmsTemplateParam:          j.SmsTemplateParam.String(),
		TransparentMessagePayload: j.TransparentMessagePayload.String(),
		ThirdChannelCategory:      j.ThirdChannelCategory.String(),
		NotifyLevel:               j.NotifyLevel.String(),
		ActivityContentState:      j.ActivityContentState.String(),

		Classification:            j.Classification,
		NotifyType:                j.NotifyType,
		TransparentMessageUrgency: j.TransparentMessageUrgency,
		SmsSignName:               j.SmsSignName,
		SmsTemplateCode:           j.SmsTemplateCode,
		MiChannelId:               j.MiChannelID,
		ActivityEvent:             j.ActivityEvent,
		ChannelId:                 j.ChannelID,
		TenantId:                  j.TenantID,

		StrategyType:  optionalInt(j.StrategyType),
		SmsStrategy:   optionalInt(j.SmsStrategy),
		DismissalDate: optionalInt(j.DismissalDate),
		PushAction:    optionalInt(j.PushAction),
		Silent:        optionalInt(j.Silent),
	}
	r.InitWithApiInfo("mPaaS", APIVersion, job.APITemplate, "", "")
	r.Method = requests.POST
	return r, nil
}

func optionalInt(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

// multipleRequest is PushMultiple with every parameter a targetMsgs job may carry.
// The SDK's typed mpaas.PushMultipleRequest lacks ten of them (the eight that
// PushTemplate lacks, ChannelId and TenantId); as with templateRequest, this embeds
// RpcRequest directly. TargetMsg is a repeated field: the SDK sends element i as
// TargetMsg.<i+1>.Target, TargetMsg.<i+1>.MsgKey, … and leaves empty ones out.
type multipleRequest struct {
	*requests.RpcRequest
	TaskName                  string       `position:"Body" name:"TaskName"`
	AppId                     string       `position:"Body" name:"AppId"`
	WorkspaceId               string       `position:"Body" name:"WorkspaceId"`
	DeliveryType              string       `position:"Body" name:"DeliveryType"`
	TargetMsg                 *[]targetMsg `position:"Body" name:"TargetMsg" type:"Repeated"`
	ExpiredSeconds            string       `position:"Body" name:"ExpiredSeconds"`
	TemplateName              string       `position:"Body" name:"TemplateName"`
	ExtendedParams            string       `position:"Body" name:"ExtendedParams"`
	StrategyContent           string       `position:"Body" name:"StrategyContent"`
	TransparentMessagePayload string       `position:"Body" name:"TransparentMessagePayload"`
	ThirdChannelCategory      string       `position:"Body" name:"ThirdChannelCategory"`
	NotifyLevel               string       `position:"Body" name:"NotifyLevel"`
	ActivityContentState      string       `position:"Body" name:"ActivityContentState"`
	Classification            string       `position:"Body" name:"Classification"`
	NotifyType                string       `position:"Body" name:"NotifyType"`
	TransparentMessageUrgency string       `position:"Body" name:"TransparentMessageUrgency"`
	MiChannelId               string       `position:"Body" name:"MiChannelId"`
	ActivityEvent             string       `position:"Body" name:"ActivityEvent"`
	ChannelId                 string       `position:"Body" name:"ChannelId"`
	TenantId                  string       `position:"Body" name:"TenantId"`
	StrategyType              string       `position:"Body" name:"StrategyType"`
	DismissalDate             string       `position:"Body" name:"DismissalDate"`
	PushAction                string       `position:"Body" name:"PushAction"`
	Silent                    string       `position:"Body" name:"Silent"`
}

// targetMsg is one element of PushMultiple's TargetMsg list.
type targetMsg struct {
	Target           string `name:"Target"`
	MsgKey           string `name:"MsgKey"`
	TemplateKeyValue string `name:"TemplateKeyValue"`
	ExtendedParams   string `name:"ExtendedParams"`
}

// newMultipleRequest builds a fresh PushMultiple request for msgs, one call's
// targets of job j, in order.
func newMultipleRequest(j *job.Job, msgs []job.TargetMsg) *multipleRequest {
	list := make([]targetMsg, len(msgs))
	for i, m := range msgs {
		list[i] = targetMsg{Target: m.Target, MsgKey: m.MsgKey,
			TemplateKeyValue: m.TemplateKeyValue.String(), ExtendedParams: m.ExtendedParams.String()}
	}
	r := &multipleRequest{
		RpcRequest: &requests.RpcRequest{},

		TaskName:       j.TaskName,
		AppId:          j.AppID,
		WorkspaceId:    j.WorkspaceID,
		DeliveryType:   strconv.FormatInt(j.DeliveryType, 10),
		TargetMsg:      &list,
		ExpiredSeconds: strconv.FormatInt(j.ExpiredSeconds, 10),
		TemplateName:   j.TemplateName,

		ExtendedParams:            j.ExtendedParams.String(),
		StrategyContent:           j.StrategyContent.String(),
		TransparentMessagePayload: j.TransparentMessagePayload.String(),
		ThirdChannelCategory:      j.ThirdChannelCategory.String(),
		NotifyLevel:               j.NotifyLevel.String(),
		ActivityContentState:      j.ActivityContentState.String(),

		Classification:            j.Classification,
		NotifyType:                j.NotifyType,
		TransparentMessageUrgency: j.TransparentMessageUrgency,
		MiChannelId:               j.MiChannelID,
		ActivityEvent:             j.ActivityEvent,
		ChannelId:                 j.ChannelID,
		TenantId:                  j.TenantID,

		StrategyType:  optionalInt(j.StrategyType),
		DismissalDate: optionalInt(j.DismissalDate),
		PushAction:    optionalInt(j.PushAction),
		Silent:        optionalInt(j.Silent),
	}
	r.InitWithApiInfo("mPaaS", APIVersion, job.APIMultiple, "", "")
	r.Method = requests.POST
	return r
}

// simpleRequest is PushSimple with every parameter a PushSimple job may carry.
// The SDK's typed mpaas.PushSimpleRequest has them all; this is built the one
// way all four actions are (as templateRequest: RpcRequest embedded, every
// field a string, left out when empty), so that a parameter the SDK lacks
// later is a field here, not a second way of sending.
type simpleRequest struct {
	*requests.RpcRequest
	TaskName         string `position:"Body" name:"TaskName"`
	AppId            string `position:"Body" name:"AppId"`
	WorkspaceId      string `position:"Body" name:"WorkspaceId"`
	DeliveryType     string `position:"Body" name:"DeliveryType"`
	TargetMsgkey     string `position:"Body" name:"TargetMsgkey"`
	ExpiredSeconds   string `position:"Body" name:"ExpiredSeconds"`
	Title            string `position:"Body" name:"Title"`
	Content          string `position:"Body" name:"Content"`
	PushStyle        string `position:"Body" name:"PushStyle"`
	ImageUrls        string `position:"Body" name:"ImageUrls"`
	IconUrls         string `position:"Body" name:"IconUrls"`
	Uri              string `position:"Body" name:"Uri"`
	PushAction       string `position:"Body" name:"PushAction"`
	Silent           string `position:"Body" name:"Silent"`
	NotifyType       string `position:"Body" name:"NotifyType"`
	Classification   string `position:"Body" name:"Classification"`
	ExtendedParams   string `position:"Body" name:"ExtendedParams"`
	StrategyType     string `position:"Body" name:"StrategyType"`
	StrategyContent  string `position:"Body" name:"StrategyContent"`
	SmsStrategy      string `position:"Body" name:"SmsStrategy"`
	SmsSignName      string `position:"Body" name:"SmsSignName"`
	SmsTemplateCode  string `position:"Body" name:"SmsTemplateCode"`
	SmsTemplateParam string `position:"Body" name:"SmsTemplateParam"`
}

// newSimpleRequest builds a fresh PushSimple request for the targets of one
// call of job j.
func newSimpleRequest(j *job.Job, targets job.Targets) *simpleRequest {
	tm, _ := targets.MarshalJSON() // never fails
	r := &simpleRequest{
		RpcRequest: &requests.RpcRequest{},

		TaskName:       j.TaskName,
		AppId:          j.AppID,
		WorkspaceId:    j.WorkspaceID,
		DeliveryType:   strconv.FormatInt(j.DeliveryType, 10),
		TargetMsgkey:   string(tm),
		ExpiredSeconds: strconv.FormatInt(j.ExpiredSeconds, 10),
		Title:          j.Title,
		Content:        j.Content,

		PushStyle:  optionalInt(j.PushStyle),
		ImageUrls:  j.ImageUrls.String(),
		IconUrls:   j.IconUrls.String(),
		Uri:        j.URI,
		PushAction: optionalInt(j.PushAction),
		Silent:     optionalInt(j.Silent),

		NotifyType:       j.NotifyType,
		Classification:   j.Classification,
		ExtendedParams:   j.ExtendedParams.String(),
		StrategyType:     optionalInt(j.StrategyType),
		StrategyContent:  j.StrategyContent.String(),
		SmsStrategy:      optionalInt(j.SmsStrategy),
		SmsSignName:      j.SmsSignName,
		SmsTemplateCode:  j.SmsTemplateCode,
		SmsTemplateParam: j.SmsTemplateParam.String(),
	}
	r.InitWithApiInfo("mPaaS", APIVersion, job.APISimple, "", "")
	r.Method = requests.POST
	return r
}

// broadcastRequest is PushBroadcast with every parameter a broadcast job may
// carry. The message key goes on the wire as Msgkey, as the SDK's typed
// mpaas.PushBroadcastRequest spells it (PushMultiple's element says MsgKey).
type broadcastRequest struct {
	*requests.RpcRequest
	TaskName         string `position:"Body" name:"TaskName"`
	AppId            string `position:"Body" name:"AppId"`
	WorkspaceId      string `position:"Body" name:"WorkspaceId"`
	DeliveryType     string `position:"Body" name:"DeliveryType"`
	Msgkey           string `position:"Body" name:"Msgkey"`
	ExpiredSeconds   string `position:"Body" name:"ExpiredSeconds"`
	TemplateName     string `position:"Body" name:"TemplateName"`
	TemplateKeyValue string `position:"Body" name:"TemplateKeyValue"`
	PushStatus       string `position:"Body" name:"PushStatus"`
	BindPeriod       string `position:"Body" name:"BindPeriod"`
	UnBindPeriod     string `position:"Body" name:"UnBindPeriod"`
	AndroidChannel   string `position:"Body" name:"AndroidChannel"`
	PushAction       string `position:"Body" name:"PushAction"`
	Silent           string `position:"Body" name:"Silent"`
	NotifyType       string `position:"Body" name:"NotifyType"`
	Classification   string `position:"Body" name:"Classification"`
	ExtendedParams   string `position:"Body" name:"ExtendedParams"`
	StrategyType     string `position:"Body" name:"StrategyType"`
	StrategyContent  string `position:"Body" name:"StrategyContent"`
}

// newBroadcastRequest builds a fresh PushBroadcast request for broadcast job j.
func newBroadcastRequest(j *job.Job) *broadcastRequest {
	b := j.Broadcast
	r := &broadcastRequest{
		RpcRequest: &requests.RpcRequest{},

		TaskName:         j.TaskName,
		AppId:            j.AppID,
		WorkspaceId:      j.WorkspaceID,
		DeliveryType:     strconv.FormatInt(j.DeliveryType, 10),
		Msgkey:           b.MsgKey,
		ExpiredSeconds:   strconv.FormatInt(j.ExpiredSeconds, 10),
		TemplateName:     j.TemplateName,
		TemplateKeyValue: j.TemplateKeyValue.String(),

		PushStatus:     optionalInt(b.PushStatus),
		BindPeriod:     optionalInt(b.BindPeriod),
		UnBindPeriod:   optionalInt(b.UnBindPeriod),
		AndroidChannel: optionalInt(b.AndroidChannel),
		PushAction:     optionalInt(j.PushAction),
		Silent:         optionalInt(j.Silent),

		NotifyType:      j.NotifyType,
		Classification:  j.Classification,
		ExtendedParams:  j.ExtendedParams.String(),
		StrategyType:    optionalInt(j.StrategyType),
		StrategyContent: j.StrategyContent.String(),
	}
	r.InitWithApiInfo("mPaaS", APIVersion, job.APIBroadcast, "", "")
	r.Method = requests.POST
	return r
}
