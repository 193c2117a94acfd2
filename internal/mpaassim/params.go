package mpaassim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/job"
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
	targets        job.Targets
	scheduled      bool
}

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

// checkParams checks a call's form parameters as the API document says and
// answers as mPaaS does: HTTP 200 with a failure code.
func (s *Server) checkParams(form map[string]string, now time.Time) (*pushParams, *bizError) {
	j, err := formToJob(form)
	if err != nil {
		return nil, &bizError{code: codeInvalidParam, message: "INVALID_PARAM: " + err.Error()}
	}
	if len(j.TargetMsgkey) > job.MaxTargetsPerCall {
		return nil, &bizError{code: codeTooManyTargets, message: fmt.Sprintf("target count %d exceeds %d", len(j.TargetMsgkey), job.MaxTargetsPerCall)}
	}
	if err := j.Validate(job.Rules{Now: now}); err != nil {
		var fe *job.FieldError
		if errors.As(err, &fe) && fe.Field == "extendedParams" && strings.Contains(fe.Rule, "more than") {
			return nil, &bizError{code: codeTooManyExtended, message: "extended params exceed 20"}
		}
		return nil, &bizError{code: codeInvalidParam, message: "INVALID_PARAM: " + err.Error()}
	}
	if berr := s.checkTemplate(j); berr != nil {
		return nil, berr
	}
	return &pushParams{app: j.AppID, workspace: j.WorkspaceID, targets: j.TargetMsgkey, scheduled: j.Scheduled()}, nil
}

func (s *Server) checkTemplate(j *job.Job) *bizError {
	if s.cfg.AcceptAnyTemplate {
		return nil
	}
	text, ok := s.cfg.Templates[j.TemplateName]
	if !ok {
		return &bizError{code: codeTemplateNotExist, message: "TEMPLATE_NOT_EXIST"}
	}
	values := map[string]bool{}
	if len(j.TemplateKeyValue) > 0 {
		var kv map[string]any
		if err := json.Unmarshal(j.TemplateKeyValue, &kv); err != nil {
			return &bizError{code: codeInvalidParam, message: "INVALID_PARAM: TemplateKeyValue"}
		}
		for k := range kv {
			values[k] = true
		}
	}
	for _, m := range templateVar.FindAllStringSubmatch(text, -1) {
		if !values[m[1]] {
			return &bizError{code: codeTemplateKVNotEnuff, message: "TEMPLATEKV_NOT_ENOUGH: no value for #" + m[1] + "#"}
		}
	}
	return nil
}

// formToJob reads the wire parameters back into a job, by their PascalCase names.
func formToJob(form map[string]string) (*job.Job, error) {
	j := &job.Job{
		TaskName: form["TaskName"], AppID: form["AppId"], WorkspaceID: form["WorkspaceId"], TemplateName: form["TemplateName"],
		Classification: form["Classification"], NotifyType: form["NotifyType"],
		TransparentMessageUrgency: form["TransparentMessageUrgency"], SmsSignName: form["SmsSignName"],
		SmsTemplateCode: form["SmsTemplateCode"], MiChannelID: form["MiChannelId"], ActivityEvent: form["ActivityEvent"],
	}
	var err error
	ints := []struct {
		name string
		dst  *int64
	}{{"DeliveryType", &j.DeliveryType}, {"ExpiredSeconds", &j.ExpiredSeconds}}
	for _, f := range ints {
		if *f.dst, err = strconv.ParseInt(form[f.name], 10, 64); err != nil {
			return nil, fmt.Errorf("%s must be an integer", f.name)
		}
	}
	optional := []struct {
		name string
		dst  **int64
	}{{"StrategyType", &j.StrategyType}, {"SmsStrategy", &j.SmsStrategy}, {"DismissalDate", &j.DismissalDate}}
	for _, f := range optional {
		if v, ok := form[f.name]; ok {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("%s must be an integer", f.name)
			}
			*f.dst = &n
		}
	}
	if err := j.TargetMsgkey.UnmarshalJSON([]byte(form["TargetMsgkey"])); err != nil {
		return nil, fmt.Errorf("TargetMsgkey: %w", err)
	}
	objects := []struct {
		name string
		dst  *job.Object
	}{
		{"TemplateKeyValue", &j.TemplateKeyValue}, {"ExtendedParams", &j.ExtendedParams},
		{"StrategyContent", &j.StrategyContent}, {"SmsTemplateParam", &j.SmsTemplateParam},
		{"TransparentMessagePayload", &j.TransparentMessagePayload}, {"ThirdChannelCategory", &j.ThirdChannelCategory},
		{"NotifyLevel", &j.NotifyLevel}, {"ActivityContentState", &j.ActivityContentState},
	}
	for _, f := range objects {
		if v, ok := form[f.name]; ok {
			if err := f.dst.UnmarshalJSON([]byte(v)); err != nil {
				return nil, fmt.Errorf("%s must be a JSON object", f.name)
			}
		}
	}
	return j, nil
}
