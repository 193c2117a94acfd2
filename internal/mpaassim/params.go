package mpaassim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	codeTooManyTargets     = "3029" // more than 10 targets
	codeTooManyExtended    = "3035" // more than 20 extended params
)

type pushParams struct {
	app, workspace string
	targets        []target
	scheduled      bool
}

type target struct{ target, msgKey string }

// required are the API's mandatory parameters: the gateway refuses a call that
// lacks one with Missing<Name>.
var required = []string{"TaskName", "AppId", "WorkspaceId", "DeliveryType", "TargetMsgkey", "ExpiredSeconds", "TemplateName"}

// missingParam is the gateway's check of the mandatory parameters.
func missingParam(form map[string]string) *apiError {
	for _, name := range required {
		if form[name] == "" {
			return &apiError{400, "Missing" + name, name + " is mandatory for this action."}
		}
	}
	return nil
}

// The API's limits, from the PushTemplate document and the API metadata. They
// are written here on their own, not taken from the worker's job package, so
// that a worker that gets mPaaS's rules wrong is caught by the emulator.
const (
	maxTargetsPerCall  = 10
	maxExtendedParams  = 20
	maxExpiredSeconds  = 259200 // 3 days; mPaaS answers 3026 above it
	codeExpiredTooLong = "3026"
)

var (
	deliveryTypes = map[string]bool{"1": true, "2": true, "3": true, "5": true, "6": true, "7": true}
	strategyTypes = map[string]bool{"0": true, "1": true, "2": true}
	// The parameters that the document types as a map or JSON object: on the wire,
	// a JSON object in a string.
	objectParams = []string{"TemplateKeyValue", "ExtendedParams", "StrategyContent", "SmsTemplateParam",
		"TransparentMessagePayload", "ThirdChannelCategory", "NotifyLevel", "ActivityContentState"}
)

// checkParams checks a call's form parameters as the API document says and
// answers as mPaaS does: HTTP 200 with a failure code.
func (s *Server) checkParams(form map[string]string, now time.Time) (*pushParams, *bizError) {
	invalid := func(format string, args ...any) *bizError {
		return &bizError{code: codeInvalidParam, message: "INVALID_PARAM: " + fmt.Sprintf(format, args...)}
	}
	if !deliveryTypes[form["DeliveryType"]] {
		return nil, invalid("DeliveryType %q", form["DeliveryType"])
	}
	exp, err := strconv.ParseInt(form["ExpiredSeconds"], 10, 64)
	if err != nil || exp <= 0 {
		return nil, invalid("ExpiredSeconds %q", form["ExpiredSeconds"])
	}
	if exp > maxExpiredSeconds {
		return nil, &bizError{code: codeExpiredTooLong, message: fmt.Sprintf("expiredSeconds %d exceeds %d", exp, maxExpiredSeconds)}
	}
	targets, err := parseTargets(form["TargetMsgkey"])
	if err != nil {
		return nil, invalid("TargetMsgkey: %v", err)
	}
	if len(targets) > maxTargetsPerCall {
		return nil, &bizError{code: codeTooManyTargets, message: fmt.Sprintf("target count %d exceeds %d", len(targets), maxTargetsPerCall)}
	}
	objects := map[string]map[string]any{}
	for _, name := range objectParams {
		v, ok := form[name]
		if !ok {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
			return nil, invalid("%s must be a JSON object", name)
		}
		objects[name] = obj
	}
	if n := len(objects["ExtendedParams"]); n > maxExtendedParams {
		return nil, &bizError{code: codeTooManyExtended, message: fmt.Sprintf("extended params %d exceed %d", n, maxExtendedParams)}
	}
	strategy := form["StrategyType"]
	if strategy != "" && !strategyTypes[strategy] {
		return nil, invalid("StrategyType %q", strategy)
	}
	if (strategy == "1" || strategy == "2") && objects["StrategyContent"] == nil {
		return nil, invalid("StrategyContent is required with StrategyType %s", strategy)
	}
	if strategy == "1" {
		fixed, _ := objects["StrategyContent"]["fixedTime"].(float64)
		if int64(fixed) <= now.UnixMilli() {
			return nil, invalid("fixedTime must be in the future")
		}
	}
	// "If smsStrategy is not 0, smsSignName, smsTemplateCode and smsTemplateParam are required."
	if sms := form["SmsStrategy"]; sms != "" && sms != "0" {
		if form["SmsSignName"] == "" || form["SmsTemplateCode"] == "" || objects["SmsTemplateParam"] == nil {
			return nil, invalid("SmsSignName, SmsTemplateCode and SmsTemplateParam are required when SmsStrategy is %s", sms)
		}
	}
	if berr := s.checkTemplate(form["TemplateName"], objects["TemplateKeyValue"]); berr != nil {
		return nil, berr
	}
	return &pushParams{app: form["AppId"], workspace: form["WorkspaceId"], targets: targets,
		scheduled: strategy == "1" || strategy == "2"}, nil
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

func (s *Server) checkTemplate(name string, values map[string]any) *bizError {
	if s.cfg.AcceptAnyTemplate {
		return nil
	}
	text, ok := s.cfg.Templates[name]
	if !ok {
		return &bizError{code: codeTemplateNotExist, message: "TEMPLATE_NOT_EXIST"}
	}
	for _, m := range templateVar.FindAllStringSubmatch(text, -1) {
		if _, ok := values[m[1]]; !ok {
			return &bizError{code: codeTemplateKVNotEnuff, message: "TEMPLATEKV_NOT_ENOUGH: no value for #" + m[1] + "#"}
		}
	}
	return nil
}
