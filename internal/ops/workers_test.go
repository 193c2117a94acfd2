package ops

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/topology"
)

// A worker that answers a campaign status request with a service error (it
// could not read its totals) counts as a worker that answered, with no report:
// the question does not wait for it, and its answer is no report.
func TestAServiceErrorIsAnAnswerWithoutAReport(t *testing.T) {
	t.Parallel()
	ns := testenv.NATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	topo := topology.Default()
	for _, answer := range []micro.HandlerFunc{
		func(req micro.Request) {
			_ = req.RespondJSON(campaign.Report{Campaign: "c", Worker: "good", InFlight: 2})
		},
		// A body, even one that reads as a report, does not make an error a report.
		func(req micro.Request) {
			_ = req.Error("503", "campaign totals not read", []byte(`{"campaign":"c","worker":"bad"}`))
		},
	} {
		svc, err := micro.AddService(nc, micro.Config{Name: "pushworker", Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		if err := svc.AddEndpoint("campaign-status", answer, micro.WithEndpointSubject(topo.CampaignStatusSubject()),
			micro.WithEndpointQueueGroupDisabled()); err != nil {
			t.Fatal(err)
		}
	}
	o, err := New(nc, topo)
	if err != nil {
		t.Fatal(err)
	}
	o.AskWait = 10 * time.Second
	o.workers = 2 // as after an earlier question
	start := time.Now()
	reports, err := o.reports(context.Background(), "c")
	if err != nil || len(reports) != 1 || reports[0].Worker != "good" || reports[0].InFlight != 2 {
		t.Fatalf("want the one report: %v %+v", err, reports)
	}
	if o.workers != 2 {
		t.Fatalf("both workers answered: counted %d", o.workers)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the question waited %v for a worker that had answered with an error", d)
	}
}
