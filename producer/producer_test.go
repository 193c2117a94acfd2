package producer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/producer"
)

func startWorker(t *testing.T) *nats.Conn {
	t.Helper()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	return h.NC
}

func orderPaid() *job.Job {
	return &job.Job{TaskName: "order paid", AppID: "ONEX570DA89211721", WorkspaceID: "test", DeliveryType: 3,
		ExpiredSeconds: 300, TemplateName: "测试模板", TargetMsgkey: job.Targets{{Target: "user1024", MsgKey: "1578807462788"}}}
}

func TestPublishAndWait(t *testing.T) {
	nc := startWorker(t)
	p, err := producer.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	j := orderPaid()
	res, err := p.PublishAndWait(ctx, producer.Events("orders"), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.JobID != j.JobID || j.JobID == "" || res.Status != job.StatusSucceeded || res.Sent != 1 {
		t.Fatalf("result: %+v", res)
	}
	b := orderPaid()
	b.TargetMsgkey[0].Target = "user2048"
	if res, err := p.PublishAndWait(ctx, producer.Bulk("spring"), b); err != nil || res.Sent != 1 {
		t.Fatalf("bulk lane: %+v %v", res, err)
	}
}

func TestInvalidJobIsNotPublished(t *testing.T) {
	nc := startWorker(t)
	p, _ := producer.New(nc)
	j := orderPaid()
	j.DeliveryType = 4
	err := p.Publish(context.Background(), producer.Events("orders"), j)
	var fe *job.FieldError
	if !errors.As(err, &fe) || fe.Field != "deliveryType" {
		t.Fatalf("want a field error on deliveryType, got %v", err)
	}
	if err := p.Publish(context.Background(), producer.Events("a.b"), orderPaid()); err == nil {
		t.Fatal("a lane name of two tokens must be refused")
	}
}

func TestRepublishIsDropped(t *testing.T) {
	nc := startWorker(t)
	p, _ := producer.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	j := orderPaid()
	j.JobID = "retry-me"
	if _, err := p.PublishAndWait(ctx, producer.Events("orders"), j); err != nil {
		t.Fatal(err)
	}
	// A retry after a lost ack: the stream drops it, no second job runs.
	if err := p.Publish(ctx, producer.Events("orders"), j); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := p.PublishAndWait(short, producer.Events("orders"), j); !errors.Is(err, producer.ErrNoResult) {
		t.Fatalf("a republished job id must not run again: %v", err)
	}
}

// A Go service builds personal jobs from its rows and publishes them: each
// target reaches mPaaS with its own values, 100 to a call.
func TestPersonalJobs(t *testing.T) {
	h := teststack.New(t, teststack.Setup{Templates: map[string]string{"won": "#name#, you won #money#"}})
	h.StartWorker()
	p, _ := producer.New(h.NC)
	base := &job.Job{TaskName: "lottery", AppID: "ONEX570DA89211721", WorkspaceID: "test", DeliveryType: 3,
		ExpiredSeconds: 300, TemplateName: "won"}
	var msgs []job.TargetMsg
	for i := range 150 {
		msgs = append(msgs, producer.Personal(fmt.Sprintf("user%d", i), fmt.Sprintf("win-%d", i),
			map[string]string{"name": fmt.Sprintf("用户%d", i), "money": fmt.Sprint(i * 10)}))
	}
	msgs[3] = producer.PersonalWith("user3", "win-3", map[string]string{"name": "张三", "money": "30"}, map[string]string{"url": "app://prize/3"})
	jobs, err := producer.PersonalJobs(base, "lottery-2026", msgs, 120)
	if err != nil || len(jobs) != 2 || len(jobs[1].TargetMsgs) != 30 || jobs[1].JobID != "lottery-2026.1" {
		t.Fatalf("jobs: %v %+v", err, jobs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, j := range jobs {
		res, err := p.PublishAndWait(ctx, producer.Bulk("lottery"), j)
		if err != nil || res.Status != job.StatusSucceeded || res.API != job.APIMultiple || res.Campaign != "lottery" {
			t.Fatalf("%s: %v %+v", j.JobID, err, res)
		}
	}
	if st := h.Sim.Stats().ByAPI[job.APIMultiple]; st.Calls != 3 || st.Deliveries != 150 {
		t.Fatalf("want calls of 100, 20 and 30: %+v", st)
	}
	for _, d := range h.Sim.Deliveries(1) {
		if d.Target == "user3" && (d.TemplateKeyValue != `{"money":"30","name":"张三"}` || d.ExtendedParams != `{"url":"app://prize/3"}`) {
			t.Fatalf("user3 arrived as %+v", d)
		}
	}
	withValues := *base
	withValues.TemplateKeyValue = job.Object(`{"name":"x"}`)
	if _, err := producer.PersonalJobs(&withValues, "x", msgs, 0); !errors.Is(err, producer.ErrBaseHasTargets) {
		t.Fatalf("a base with templateKeyValue: %v", err)
	}
}
