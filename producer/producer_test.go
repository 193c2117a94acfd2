package producer_test

import (
	"context"
	"errors"
	"github.com/nats-io/nats.go"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/harness"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/producer"
)

func startWorker(t *testing.T) *nats.Conn {
	t.Helper()
	h := harness.New(t, harness.Setup{})
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
