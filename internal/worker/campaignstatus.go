package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/pipeline"
)

// statusWait bounds the totals' reads of one campaign status answer: the
// requesters wait ops.DefaultAskWait (300 ms) for every worker, and a worker
// whose Redis is slow or gone must still answer in time with what it keeps in
// memory (the state, its jobs in flight).
const statusWait = 200 * time.Millisecond

// campaignStatus answers `enqueue campaign status` and the console: every
// worker replies with its jobs in flight, the totals and the state, for one
// campaign (a campaign.Report) or, with All, for every campaign it knows (a
// campaign.Reports).
//
// A request that is not a campaign.StatusRequest with a valid campaign or All
// gets a 400 service error naming what is wrong; a worker that cannot list the
// campaigns' totals (All) answers 503. Both have an empty body: the requesters
// (internal/ops) count them as a worker that answered, with no report. A
// campaign whose totals the worker cannot read in time is still reported, with
// its state and jobs in flight and TotalsError instead of totals: what the
// worker keeps in memory does not wait on Redis.
type campaignStatus struct {
	worker  string // host:pid
	pipe    *pipeline.Pipeline
	control *campaign.Watcher
	totals  campaignTotals
	log     *zap.Logger
}

func (c *campaignStatus) handle(ctx context.Context, req micro.Request) {
	q, err := statusRequest(req.Data())
	if err != nil {
		_ = req.Error("400", err.Error(), nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statusWait)
	defer cancel()
	var reply any
	if q.All {
		var all []campaign.Report
		all, err = c.all(ctx)
		reply = campaign.Reports{Worker: c.worker, Campaigns: all}
	} else {
		reply = c.report(ctx, q.Campaign)
	}
	if err != nil {
		c.log.Warn("campaigns not listed", zap.Error(err))
		_ = req.Error("503", "campaigns not listed: the worker could not reach its Redis in "+statusWait.String(), nil)
		return
	}
	_ = req.RespondJSON(reply)
}

// statusRequest reads a campaign.StatusRequest: {"campaign":"<name>"} or {"all":true}.
func statusRequest(data []byte) (campaign.StatusRequest, error) {
	var q campaign.StatusRequest
	if err := json.Unmarshal(data, &q); err != nil {
		return q, fmt.Errorf(`campaign status request: want {"campaign":"<name>"} or {"all":true}: %v`, err)
	}
	if !q.All {
		if err := campaign.ValidName(q.Campaign); err != nil {
			return q, fmt.Errorf(`campaign status request: campaign: %v (or "all":true for every campaign)`, err)
		}
	}
	return q, nil
}

// report is this worker's view of one campaign.
func (c *campaignStatus) report(ctx context.Context, name string) campaign.Report {
	totals, err := c.totals.Get(ctx, name)
	return c.reportOf(name, totals, err)
}

// reportOf is this worker's view of one campaign whose totals were read (or not: err).
func (c *campaignStatus) reportOf(name string, totals campaign.Totals, err error) campaign.Report {
	rep := campaign.Report{Campaign: name, Worker: c.worker, InFlight: c.pipe.InFlight(name), State: c.control.Get(name),
		Invalid: c.control.Invalid(name), Totals: totals}
	if err != nil {
		c.log.Warn("campaign totals not read", zap.String("campaign", name), zap.Error(err))
		rep.Totals, rep.TotalsError = campaign.Totals{}, "totals not read: the worker could not reach its Redis in "+statusWait.String()
	}
	return rep
}

// all are the reports of every campaign this worker knows: with totals, a
// state in the bucket, or jobs in its hands.
func (c *campaignStatus) all(ctx context.Context) ([]campaign.Report, error) {
	names, err := c.totals.Names(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for n := range c.control.Known() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	for _, n := range c.pipe.Campaigns() {
		if !seen[n] {
			seen[n], names = true, append(names, n)
		}
	}
	// Every campaign's totals in one round trip: one read each, one after the
	// other, took more than statusWait for 200 campaigns on a loaded machine.
	totals, errs := c.totals.GetMany(ctx, names)
	out := make([]campaign.Report, 0, len(names))
	for i, n := range names {
		out = append(out, c.reportOf(n, totals[i], errs[i]))
	}
	return out, nil
}
