package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/job"
)

// ReportWait is how long Report waits for a worker's answer: the worker's own
// bound (45 s for every call, retry and slot) and a margin.
const ReportWait = 50 * time.Second

// windowTypes are the push types whose calls have no task of their own: mPaaS
// reports them per app, over a window (QueryPushAnalysisCoreIndex).
var windowTypes = map[string]string{job.APITemplate: "TEMPLATE", job.APISimple: "SIMPLE"}

// DeliveryReport is a campaign's delivery figures and what they were read from.
type DeliveryReport struct {
	campaign.Delivery
	Finished bool `json:"finished"` // nothing of the campaign queued, in flight or parked
	Results  int  `json:"results"`  // stored push results read for its task ids and windows
	// Scheduled are chunks sent as scheduled tasks (strategyType 1 or 2), and
	// Truncated results stored without their chunks: neither is asked about.
	Scheduled int `json:"scheduled,omitempty"`
	Truncated int `json:"truncated,omitempty"`
}

// Report asks a worker for what mPaaS counted of the campaign: the task ids
// and the first-to-last-call windows come from its stored results (as a
// recall's do), the figures from mPaaS through the worker (which holds the
// credentials), or from what the workers kept once the campaign finished. A
// campaign with neither stored results nor kept figures is ErrNotFound.
func (o *Ops) Report(ctx context.Context, name string) (*DeliveryReport, error) {
	p, err := o.Progress(ctx, name)
	if err != nil {
		return nil, err
	}
	results, err := o.pushResults(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	rep := &DeliveryReport{Finished: p.Finished(), Results: len(results)}
	q := campaign.ReportRequest{Campaign: name, Finished: rep.Finished}
	q.Sources, rep.Scheduled, rep.Truncated = reportSources(results)
	body, _ := json.Marshal(q)
	ctx, cancel := context.WithTimeout(ctx, ReportWait)
	defer cancel()
	m, err := o.nc.RequestWithContext(ctx, o.topo.ReportSubject(), body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: no worker answers %s", ErrNoWorkers, o.topo.ReportSubject())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: no worker answered %s in %s", ErrTimedOut, o.topo.ReportSubject(), ReportWait)
	case err != nil:
		return nil, fmt.Errorf("asking a worker (%s): %w", o.topo.ReportSubject(), err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		return nil, fmt.Errorf("the worker answered %s: %s", code, m.Header.Get("Nats-Service-Error"))
	}
	if err := json.Unmarshal(m.Data, &rep.Delivery); err != nil {
		return nil, fmt.Errorf("the worker's report: %w", err)
	}
	if !rep.Cached && len(q.Sources) == 0 {
		return rep, fmt.Errorf("campaign %s: %w: %d stored push results, with no task id and no call to report on, and no figures kept", name, ErrNotFound, len(results))
	}
	return rep, nil
}

// reportSources are what the results ask mPaaS about, by app and workspace:
// the task ids of the chunks sent now (PushMultiple, broadcast), and for the
// pushes without a task (PushTemplate, PushSimple) the window from the first
// job's start to the last one's end, by type.
func reportSources(results []job.Result) (sources []campaign.ReportSource, scheduled, truncated int) {
	by := map[[2]string]int{}
	windows := map[[3]string]*campaign.ReportWindow{}
	seen := map[string]bool{}
	for _, r := range results {
		if r.Sent == 0 {
			continue
		}
		k := [2]string{r.AppID, r.WorkspaceID}
		i, ok := by[k]
		if !ok {
			i, by[k] = len(sources), len(sources)
			sources = append(sources, campaign.ReportSource{AppID: r.AppID, WorkspaceID: r.WorkspaceID})
		}
		if typ, ok := windowTypes[r.API]; ok {
			wk := [3]string{r.AppID, r.WorkspaceID, typ}
			w := windows[wk]
			if w == nil {
				w = &campaign.ReportWindow{Type: typ, From: r.StartedAt.Time, To: r.FinishedAt.Time}
				windows[wk] = w
			}
			if r.StartedAt.Before(w.From) {
				w.From = r.StartedAt.Time
			}
			if r.FinishedAt.After(w.To) {
				w.To = r.FinishedAt.Time
			}
			continue
		}
		if r.Truncated {
			truncated++
		}
		for _, c := range r.Chunks {
			switch {
			case c.Status != job.ChunkSent || c.Data == "":
			case c.Scheduled():
				scheduled++
			case !seen[c.Data]:
				seen[c.Data] = true
				sources[i].TaskIDs = append(sources[i].TaskIDs, c.Data)
			}
		}
	}
	for i := range sources {
		for _, typ := range []string{"TEMPLATE", "SIMPLE"} {
			if w := windows[[3]string{sources[i].AppID, sources[i].WorkspaceID, typ}]; w != nil {
				sources[i].Windows = append(sources[i].Windows, *w)
			}
		}
	}
	sources = slices.DeleteFunc(sources, func(s campaign.ReportSource) bool { return len(s.TaskIDs)+len(s.Windows) == 0 })
	return sources, scheduled, truncated
}
