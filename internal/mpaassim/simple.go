package mpaassim

import (
	"encoding/json"
)

// What PushSimple and PushBroadcast take, from the API metadata: a worker that
// sends another action's parameter to them is wrong.
var (
	simpleDeliveryTypes    = map[string]bool{"1": true, "2": true, "3": true, "7": true}
	broadcastDeliveryTypes = map[string]bool{"1": true, "2": true, "7": true}
	zeroOneTwo             = map[string]bool{"0": true, "1": true, "2": true}
	// Parameters of other actions that neither takes.
	notSimpleOrBroadcast = []string{"TargetMsg.1.Target", "TransparentMessagePayload", "TransparentMessageUrgency",
		"ThirdChannelCategory", "NotifyLevel", "MiChannelId", "ActivityEvent", "ActivityContentState", "DismissalDate",
		"ChannelId", "TenantId"}
	notSimple    = []string{"TemplateName", "TemplateKeyValue", "Msgkey", "PushStatus", "BindPeriod", "UnBindPeriod", "AndroidChannel"}
	notBroadcast = []string{"TargetMsgkey", "Title", "Content", "PushStyle", "ImageUrls", "IconUrls", "Uri",
		"SmsStrategy", "SmsSignName", "SmsTemplateCode", "SmsTemplateParam"}
)

// checkOwnParams holds a PushSimple or PushBroadcast call to its own
// parameters and rules, and returns the delivery types it takes.
func checkOwnParams(action string, form map[string]string) (map[string]bool, *bizError) {
	own, types := notSimple, simpleDeliveryTypes
	if action == actionBroadcast {
		own, types = notBroadcast, broadcastDeliveryTypes
	}
	for _, list := range [][]string{notSimpleOrBroadcast, own} {
		for _, name := range list {
			if _, ok := form[name]; ok {
				return nil, invalidParam("%s is not a parameter of %s", name, action)
			}
		}
	}
	for _, name := range []string{"PushAction", "Silent"} {
		if v, ok := form[name]; ok && v != "0" && v != "1" {
			return nil, invalidParam("%s %q", name, v)
		}
	}
	if action == actionBroadcast {
		if v, ok := form["PushStatus"]; ok && !zeroOneTwo[v] {
			return nil, invalidParam("PushStatus %q", v)
		}
		return types, nil
	}
	style, ok := form["PushStyle"]
	if ok && !zeroOneTwo[style] {
		return nil, invalidParam("PushStyle %q", style)
	}
	for _, name := range []string{"ImageUrls", "IconUrls"} {
		if v, ok := form[name]; ok {
			var obj map[string]any
			if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
				return nil, invalidParam("%s must be a JSON object", name)
			}
		}
	}
	if style == "2" && form["ImageUrls"] == "" {
		return nil, invalidParam("ImageUrls is required with PushStyle 2")
	}
	return types, nil
}

// simpleTargets checks PushSimple's targets and SMS parameters: as
// PushTemplate's, without a template.
func simpleTargets(form map[string]string, objects map[string]map[string]any) ([]target, *bizError) {
	targets, berr := keyTargets(form, objects)
	if berr != nil {
		return nil, berr
	}
	for i := range targets {
		targets[i].values, targets[i].extended = form["Content"], form["ExtendedParams"]
	}
	return targets, nil
}

// Broadcasts is how many PushBroadcast calls the emulator accepted for a
// broadcast's msgKey.
func (s *Server) Broadcasts(app, workspace, msgKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broadcasts[pairKey{app, workspace, "", msgKey}]
}
