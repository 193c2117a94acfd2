package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// campaignTotals count each campaign's results: in Redis, or in memory in dev mode.
type campaignTotals interface {
	Add(ctx context.Context, name string, r *job.Result) error       // a push job's result
	AddRecall(ctx context.Context, name string, r *job.Result) error // an admin job's result
	Get(ctx context.Context, name string) (campaign.Totals, error)
	GetMany(ctx context.Context, names []string) ([]campaign.Totals, []error) // one round trip
	Names(ctx context.Context) ([]string, error)
}

// tally counts each stored result of a campaign's job in the campaign's totals
// (the consumer's OnResult).
type tally struct {
	topo   topology.Topology
	totals campaignTotals
	log    *zap.Logger
}

// tallyWait bounds the count of one result.
const tallyWait = 5 * time.Second

func (t tally) count(subject string, r *job.Result) {
	name := t.topo.Campaign(subject)
	if name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tallyWait)
	defer cancel()
	add := t.totals.Add
	if t.topo.IsAdmin(subject) { // a recall's calls are counted apart from the pushes
		add = t.totals.AddRecall
	}
	if err := add(ctx, name, r); err != nil {
		t.log.Warn("campaign totals not counted", zap.String("campaign", name), zap.String("job", r.JobID), zap.Error(err))
	}
}
