package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/teststack"
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
	if err != nil || !strings.Contains(out, "2 admin jobs, 33 calls: 30 RevokePushMessage, 3 RevokePushTask") ||
		!strings.Contains(out, "2 admin jobs published") || !strings.Contains(out, "done: 33 calls succeeded") {
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

// recallCampaign publishes, to campaign c, an immediate PushTemplate job of 30
// targets (3 calls), an immediate PushMultiple job of 250 (3 tasks), and a
// scheduled one of each (2 scheduled tasks each).
func recallCampaign(t *testing.T, s *stack, c string) {
	t.Helper()
	at := time.Now().Add(2 * time.Hour).UnixMilli()
	for _, scheduled := range []bool{false, true} {
		tj := &job.Job{JobID: fmt.Sprintf("%s-t-%v", c, scheduled), TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
		mj := &job.Job{JobID: fmt.Sprintf("%s-m-%v", c, scheduled), TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
		nt, nm := 30, 250
		if scheduled {
			nt, nm = 15, 150
			for _, j := range []*job.Job{tj, mj} {
				j.StrategyType, j.StrategyContent = job.Int64(1), job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at))
			}
		}
		for i := range nt {
			tj.TargetMsgkey = append(tj.TargetMsgkey, job.Target{Target: fmt.Sprintf("t%v%d", scheduled, i), MsgKey: "k"})
		}
		for i := range nm {
			mj.TargetMsgs = append(mj.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("m%v%d", scheduled, i), MsgKey: "k"})
		}
		publishJob(t, s, "push.jobs.bulk."+c, tj)
		publishJob(t, s, "push.jobs.bulk."+c, mj)
	}
}

// Recall decides from the chunks' strategyType, never from an id's form: against
// an emulator whose immediate pushes answer numbers (and nothing for
// PushTemplate) and one whose answer 32 hex like a scheduled task's id, the same
// calls are made: a dry run none, revoke the 30 pairs and 3 tasks sent now,
// scheduled cancel the 4 scheduled tasks. The campaign's totals count its 4 push
// jobs only, and the recall apart.
func TestRecallDecidesFromTheStrategyTypeNotTheIDsForm(t *testing.T) {
	t.Parallel()
	for _, hex := range []bool{false, true} {
		t.Run(fmt.Sprintf("hex-ids=%v", hex), func(t *testing.T) {
			t.Parallel()
			s := newStackOn(t, teststack.Setup{HexIDs: hex})
			recallCampaign(t, s, "mix")
			calls := func() (msg, task, cancel int64) {
				st := s.sim.Stats()
				return st.ByAPI["RevokePushMessage"].Calls, st.ByAPI["RevokePushTask"].Calls, st.ByAPI["CancelPushScheduler"].Calls
			}

			out, stderr, err := s.enqueue(t, "", "revoke", "--campaign", "mix", "--dry-run")
			if err != nil || !strings.Contains(out, "4 stored push results read; 2 admin jobs, 33 calls: 30 RevokePushMessage, 3 RevokePushTask") ||
				!strings.Contains(out, "app a, workspace w, campaign mix: 2 admin jobs, 30 RevokePushMessage, 3 RevokePushTask") ||
				!strings.Contains(out, "4 scheduled chunks left alone") || !strings.Contains(out, "dry run: nothing published") {
				t.Fatalf("revoke --dry-run: %v\n%s\n%s", err, out, stderr)
			}
			if m, k, c := calls(); m+k+c != 0 {
				t.Fatalf("a dry run made calls: %d %d %d", m, k, c)
			}

			out, stderr, err = s.enqueue(t, "", "revoke", "--campaign", "mix")
			if err != nil || !strings.Contains(out, "done: 33 calls succeeded (0 by an earlier run), 0 failed") {
				t.Fatalf("revoke: %v\n%s\n%s", err, out, stderr)
			}
			if m, k, c := calls(); m != 30 || k != 3 || c != 0 {
				t.Fatalf("revoke called RevokePushMessage %d, RevokePushTask %d, CancelPushScheduler %d times; want 30, 3, 0", m, k, c)
			}
			if st := s.sim.Stats().Recall; st.RevokedPairs != 30 || st.RevokedTasks != 3 {
				t.Fatalf("emulator: %+v", st)
			}

			out, stderr, err = s.enqueue(t, "", "scheduled", "cancel", "--campaign", "mix")
			if err != nil || !strings.Contains(out, "1 admin jobs, 4 calls: 4 CancelPushScheduler") || !strings.Contains(out, "done: 4 calls succeeded") {
				t.Fatalf("scheduled cancel: %v\n%s\n%s", err, out, stderr)
			}
			if m, k, c := calls(); m != 30 || k != 3 || c != 4 || s.sim.Stats().Recall.CanceledTasks != 4 {
				t.Fatalf("scheduled cancel: calls %d %d %d, %+v", m, k, c, s.sim.Stats().Recall)
			}

			out, _, err = s.enqueue(t, "", "campaign", "status", "mix", "--json")
			var st ops.Progress
			if err != nil || json.Unmarshal([]byte(out), &st) != nil {
				t.Fatalf("campaign status: %v %s", err, out)
			}
			if tt := st.Totals; tt.Jobs != 4 || tt.Targets != 445 || tt.Sent != 445 || tt.Failed != 0 || tt.Revoked != 33 || tt.CanceledScheduled != 4 || tt.RecallFailed != 0 {
				t.Fatalf("totals must count the 4 push jobs, and the recall apart: %+v", tt)
			}
		})
	}
}

// Nothing to take back is said in a sentence, exit status 1, and no call.
func TestNothingToRecallIsExitOne(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	at := time.Now().Add(time.Hour).UnixMilli()
	j := &job.Job{JobID: "only-later", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n",
		StrategyType: job.Int64(1), StrategyContent: job.Object(fmt.Sprintf(`{"fixedTime":%d}`, at)), TargetMsgkey: job.Targets{{Target: "u", MsgKey: "k"}}}
	publishJob(t, s, "push.jobs.bulk.later", j)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"revoke", "--campaign", "later"}, "1 stored push results of campaign later, with no PushTemplate or PushSimple pair, nor PushMultiple or PushBroadcast task, sent now (not scheduled): nothing to revoke (1 scheduled chunks: use 'enqueue scheduled cancel')."},
		{[]string{"revoke", "--campaign", "never", "--dry-run"}, "no stored push result of campaign never, so there is nothing to revoke."},
		{[]string{"scheduled", "cancel", "nosuchjob"}, "no stored push result of job nosuchjob, so there is nothing to cancel."},
	} {
		out, stderr, err := s.enqueue(t, "", c.args...)
		if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(stderr, c.says) {
			t.Fatalf("%v: want exit 1 saying %q, got %v\n%s\n%s", c.args, c.says, err, out, stderr)
		}
	}
	if st := s.sim.Stats(); st.ByAPI["RevokePushMessage"].Calls+st.ByAPI["RevokePushTask"].Calls+st.ByAPI["CancelPushScheduler"].Calls != 0 {
		t.Fatalf("nothing to recall must make no call: %+v", st.ByAPI)
	}
}

// A failed RevokePushTask counts one call under its code: the task lists no
// target, and the report and the totals say so.
func TestFailedTaskRevokesAreCountedByCall(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	mj := &job.Job{JobID: "gone-m", TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "n"}
	for i := range 250 {
		mj.TargetMsgs = append(mj.TargetMsgs, job.TargetMsg{Target: fmt.Sprintf("g%d", i), MsgKey: "k"})
	}
	publishJob(t, s, "push.jobs.bulk.gone", mj)
	s.sim.Reset() // mPaaS no longer knows the tasks: each revoke fails with its code
	out, stderr, err := s.enqueue(t, "", "revoke", "--campaign", "gone")
	if ee, ok := err.(exitError); !ok || ee.code != 1 || !strings.Contains(out, "done: 0 calls succeeded (0 by an earlier run), 3 failed") ||
		!strings.Contains(out, "failed with 3051: 3") {
		t.Fatalf("revoke: want exit 1 and 3 calls failed with 3051, got %v\n%s\n%s", err, out, stderr)
	}
	out, _, err = s.enqueue(t, "", "campaign", "status", "gone")
	if err != nil || !strings.Contains(out, "recall: 0 revoked, 0 scheduled tasks canceled, 3 calls failed") || !strings.Contains(out, "failed with 3051: 3") ||
		!strings.Contains(out, "jobs: 0 queued, 0 in flight, 0 parked, 1 done") {
		t.Fatalf("campaign status: %v\n%s", err, out)
	}
}
