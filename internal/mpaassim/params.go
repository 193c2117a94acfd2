package mpaassim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// bizError is an answer of HTTP 200 with a failure ResultCode.
type bizError struct {
	code    string
	message string
}

// The documented ResultCodes the emulator answers with.
const (
	codeTemplateNotExist   = "3022" // TEMPLATE_NOT_EXIST
	codeTemplateKVNotEnuff = "3023" // TEMPLATEKV_NOT_ENOUGH
	codeInvalidParam       = "3028" // INVALID_PARAM
	codeTooManyTargets     = "3029" // more than 10 targets (100 for PushMultiple)
	codeTooManyExtended    = "3035" // more than 20 extended params
	codeTargetExtended     = "3049" // a PushMultiple target's extended params must be fewer than 10
)

// The actions the emulator serves.
const (
	actionTemplate  = "PushTemplate"
	actionMultiple  = "PushMultiple"
	actionSimple    = "PushSimple"
	actionBroadcast = "PushBroadcast"
)

// pushActions are the push actions: recorded, and checked by checkParams.
var pushActions = map[string]bool{actionTemplate: true, actionMultiple: true, actionSimple: true, actionBroadcast: true}

type pushParams struct {
	api            string
	app, workspace string
	targets        []target
	scheduled      bool
	strategy       int    // StrategyType
	runAt, until   int64  // a scheduled call's first run and (recurring) last day, Unix ms
	msgKey         string // a broadcast's Msgkey
}

// target is one pair a call delivers, with the values it was delivered with.
type target struct{ target, msgKey, values, extended string }

// required are each action's mandatory parameters: the gateway refuses a call
// that lacks one with Missing<Name>.
var required = map[string][]string{
	actionTemplate: {"TaskName", "AppId", "WorkspaceId", "DeliveryType", "TargetMsgkey", "ExpiredSeconds", "TemplateName"},
	actionMultiple: {"TaskName", "AppId", "WorkspaceId", "DeliveryType", "TargetMsg.1.Target", "ExpiredSeconds", "TemplateName"},
	actionSimple:   {"TaskName", "AppId", "WorkspaceId", "DeliveryType", "TargetMsgkey", "ExpiredSeconds", "Title", "Content"},
	// The SDK spells it Msgkey (PushMultiple's element says MsgKey).
	actionBroadcast: {"TaskName", "AppId", "WorkspaceId", "DeliveryType", "Msgkey", "ExpiredSeconds", "TemplateName"},
}

// missingParam is the gateway's check of the mandatory parameters.
func missingParam(action string, form map[string]string) *apiError {
	for _, name := range required[action] {
		if form[name] == "" {
			name, _, _ = strings.Cut(name, ".")
			return &apiError{400, "Missing" + name, name + " is mandatory for this action."}
		}
	}
	return nil
}

// The API's limits, from the PushTemplate document and the API metadata. They
// are written here on their own, not taken from the worker's job package, so
// that a worker that gets mPaaS's rules wrong is caught by the emulator.
const (
	maxTargetsPerCall         = 10
	maxTargetsPerMultipleCall = 100
	maxExtendedParams         = 20
	maxTargetExtendedParams   = 9      // "fewer than 10"
	maxExpiredSeconds         = 259200 // 3 days; mPaaS answers 3026 above it
	codeExpiredTooLong        = "3026"
)

var (
	deliveryTypes         = map[string]bool{"1": true, "2": true, "3": true, "5": true, "6": true, "7": true}
	multipleDeliveryTypes = map[string]bool{"1": true, "2": true, "3": true, "7": true}
	// Parameters PushMultiple does not have: a worker that sends one is wrong.
	notMultiple = []string{"TargetMsgkey", "TemplateKeyValue", "SmsStrategy", "SmsSignName", "SmsTemplateCode", "SmsTemplateParam"}
	// Extended-param keys mPaaS keeps for itself. Which code mPaaS answers for
	// one is not documented; the emulator answers INVALID_PARAM.
	reservedExtended = []string{"notifyType", "action", "silent", "pushType", "templateCode", "channel", "taskId"}
	strategyTypes    = map[string]bool{"0": true, "1": true, "2": true}
	// The parameters that the document types as a map or JSON object: on the wire,
	// a JSON object in a string.
	objectParams = []string{"TemplateKeyValue", "ExtendedParams", "StrategyContent", "SmsTemplateParam",
		"TransparentMessagePayload", "ThirdChannelCategory", "NotifyLevel", "ActivityContentState"}
)

// checkParams checks a call's form parameters as the API document says and
// answers as mPaaS does: HTTP 200 with a failure code.
func (s *Server) checkParams(action string, form map[string]string, now time.Time) (*pushParams, *bizError) {
	types := deliveryTypes
	switch action {
	case actionMultiple:
		types = multipleDeliveryTypes
		for _, name := range notMultiple {
			if _, ok := form[name]; ok {
				return nil, invalidParam("%s is not a parameter of PushMultiple", name)
			}
		}
	case actionSimple, actionBroadcast:
		var berr *bizError
		if types, berr = checkOwnParams(action, form); berr != nil {
			return nil, berr
		}
	}
	if !types[form["DeliveryType"]] {
		return nil, invalidParam("DeliveryType %q", form["DeliveryType"])
	}
	exp, err := strconv.ParseInt(form["ExpiredSeconds"], 10, 64)
	if err != nil || exp <= 0 {
		return nil, invalidParam("ExpiredSeconds %q", form["ExpiredSeconds"])
	}
	if exp > maxExpiredSeconds {
		return nil, &bizError{code: codeExpiredTooLong, message: fmt.Sprintf("expiredSeconds %d exceeds %d", exp, maxExpiredSeconds)}
	}
	objects := map[string]map[string]any{}
	for _, name := range objectParams {
		v, ok := form[name]
		if !ok {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
			return nil, invalidParam("%s must be a JSON object", name)
		}
		objects[name] = obj
	}
	if berr := checkExtended(objects["ExtendedParams"], maxExtendedParams, codeTooManyExtended, "extended params"); berr != nil {
		return nil, berr
	}
	strategy := form["StrategyType"]
	if strategy != "" && !strategyTypes[strategy] {
		return nil, invalidParam("StrategyType %q", strategy)
	}
	if (strategy == "1" || strategy == "2") && objects["StrategyContent"] == nil {
		return nil, invalidParam("StrategyContent is required with StrategyType %s", strategy)
	}
	if strategy == "1" {
		fixed, _ := objects["StrategyContent"]["fixedTime"].(float64)
		if int64(fixed) <= now.UnixMilli() {
			return nil, invalidParam("fixedTime must be in the future")
		}
	}
	p := &pushParams{api: action, app: form["AppId"], workspace: form["WorkspaceId"], scheduled: strategy == "1" || strategy == "2"}
	if p.scheduled {
		p.strategy, _ = strconv.Atoi(strategy)
		sc := objects["StrategyContent"]
		fixed, _ := sc["fixedTime"].(float64)
		startAt, _ := sc["startTime"].(float64)
		end, _ := sc["endTime"].(float64)
		p.runAt, p.until = int64(max(fixed, startAt)), int64(max(fixed, end))
	}
	var berr *bizError
	switch action {
	case actionMultiple:
		p.targets, berr = s.targetMsgs(form)
	case actionSimple:
		p.targets, berr = simpleTargets(form, objects)
	case actionBroadcast:
		p.msgKey = form["Msgkey"]
		berr = s.checkTemplate(form["TemplateName"], objects["TemplateKeyValue"], "")
	default:
		p.targets, berr = s.templateTargets(form, objects)
	}
	if berr != nil {
		return nil, berr
	}
	return p, nil
}

func invalidParam(format string, args ...any) *bizError {
	return &bizError{code: codeInvalidParam, message: "INVALID_PARAM: " + fmt.Sprintf(format, args...)}
}

// checkExtended holds an extended-params object to at most max keys, none reserved.
func checkExtended(obj map[string]any, max int, code, what string) *bizError {
	if len(obj) > max {
		return &bizError{code: code, message: fmt.Sprintf("%s %d exceed %d", what, len(obj), max)}
	}
	for _, k := range reservedExtended {
		if _, ok := obj[k]; ok {
			return invalidParam("extended param key %q is reserved", k)
		}
	}
	return nil
}

// keyTargets checks the TargetMsgkey targets and the SMS parameters that
// PushTemplate and PushSimple share.
func keyTargets(form map[string]string, objects map[string]map[string]any) ([]target, *bizError) {
	targets, err := parseTargets(form["TargetMsgkey"])
	if err != nil {
		return nil, invalidParam("TargetMsgkey: %v", err)
	}
	if len(targets) > maxTargetsPerCall {
		return nil, &bizError{code: codeTooManyTargets, message: fmt.Sprintf("target count %d exceeds %d", len(targets), maxTargetsPerCall)}
	}
	// "If smsStrategy is not 0, smsSignName, smsTemplateCode and smsTemplateParam are required."
	if sms := form["SmsStrategy"]; sms != "" && sms != "0" {
		if form["SmsSignName"] == "" || form["SmsTemplateCode"] == "" || objects["SmsTemplateParam"] == nil {
			return nil, invalidParam("SmsSignName, SmsTemplateCode and SmsTemplateParam are required when SmsStrategy is %s", sms)
		}
	}
	return targets, nil
}

// templateTargets checks PushTemplate's targets, SMS parameters and template.
func (s *Server) templateTargets(form map[string]string, objects map[string]map[string]any) ([]target, *bizError) {
	targets, berr := keyTargets(form, objects)
	if berr != nil {
		return nil, berr
	}
	if berr := s.checkTemplate(form["TemplateName"], objects["TemplateKeyValue"], ""); berr != nil {
		return nil, berr
	}
	for i := range targets {
		targets[i].values, targets[i].extended = form["TemplateKeyValue"], form["ExtendedParams"]
	}
	return targets, nil
}

// targetMsgs reads and checks PushMultiple's repeated TargetMsg.N.* fields: 1-based
// and contiguous, at most 100, each with a target, a msgKey, values that fill the
// template and fewer than 10 extended params.
func (s *Server) targetMsgs(form map[string]string) ([]target, *bizError) {
	var out []target
	for n := 1; ; n++ {
		prefix := "TargetMsg." + strconv.Itoa(n) + "."
		t := target{target: form[prefix+"Target"], msgKey: form[prefix+"MsgKey"],
			values: form[prefix+"TemplateKeyValue"], extended: form[prefix+"ExtendedParams"]}
		if t == (target{}) {
			break
		}
		if t.target == "" || t.msgKey == "" {
			return nil, invalidParam("TargetMsg.%d needs Target and MsgKey", n)
		}
		values, err := optionalObject(t.values)
		if err != nil {
			return nil, invalidParam("TargetMsg.%d.TemplateKeyValue must be a JSON object", n)
		}
		extended, err := optionalObject(t.extended)
		if err != nil {
			return nil, invalidParam("TargetMsg.%d.ExtendedParams must be a JSON object", n)
		}
		if berr := checkExtended(extended, maxTargetExtendedParams, codeTargetExtended, fmt.Sprintf("TargetMsg.%d extended params", n)); berr != nil {
			return nil, berr
		}
		if berr := s.checkTemplate(form["TemplateName"], values, fmt.Sprintf("TargetMsg.%d ", n)); berr != nil {
			return nil, berr
		}
		out = append(out, t)
	}
	if len(out) > maxTargetsPerMultipleCall {
		return nil, &bizError{code: codeTooManyTargets, message: fmt.Sprintf("target count %d exceeds %d", len(out), maxTargetsPerMultipleCall)}
	}
	for k := range form {
		if rest, ok := strings.CutPrefix(k, "TargetMsg."); ok {
			if n, _, _ := strings.Cut(rest, "."); atoi(n) > len(out) {
				return nil, invalidParam("TargetMsg.%s without TargetMsg.%d", n, len(out)+1)
			}
		}
	}
	return out, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

func optionalObject(v string) (map[string]any, error) {
	if v == "" {
		return nil, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

// parseTargets reads TargetMsgkey: a JSON object of target → msgKey strings.
func parseTargets(v string) ([]target, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	if len(m) == 0 {
		return nil, errors.New("no target")
	}
	out := make([]target, 0, len(m))
	for t, k := range m {
		key, ok := k.(string)
		if t == "" || !ok || key == "" {
			return nil, fmt.Errorf("target %q needs a msgKey string", t)
		}
		out = append(out, target{target: t, msgKey: key})
	}
	return out, nil
}

// checkTemplate answers 3022 for an unknown template and 3023 for a variable
// without a value; the message names the variable (and which target, as where),
// never a value.
func (s *Server) checkTemplate(name string, values map[string]any, where string) *bizError {
	if s.cfg.AcceptAnyTemplate {
		return nil
	}
	text, ok := s.cfg.Templates[name]
	if !ok {
		return &bizError{code: codeTemplateNotExist, message: "TEMPLATE_NOT_EXIST"}
	}
	for _, m := range templateVar.FindAllStringSubmatch(text, -1) {
		if _, ok := values[m[1]]; !ok {
			return &bizError{code: codeTemplateKVNotEnuff, message: "TEMPLATEKV_NOT_ENOUGH: " + where + "no value for #" + m[1] + "#"}
		}
	}
	return nil
}
