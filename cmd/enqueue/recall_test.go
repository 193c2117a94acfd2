package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
)

func publishJob(t *testing.T, s *stack, subject string, j *job.Job) {
	t.Helper()
	body, _ := j.Encode()
	if _, stderr, err := s.enqueue(t, string(body), "--wait", "--subject", subject, "-"); err != nil {
		t.Fatalf("publishing %s: %v %s", j.JobID, err, stderr)
	}
}

// enqueue revoke --campaign takes back what the stored results say was sent:
// each PushTemplate pair and each PushMultiple task, once.
func TestRevokeACampaign(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	tj := &job.Job{JobID: "rc-t", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
	for i := range 30 {
		tj.TargetMsgkey = append(tj.TargetMsgkey, job.Target{Target: fmt.Sprintf("t%d", i), MsgKey: "k"})
	}
	mj := &job.Job{JobID: "rc-m", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
	for i := range 250 {
		mj.TargetMsgs = append(mj.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("m%d", i), MsgKey: "k"})
	}
	publishJob(t, s, "push.jobs.bulk.rc", tj)
	publishJob(t, s, "push.jobs.bulk.rc", mj)
	out, stderr, err := s.enqueue(t, "", "revoke", "--campaign", "rc")
	if err != nil || !strings.Contains(out, "2 admin jobs published (33 calls to make)") || !strings.Contains(out, "done: 33 calls succeeded") {
		t.Fatalf("revoke: %v\n%s\n%s", err, out, stderr)
	}
	st := s.sim.Stats()
	if st.Recall.RevokedPairs != 30 || st.Recall.RevokedTasks != 3 || st.ByAPI["RevokePushMessage"].Calls != 30 || st.ByAPI["RevokePushTask"].Calls != 3 {
		t.Fatalf("emulator: %+v %+v", st.Recall, st.ByAPI)
	}
	// Again: the same admin jobs, which the job stream drops; nothing is revoked twice.
	if out, _, err := s.enqueue(t, "", "revoke", "--campaign", "rc"); err != nil || !strings.Contains(out, "done: 33 calls succeeded") {
		t.Fatalf("revoke again: %v %s", err, out)
	}
	if st := s.sim.Stats(); st.Recall.RevokedPairs != 30 || st.ByAPI["RevokePushMessage"].Calls != 30 {
		t.Fatalf("a second revoke must call nothing: %+v", st.Recall)
	}
}

// scheduled list shows a campaign's pending tasks, scheduled cancel cancels them,
// and the list is then empty.
func TestScheduledListAndCancel(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	at := time.Now().Add(2 * time.Hour).UnixMilli()
	for i := range 3 {
		j := &job.Job{JobID: fmt.Sprintf("sc-%d", i), TaskName: "t", AppID: "sa", WorkspaceID: "sw", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: "n", StrategyType: job.Int64(1), StrategyContent: job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))}
		for k := range 15 {
			j.TargetMsgkey = append(j.TargetMsgkey, job.Target{Target: fmt.Sprintf("s%d-%d", i, k), MsgKey: "k"})
		}
		publishJob(t, s, "push.jobs.bulk.later", j) // 2 calls each: 6 scheduled tasks
	}
	list := func() []scheduledList {
		out, stderr, err := s.enqueue(t, "", "scheduled", "list", "--json")
		var l []scheduledList
		if err != nil || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("scheduled list: %v %s %s", err, out, stderr)
		}
		return l
	}
	if l := list(); len(l) != 1 || len(l[0].Tasks) != 6 || l[0].AppID != "sa" || l[0].Tasks[0].PushTime.UnixMilli() != at {
		t.Fatalf("scheduled list: %+v", l)
	}
	out, stderr, err := s.enqueue(t, "", "scheduled", "cancel", "--campaign", "later")
	if err != nil || !strings.Contains(out, "done: 6 calls succeeded") {
		t.Fatalf("scheduled cancel: %v\n%s\n%s", err, out, stderr)
	}
	if l := list(); len(l) != 1 || len(l[0].Tasks) != 0 {
		t.Fatalf("after the cancel nothing is pending: %+v", l)
	}
	if st := s.sim.Stats(); st.Recall.CanceledTasks != 6 {
		t.Fatalf("emulator: %+v", st.Recall)
	}
}

// mPaaS keeps at most 100 scheduled tasks pending per app: the calls past them
// fail with the emulator's code, and the jobs say so in their failed chunks.
func TestTheHundredAndFirstScheduledTaskFails(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	at := time.Now().Add(time.Hour).UnixMilli()
	var lines []string
	for i := range 11 { // 10 calls each: 110 tasks asked for
		j := &job.Job{JobID: fmt.Sprintf("cap-%d", i), TaskName: "t", AppID: "cap", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: "n", StrategyType: job.Int64(1), StrategyContent: job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))}
		for k := range 100 {
			j.TargetMsgkey = append(j.TargetMsgkey, job.Target{Target: fmt.Sprintf("c%d-%d", i, k), MsgKey: "k"})
		}
		b, _ := j.Encode()
		lines = append(lines, string(b))
	}
	out, _, _ := s.enqueue(t, strings.Join(lines, "\n"), "--wait", "--subject", "push.jobs.bulk.cap", "-")
	if st := s.sim.Stats(); st.Recall.Pending != 100 || !strings.Contains(out, "3052") {
		t.Fatalf("want 100 pending and the rest failed with code 3052: %+v\n%s", st.Recall, out)
	}
}
