package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
)

// gather sends one request to subject and returns the first n answers, or
// fails when fewer came within timeout.
func gather(t *testing.T, nc *nats.Conn, subject string, body []byte, n int, timeout time.Duration) []*nats.Msg {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for deadline := time.Now().Add(timeout); len(out) < n; {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s %s: %d answers of %d: %v", subject, body, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// Campaign status is an endpoint of the workers' one NATS service: every
// worker answers it (no queue group) with the same bytes as before (a Report,
// or Reports for all), `nats micro info` lists it beside stats,
// scheduled-list and report, and a bad request gets a 400 from each worker that names
// what is wrong, with no body, which the requesters count as no report.
func TestCampaignStatusIsAnEndpointOfTheService(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	h.StartWorker()
	h.StartWorker()
	j := teststack.NewJob("status-1", "status", 3)
	h.PublishJob(h.Topo.BulkSubject("status"), j)
	if r := h.ResultsFor([]string{j.JobID}, 20*time.Second)[j.JobID]; r.Status != job.StatusSucceeded {
		t.Fatalf("job: %+v", r)
	}
	subject := h.Topo.CampaignStatusSubject()

	for body, names := range map[string]string{
		`not json`:             "want {\"campaign\"",
		`{}`:                   "campaign: ",
		`{"campaign":"a b"}`:   `campaign: invalid campaign control: campaign name "a b"`,
		`{"campaign":5}`:       "StatusRequest.campaign",
		`{"all":"yes please"}`: "StatusRequest.all",
		`{"campaign":"` + strings.Repeat("x", 200) + `"}`: "1 to 128 characters",
	} {
		for _, m := range gather(t, h.NC, subject, []byte(body), 2, 5*time.Second) {
			code, why := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader)
			if code != "400" || !strings.Contains(why, names) || len(m.Data) != 0 {
				t.Errorf("%s: want a 400 naming %q with no body, got %q %q %q", body, names, code, why, m.Data)
			}
		}
	}

	for _, m := range gather(t, h.NC, subject, []byte(`{"campaign":"status"}`), 2, 5*time.Second) {
		var r campaign.Report
		if err := json.Unmarshal(m.Data, &r); err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" || r.Campaign != "status" || r.Worker == "" {
			t.Fatalf("report: %v %q %v", err, m.Data, m.Header)
		}
	}
	for _, m := range gather(t, h.NC, subject, []byte(`{"all":true}`), 2, 5*time.Second) {
		var r campaign.Reports
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Worker == "" || len(r.Campaigns) != 1 || r.Campaigns[0].Campaign != "status" {
			t.Fatalf("reports: %v %q", err, m.Data)
		}
	}

	// The requesters' code: ops gathers the reports as before.
	o, err := ops.New(h.NC, h.Topo)
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.Progress(context.Background(), "status")
	if err != nil || p.Workers != 2 || p.Totals.Jobs != 1 || p.Totals.Sent != 3 {
		t.Fatalf("progress: %v %+v", err, p)
	}

	// `nats micro info pushworker`: one service per worker, with the four endpoints.
	for _, m := range gather(t, h.NC, "$SRV.INFO.pushworker", nil, 2, 5*time.Second) {
		var info micro.Info
		if err := json.Unmarshal(m.Data, &info); err != nil {
			t.Fatal(err)
		}
		got := map[string]micro.EndpointInfo{}
		for _, e := range info.Endpoints {
			got[e.Name] = e
		}
		if e := got["campaign-status"]; e.Subject != subject || e.QueueGroup != "" {
			t.Errorf("campaign-status endpoint: %+v", e)
		}
		if e := got["stats"]; e.Subject != h.Topo.WorkersStatsSubject() || e.QueueGroup != "" {
			t.Errorf("stats endpoint: %+v", e)
		}
		if e := got["scheduled-list"]; e.Subject != h.Topo.ScheduledListSubject() || e.QueueGroup == "" {
			t.Errorf("scheduled-list endpoint (one worker answers): %+v", e)
		}
		if e := got["report"]; e.Subject != h.Topo.ReportSubject() || e.QueueGroup == "" {
			t.Errorf("report endpoint (one worker answers): %+v", e)
		}
	}
}

// A worker that cannot reach its Redis still reports a campaign's state and
// its jobs in flight, which it keeps in memory, and says why the totals are
// missing; ops then takes no totals from it.
func TestCampaignStatusWithoutRedisReportsTheState(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	h := teststack.New(t, teststack.Setup{RedisAddr: srv.Addr()})
	h.StartWorker()
	kv, err := h.JS.KeyValue(context.Background(), h.Topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "dark", campaign.State{State: campaign.Paused, UpdatedAt: time.Now()}.Encode()); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(campaign.StatusRequest{Campaign: "dark"})
	var rep campaign.Report
	for deadline := time.Now().Add(10 * time.Second); rep.State.State != campaign.Paused; time.Sleep(20 * time.Millisecond) {
		m := gather(t, h.NC, h.Topo.CampaignStatusSubject(), req, 1, 5*time.Second)[0]
		_ = json.Unmarshal(m.Data, &rep)
		if time.Now().After(deadline) {
			t.Fatalf("the worker never applied the pause: %s", m.Data)
		}
	}
	srv.Stop()
	m := gather(t, h.NC, h.Topo.CampaignStatusSubject(), req, 1, 10*time.Second)[0]
	rep = campaign.Report{}
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.State.State != campaign.Paused || rep.TotalsError == "" {
		t.Fatalf("without Redis the report keeps the state and says why the totals are missing: %v %s", err, m.Data)
	}
	o, err := ops.New(h.NC, h.Topo)
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.Progress(context.Background(), "dark")
	if err != nil || p.State.State != campaign.Paused || p.Workers != 1 || p.Done != 0 || p.TotalsError == "" {
		t.Fatalf("progress: %v %+v", err, p)
	}
}
