package push

import (
	"strings"
)

// Class is what an mPaaS answer means for the call that got it.
type Class int

const (
	// Success: mPaaS accepted the push (ResultCode OK and PushResult.Success).
	Success Class = iota
	// Transient: retry later (network, 5xx, throttling, 8011, 9000, a timeout).
	Transient
	// JobFault: the request itself is wrong; retrying cannot help.
	JobFault
	// ConfigFault: the credentials, the clock or the endpoint are wrong. It is the
	// worker's problem, not the job's: pause and wait for an operator.
	ConfigFault
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Transient:
		return "transient"
	case JobFault:
		return "job_fault"
	case ConfigFault:
		return "config_fault"
	}
	return "unknown"
}

// mPaaS business codes that mean "try again later" (docs/mpaas.md).
const (
	codeFlowControl = "8011" // FLOW_CONTROL_ERROR: also slows the limiter
	codeSystemError = "9000" // SYSTEM_ERROR
)

// classifyOK classifies an HTTP 2xx answer (docs/mpaas.md's classification table, rows 1–3).
func classifyOK(resultCode string, pushSuccess bool) (class Class, throttled bool) {
	switch {
	case resultCode == "OK" && pushSuccess:
		return Success, false
	case resultCode == codeFlowControl || resultCode == "FLOW_CONTROL_ERROR":
		return Transient, true
	case resultCode == codeSystemError || resultCode == "SYSTEM_ERROR":
		return Transient, false
	default:
		return JobFault, false
	}
}

// classifyGateway classifies a non-2xx answer by its error Code, then its status
// (docs/mpaas.md's classification table, rows 4, 5, 7 and 8: the code decides, since mPaaS's
// documented HTTP statuses disagree between pages).
func classifyGateway(status int, code string) (class Class, throttled bool) {
	switch {
	case code == "Throttling" || strings.HasPrefix(code, "Throttling."):
		return Transient, true
	case code == "ServiceUnavailable" || code == "InternalError" || code == "SignatureNonceUsed":
		return Transient, false
	case isConfigCode(code):
		return ConfigFault, false
	case status >= 500:
		return Transient, false
	case code == "InvalidParameter" || strings.HasPrefix(code, "Missing") || strings.HasPrefix(code, "Invalid"):
		return JobFault, false
	case status >= 400:
		return JobFault, false
	default:
		// 1xx/3xx from a gateway: nothing says the request was refused for good.
		return Transient, false
	}
}

func isConfigCode(code string) bool {
	switch {
	case code == "SignatureDoesNotMatch", code == "IncompleteSignature", code == "InvalidApi.NotFound":
		return true
	case strings.HasPrefix(code, "InvalidAccessKeyId"),
		strings.HasPrefix(code, "Forbidden"),
		strings.HasPrefix(code, "InvalidTimeStamp"):
		return true
	}
	return false
}
