package mpaassim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// The analytics actions: what was counted after pushes.
const (
	actionTaskDetail = "QueryPushAnalysisTaskDetail"
	actionCoreIndex  = "QueryPushAnalysisCoreIndex"
)

// analysisWindow is the longest window QueryPushAnalysisCoreIndex takes.
const analysisWindow = 90 * 24 * time.Hour

// Defaults of Analysis.
const (
	DefaultArrivalShare = 0.9
	DefaultOpenShare    = 0.25
)

// pushTypes are the CoreIndex types of the push actions.
var pushTypes = map[string]string{actionTemplate: "TEMPLATE", actionMultiple: "MULTIPLE", actionSimple: "SIMPLE", actionBroadcast: "BROADCAST"}

// DefaultBroadcastDevices is how many devices a broadcast reaches when
// Analysis.Devices is 0.
const DefaultBroadcastDevices = 1000

func init() {
	recallActions[actionTaskDetail], recallActions[actionCoreIndex] = true, true // answered apart from pushes, as recalls are
	required[actionTaskDetail] = []string{"AppId", "WorkspaceId", "TaskId"}
	required[actionCoreIndex] = []string{"AppId", "WorkspaceId", "StartTime", "EndTime"}
}

// Analysis is how the emulator counts what became of pushes. The figures
// follow what it accepted: pushed is the pairs of the task (or of the window
// and type), arrived a share of them, opened a share of the arrived, rounded
// down; a push counts only Delay after it was made (mPaaS counts late), and a
// task or window with nothing counted yet answers no figures.
type Analysis struct {
	Delay        time.Duration `json:"delay"`
	ArrivalShare float64       `json:"arrivalShare"` // 0: DefaultArrivalShare
	OpenShare    float64       `json:"openShare"`    // 0: DefaultOpenShare
	// Devices is how many devices a broadcast reaches, the pushed count of its
	// task (a broadcast names no target); 0: DefaultBroadcastDevices.
	Devices int `json:"devices"`
	// Form is how the answer is written: "" ResultContent as an object with
	// the v1 SDK's names (PushTotalNum, …); "string" ResultContent as a JSON
	// string, as mPaaS's pages describe it; "lower" lower-camel keys (data,
	// pushNum, arrivalNum: the other naming) that the v1 SDK reads as zeros.
	Form string `json:"form"`
}

// countedCall is one accepted push call as the analytics count it.
type countedCall struct {
	app, workspace, typ, task string
	at                        time.Time
	pairs                     int
}

// SetAnalysis replaces how the analytics count (their delay, shares, form).
func (s *Server) SetAnalysis(a Analysis) {
	s.mu.Lock()
	s.cfg.Analysis = a
	s.mu.Unlock()
}

// countLocked notes an accepted push call for the analytics.
func (s *Server) countLocked(api, app, workspace, task string, pairs int, now time.Time) {
	if api == actionBroadcast {
		pairs = s.cfg.Analysis.Devices
		if pairs <= 0 {
			pairs = DefaultBroadcastDevices
		}
	}
	s.counted = append(s.counted, countedCall{app: app, workspace: workspace, typ: pushTypes[api], task: task, at: now, pairs: pairs})
}

// serveAnalysis answers the two analytics actions.
func (s *Server) serveAnalysis(w http.ResponseWriter, c Call, now time.Time) {
	form := c.Params
	s.mu.Lock()
	a := s.cfg.Analysis
	ready := func(k countedCall) bool {
		return k.app == form["AppId"] && k.workspace == form["WorkspaceId"] && !k.at.Add(a.Delay).After(now)
	}
	pushed, berr := 0, (*bizError)(nil)
	switch c.Action {
	case actionTaskDetail:
		for _, k := range s.counted {
			if k.task != "" && k.task == form["TaskId"] && ready(k) {
				pushed += k.pairs
			}
		}
	case actionCoreIndex:
		from, err1 := strconv.ParseInt(form["StartTime"], 10, 64)
		to, err2 := strconv.ParseInt(form["EndTime"], 10, 64)
		typ := form["Type"]
		switch {
		case err1 != nil || err2 != nil || to < from:
			berr = invalidParam("StartTime and EndTime are Unix milliseconds, EndTime not before StartTime")
		case time.Duration(to-from)*time.Millisecond > analysisWindow:
			berr = invalidParam("the window of StartTime to EndTime is at most 90 days")
		case typ != "" && typ != "SIMPLE" && typ != "TEMPLATE" && typ != "MULTIPLE" && typ != "BROADCAST":
			berr = invalidParam("Type is SIMPLE, TEMPLATE, MULTIPLE or BROADCAST")
		}
		for _, k := range s.counted {
			if berr == nil && ready(k) && (typ == "" || k.typ == typ) && k.at.UnixMilli() >= from && k.at.UnixMilli() <= to {
				pushed += k.pairs
			}
		}
	}
	s.mu.Unlock()
	if berr != nil {
		c.Code = berr.code
		s.finish(w, c, bizBody(c.RequestID, berr))
		return
	}
	c.Code = "OK"
	s.finish(w, c, analysisBody(c.RequestID, form["TaskId"], pushed, a))
}

// analysisBody is an analytics answer of pushed pairs in a's form: no Data
// when nothing is counted yet.
func analysisBody(requestID, task string, pushed int, a Analysis) answer {
	arrivalShare, openShare := a.ArrivalShare, a.OpenShare
	if arrivalShare <= 0 {
		arrivalShare = DefaultArrivalShare
	}
	if openShare <= 0 {
		openShare = DefaultOpenShare
	}
	arrived := int(float64(pushed) * arrivalShare)
	opened := int(float64(arrived) * openShare)
	content := map[string]any{"Success": "true"}
	if pushed > 0 {
		data := map[string]any{"PushTotalNum": pushed, "PushSuccessNum": pushed, "PushArrivalNum": arrived, "OpenNum": opened,
			"IgnoreNum": arrived - opened, "ArrivalRate": float64(arrived) / float64(pushed), "OpenRate": float64(opened) / float64(pushed)}
		if task != "" {
			data["TaskId"] = task // as the push answered it: 32 hex with Config.HexTaskIDs, which the v1 SDK's int64 refuses
		}
		if a.Form == "lower" {
			data = map[string]any{"pushNum": pushed, "pushSuccessNum": pushed, "arrivalNum": arrived, "openNum": opened,
				"ignoreNum": arrived - opened, "taskId": task}
		}
		content["Data"] = data
	}
	body := answer{"RequestId": requestID, "ResultCode": "OK", "ResultMessage": ""}
	switch a.Form {
	case "string":
		b, _ := json.Marshal(content)
		body["ResultContent"] = string(b)
	case "lower":
		if d, ok := content["Data"]; ok {
			content = map[string]any{"success": "true", "data": d}
		}
		body["ResultContent"] = content
	default:
		body["ResultContent"] = content
	}
	return body
}

// isAnalysis: the action is one of the analytics'.
func isAnalysis(action string) bool { return action == actionTaskDetail || action == actionCoreIndex }
