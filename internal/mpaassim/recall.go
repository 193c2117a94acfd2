package mpaassim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The recall actions: take back what was pushed, see and cancel scheduled tasks.
const (
	actionRevokeMessage   = "RevokePushMessage"
	actionRevokeTask      = "RevokePushTask"
	actionCancelScheduler = "CancelPushScheduler"
	actionQueryScheduler  = "QueryPushSchedulerList"
)

var recallActions = map[string]bool{actionRevokeMessage: true, actionRevokeTask: true, actionCancelScheduler: true, actionQueryScheduler: true}

func init() {
	required[actionRevokeMessage] = []string{"AppId", "WorkspaceId", "MessageId", "TargetId"}
	required[actionRevokeTask] = []string{"AppId", "WorkspaceId", "TaskId"}
	required[actionCancelScheduler] = []string{"AppId", "WorkspaceId", "UniqueIds"}
	required[actionQueryScheduler] = []string{"AppId", "WorkspaceId", "StartTime", "EndTime"}
}

// Limits of recall. mPaaS documents the 7 days and the 100 pending tasks; the
// codes it answers for "too old" and "too many pending" are not documented, so
// these are the emulator's own.
const (
	RevokeWindow          = 7 * 24 * time.Hour
	MaxPendingScheduled   = 100
	codeNotRevocable      = "3051" // no such push in the last 7 days (the emulator's choice)
	codeTooManyScheduled  = "3052" // 100 scheduled tasks already pending for the app (the emulator's choice)
	codeSchedulerNotExist = "3053" // no pending scheduled task with that id (the emulator's choice)
	defaultSchedulerPage  = 500
	pushTaskIDBase        = 90000000
	executedStatusWaiting = "0"
)

// scheduledType is QueryPushSchedulerList's Type of each push action's tasks.
var scheduledType = map[string]int{actionSimple: 0, actionTemplate: 1, actionMultiple: 2, actionBroadcast: 3}

// pushTask is an immediate PushMultiple or PushBroadcast call's task.
type pushTask struct {
	app, workspace string
	at             time.Time
	revoked        bool
}

// scheduledTask is a scheduled or recurring call's task.
type scheduledTask struct {
	id             string
	app, workspace string
	typ, strategy  int
	created        time.Time
	runAt, until   int64 // Unix ms
	canceled       bool
}

func (t *scheduledTask) pending(now time.Time) bool { return !t.canceled && t.until > now.UnixMilli() }

// accept records an accepted push call: its pairs, its push task or scheduled
// task; it refuses a scheduled call past the app's pending tasks. It returns
// the PushResult's Data: a scheduled task's id (32 hex), a PushMultiple push
// task's id (numeric), or nothing for an immediate PushTemplate (undocumented);
// with Config.HexTaskIDs an immediate push of either action answers 32 hex.
func (s *Server) accept(p *pushParams, now time.Time) (string, *bizError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, task := "", ""
	switch {
	case p.scheduled:
		pending := 0
		for _, t := range s.scheduled {
			if t.app == p.app && t.pending(now) {
				pending++
			}
		}
		if pending >= MaxPendingScheduled {
			return "", &bizError{code: codeTooManyScheduled, message: fmt.Sprintf("SCHEDULED_TASK_LIMIT: %d tasks pending", pending)}
		}
		data = newTaskID()
		typ := scheduledType[p.api]
		s.scheduled[data] = &scheduledTask{id: data, app: p.app, workspace: p.workspace, typ: typ, strategy: p.strategy,
			created: now, runAt: p.runAt, until: p.until}
	case p.api == actionMultiple || p.api == actionBroadcast:
		s.pushTasks++
		data = strconv.FormatInt(pushTaskIDBase+s.pushTasks, 10)
		if s.cfg.HexTaskIDs {
			data = newTaskID()
		}
		task = data
		s.tasks[data] = &pushTask{app: p.app, workspace: p.workspace, at: now}
	case s.cfg.HexTaskIDs:
		data = newTaskID() // an immediate PushTemplate's; revoked per pair, never as a task
	}
	if p.api == actionBroadcast {
		s.broadcasts[pairKey{p.app, p.workspace, "", p.msgKey}]++
	}
	s.apiStatsLocked(p.api).Deliveries += len(p.targets)
	s.countLocked(p.api, p.app, p.workspace, data, len(p.targets), now)
	for _, t := range p.targets {
		k := pairKey{p.app, p.workspace, t.target, t.msgKey}
		d := s.delivered[k]
		if d == nil {
			d = &delivery{}
			s.delivered[k] = d
		}
		d.count++
		d.api, d.values, d.extended, d.at, d.task = p.api, t.values, t.extended, now, task
	}
	return data, nil
}

// serveRecall answers the four recall actions.
func (s *Server) serveRecall(w http.ResponseWriter, c Call, now time.Time) {
	form := c.Params
	var berr *bizError
	body := answer(nil)
	switch c.Action {
	case actionRevokeMessage:
		berr = s.revokeMessage(form, now)
	case actionRevokeTask:
		berr = s.revokeTask(form, now)
	case actionCancelScheduler:
		var content string
		content, berr = s.cancelScheduled(form, now)
		if berr == nil {
			body = answer{"RequestId": c.RequestID, "ResultCode": "OK", "ResultMessage": "", "ResultContent": content}
		}
	case actionQueryScheduler:
		var list []map[string]any
		var total int
		list, total, berr = s.queryScheduled(form, now)
		if berr == nil {
			body = answer{"RequestId": c.RequestID, "ResultCode": "OK", "ResultMessage": "",
				"ResultContent": map[string]any{"Data": map[string]any{"List": list, "TotalCount": total}}}
		}
	}
	switch {
	case berr != nil:
		c.Code, body = berr.code, bizBody(c.RequestID, berr)
	case body == nil:
		c.Code, body = "OK", okBody(c.RequestID, "")
	default:
		c.Code = "OK"
	}
	s.finish(w, c, body)
}

func (s *Server) revokeMessage(form map[string]string, now time.Time) *bizError {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.delivered[pairKey{form["AppId"], form["WorkspaceId"], form["TargetId"], form["MessageId"]}]
	if d == nil || d.api != actionTemplate && d.api != actionSimple || now.Sub(d.at) > RevokeWindow {
		return &bizError{code: codeNotRevocable, message: "MESSAGE_NOT_REVOCABLE: no PushTemplate or PushSimple push of this message to this target in the last 7 days"}
	}
	// Revoking a revoked message again is answered OK (what mPaaS answers is not
	// documented); the pair counts as revoked once, the calls each.
	d.revokeCalls++
	if d.revoked == 0 {
		d.revoked = 1
		s.stats.revokedPairs++
	}
	return nil
}

func (s *Server) revokeTask(form map[string]string, now time.Time) *bizError {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[form["TaskId"]]
	if t == nil || t.app != form["AppId"] || t.workspace != form["WorkspaceId"] || now.Sub(t.at) > RevokeWindow {
		return &bizError{code: codeNotRevocable, message: "TASK_NOT_REVOCABLE: no push task with this id in the last 7 days"}
	}
	if !t.revoked {
		t.revoked = true
		s.stats.revokedTasks++
	}
	return nil
}

// cancelScheduled cancels the pending tasks of UniqueIds (comma-separated: an
// assumption, the API does not say) and answers ResultContent as a string.
func (s *Server) cancelScheduled(form map[string]string, now time.Time) (string, *bizError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := strings.Split(form["UniqueIds"], ",")
	for _, id := range ids {
		t := s.scheduled[strings.TrimSpace(id)]
		if t == nil || t.app != form["AppId"] || !t.pending(now) {
			return "", &bizError{code: codeSchedulerNotExist, message: "SCHEDULER_NOT_EXIST: no pending scheduled task " + strings.TrimSpace(id)}
		}
	}
	for _, id := range ids {
		s.scheduled[strings.TrimSpace(id)].canceled = true
		s.stats.canceledTasks++
	}
	return "true", nil
}

// queryScheduled lists the app's pending tasks whose run time falls in
// [StartTime, EndTime] (ms), a page at a time.
func (s *Server) queryScheduled(form map[string]string, now time.Time) ([]map[string]any, int, *bizError) {
	from, err1 := strconv.ParseInt(form["StartTime"], 10, 64)
	to, err2 := strconv.ParseInt(form["EndTime"], 10, 64)
	if err1 != nil || err2 != nil || to < from {
		return nil, 0, invalidParam("StartTime and EndTime are Unix milliseconds, EndTime not before StartTime")
	}
	page, size := atoiOr(form["PageNumber"], 1), atoiOr(form["PageSize"], defaultSchedulerPage)
	if page < 1 || size < 1 {
		return nil, 0, invalidParam("PageNumber and PageSize are positive")
	}
	s.mu.Lock()
	var match []*scheduledTask
	for _, t := range s.scheduled {
		if t.app == form["AppId"] && t.workspace == form["WorkspaceId"] && t.pending(now) && t.runAt <= to && t.until >= from &&
			(form["UniqueId"] == "" || form["UniqueId"] == t.id) && (form["Type"] == "" || form["Type"] == strconv.Itoa(t.typ)) {
			match = append(match, t)
		}
	}
	s.mu.Unlock()
	sort.Slice(match, func(i, j int) bool {
		return match[i].created.Before(match[j].created) || match[i].created.Equal(match[j].created) && match[i].id < match[j].id
	})
	list := []map[string]any{}
	for i := (page - 1) * size; i < len(match) && i < page*size; i++ {
		t := match[i]
		list = append(list, map[string]any{"UniqueId": t.id, "Type": t.typ, "StrategyType": t.strategy, "PushTime": t.runAt,
			"GmtCreate": t.created.UnixMilli(), "ExecutedStatus": executedStatusWaiting, "ParentId": "", "PushTitle": "", "PushContent": ""})
	}
	return list, len(match), nil
}

func atoiOr(s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// Recall counts what was taken back.
type Recall struct {
	RevokedPairs  int64 `json:"revokedPairs"`  // RevokePushMessage calls that revoked a pair
	RevokedTasks  int64 `json:"revokedTasks"`  // push tasks revoked (each once)
	CanceledTasks int64 `json:"canceledTasks"` // scheduled tasks canceled
	Pending       int   `json:"pendingScheduled"`
}

// Revoked reports whether a pair was revoked, and by how many successful calls.
func (s *Server) Revoked(app, workspace, target, msgKey string) (revoked bool, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.delivered[pairKey{app, workspace, target, msgKey}]; d != nil {
		return d.revoked > 0, d.revokeCalls
	}
	return false, 0
}

func (s *Server) recallLocked(now time.Time) Recall {
	r := Recall{RevokedPairs: s.stats.revokedPairs, RevokedTasks: s.stats.revokedTasks, CanceledTasks: s.stats.canceledTasks}
	for _, t := range s.scheduled {
		if t.pending(now) {
			r.Pending++
		}
	}
	return r
}
