package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// Garbage of every kind: each job gets a rejected result naming the field and a
// dead letter, the worker never stops, and a message over the server's maximum is
// refused at publish, where the producer sees it.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	base := func(id, extra string) string {
		return `{"jobId":"` + id + `","taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,` +
			`"targetMsgkey":{"u":"k"},"expiredSeconds":300,"templateName":"n"` + extra + `}`
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf(`"u%d":"k"`, i)
	}
	cases := []struct {
		id, body, says string
	}{
		{"over-cap", strings.Replace(base("over-cap", ""), `{"u":"k"}`, "{"+strings.Join(many, ",")+"}", 1), "targetMsgkey: 1001 targets, more than the 1000"},
		{"deep", base("deep", `,"extendedParams":`+strings.Repeat(`{"a":`, 20000)+"1"+strings.Repeat("}", 20000)), "job is not a JSON object"},
		{"utf8", base("utf8", `,"smsSignName":"`+"\xff\xfe"+`"`), "job is not valid UTF-8"},
		{"string-number", strings.Replace(base("string-number", ""), `"deliveryType":3`, `"deliveryType":"3"`, 1), "deliveryType: must be an integer, not a string"},
		{"negative", strings.Replace(base("negative", ""), `"expiredSeconds":300`, `"expiredSeconds":-300`, 1), "expiredSeconds: required, and must be greater than 0"},
		{"overflow", strings.Replace(base("overflow", ""), `"expiredSeconds":300`, `"expiredSeconds":99999999999999999999`, 1), "expiredSeconds: integer out of range"},
		{"dup-target", strings.Replace(base("dup-target", ""), `{"u":"k"}`, `{"u":"k","u":"k2"}`, 1), `targetMsgkey: target "u" given more than once`},
		{"reply-outside", base("reply-outside", `,"replyTo":"orders.results"`), "replyTo: must be a subject under push.results.>"},
	}
	for _, c := range cases {
		h.Publish("push.jobs.bad", []byte(c.body), "")
	}
	h.Publish("push.jobs.bad", []byte(base("bad id!", "")), "") // a bad jobId: the result falls back to seq-<n>

	// Over the server's maximum payload (1 MiB): refused at publish.
	huge := base("huge", `,"extendedParams":{"k":"`+strings.Repeat("x", 1<<20)+`"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.JS.Publish(ctx, "push.jobs.bad", []byte(huge)); err == nil || !strings.Contains(err.Error(), "maximum payload") {
		t.Fatalf("a message over the maximum must be refused at publish: %v", err)
	}

	got := map[string]job.Result{}
	for range len(cases) + 1 {
		r := h.Result(15 * time.Second)
		if r.Status != job.StatusRejected || r.Sent != 0 || len(r.Chunks) != 0 || strings.Contains(r.Error, "\n") {
			t.Fatalf("want a one-line rejected result: %+v", r)
		}
		got[r.JobID] = r
	}
	// A job that cannot be read at all has no jobId: its result comes under the
	// fallback id seq-<stream sequence>.
	unreadable := map[string]bool{"deep": true, "utf8": true}
	bySeq := func(says string) bool {
		for id, r := range got {
			if strings.HasPrefix(id, "seq-") && strings.Contains(r.Error, says) {
				return true
			}
		}
		return false
	}
	for _, c := range cases {
		if unreadable[c.id] {
			if !bySeq(c.says) {
				t.Fatalf("%s: want a result under a seq- id saying %q: %v", c.id, c.says, got)
			}
			continue
		}
		if r, ok := got[c.id]; !ok || !strings.Contains(r.Error, c.says) {
			t.Fatalf("%s: want an error saying %q, got %+v", c.id, c.says, r)
		}
	}
	if !bySeq("jobId: must be 1–128 characters") {
		t.Fatalf("a bad jobId must be rejected under its fallback id: %v", got)
	}
	if r := got["over-cap"]; r.Targets != 1001 || r.Failed != 1001 {
		t.Fatalf("a rejected job counts its parsed targets as failed: %+v", r)
	}
	for range len(cases) + 1 {
		if dl := h.DeadLetter(5 * time.Second); dl.Headers().Get(wire.HeaderReason) != "rejected" {
			t.Fatalf("dead letter %v", dl.Headers())
		}
	}
	good := teststack.NewJob("after-garbage", "good", 3)
	h.PublishJob("push.jobs.good", good)
	if r := h.Result(10 * time.Second); r.JobID != "after-garbage" || r.Sent != 3 {
		t.Fatalf("the worker must go on: %+v", r)
	}
	if n := len(h.Sim.Calls()); n != 1 {
		t.Fatalf("garbage must cost no mPaaS call: %d calls", n)
	}
}
