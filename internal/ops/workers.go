package ops

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mpaas-push/pushworker/internal/campaign"
)

// ask sends one request to subject, which every worker answers, and hands each
// answer to f. It returns when as many workers answered as the last time (the
// fleet did not shrink), or after AskWait, whichever comes first. A service
// error (a worker that could not answer, or refused the request) counts as a
// worker that answered, and is not handed to f.
func (o *Ops) ask(ctx context.Context, subject string, req []byte, f func([]byte)) (answers int, err error) {
	inbox := nats.NewInbox()
	sub, err := o.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := o.nc.PublishRequest(subject, inbox, req); err != nil {
		return 0, err
	}
	o.mu.Lock()
	expect := o.workers
	o.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, o.AskWait)
	defer cancel()
	for expect == 0 || answers < expect {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			break // the time is up
		}
		answers++
		if m.Header.Get(micro.ErrorCodeHeader) != "" {
			continue
		}
		f(m.Data)
	}
	if err := ctx.Err(); err != nil {
		return answers, err
	}
	o.mu.Lock()
	o.workers = answers
	o.mu.Unlock()
	return answers, nil
}

// reports asks every worker about one campaign.
func (o *Ops) reports(ctx context.Context, name string) ([]campaign.Report, error) {
	req, _ := json.Marshal(campaign.StatusRequest{Campaign: name})
	var out []campaign.Report
	_, err := o.ask(ctx, o.topo.CampaignStatusSubject(), req, func(data []byte) {
		var r campaign.Report
		if json.Unmarshal(data, &r) == nil {
			out = append(out, r)
		}
	})
	return out, err
}

// allReports asks every worker about every campaign it knows, in one request.
func (o *Ops) allReports(ctx context.Context) ([]campaign.Reports, error) {
	req, _ := json.Marshal(campaign.StatusRequest{All: true})
	var out []campaign.Reports
	_, err := o.ask(ctx, o.topo.CampaignStatusSubject(), req, func(data []byte) {
		var r campaign.Reports
		if json.Unmarshal(data, &r) == nil && r.Campaigns != nil {
			out = append(out, r)
		}
	})
	return out, err
}

// WorkerStats is one worker's answer on the stats endpoint, as it sent it.
type WorkerStats = json.RawMessage

// Workers asks every worker for its stats.
func (o *Ops) Workers(ctx context.Context) ([]WorkerStats, error) {
	var out []WorkerStats
	_, err := o.ask(ctx, o.topo.WorkersStatsSubject(), nil, func(data []byte) {
		if json.Valid(data) {
			out = append(out, append(WorkerStats(nil), data...))
		}
	})
	return out, err
}
