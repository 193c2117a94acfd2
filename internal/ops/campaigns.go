package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
)

// Progress is what is known of a campaign: its state, where its jobs are, and
// its totals over every worker.
type Progress struct {
	Campaign string         `json:"campaign"`
	State    campaign.State `json:"state"`
	HasState bool           `json:"hasState"`          // a key holds the state (none: running at no pace)
	Invalid  string         `json:"invalid,omitempty"` // why the stored value was not taken
	// Changes are the last values written (newest first): who changed what, why.
	Changes  []campaign.State `json:"changes,omitempty"`
	Queued   int              `json:"queued"` // jobs in the job stream, not yet in a worker's hands
	InFlight int              `json:"inFlight"`
	Parked   int              `json:"parked"`
	Done     int              `json:"done"` // jobs with a result
	Totals   campaign.Totals  `json:"totals"`
	Workers  int              `json:"workers"` // workers that answered
	// TotalsError: no worker that answered could read the totals in time (Done
	// and Totals are then 0 for this look, not for the campaign).
	TotalsError string `json:"totalsError,omitempty"`
	// TargetsPerSecond and SecondsLeft are filled by Rate from two looks.
	TargetsPerSecond float64 `json:"targetsPerSecond"`
	SecondsLeft      float64 `json:"secondsLeft,omitempty"`
}

// Jobs is every job known of the campaign: done, queued, in flight and parked.
func (p *Progress) Jobs() int { return p.Done + p.Queued + p.InFlight + p.Parked }

// Known: a job of the campaign was queued, parked or done, or it has a state.
func (p *Progress) Known() bool { return p.Jobs() > 0 || p.HasState }

// Finished: nothing queued, in flight or parked, and at least one job done.
func (p *Progress) Finished() bool { return p.Queued+p.InFlight+p.Parked == 0 && p.Done > 0 }

// Rate fills the targets per second between an earlier look and this one, and
// the time left at that rate.
func (p *Progress) Rate(prev *Progress, d time.Duration) {
	done := func(s *Progress) int { return s.Totals.Sent + s.Totals.Duplicates + s.Totals.Failed }
	p.TargetsPerSecond = float64(done(p)-done(prev)) / d.Seconds()
	p.SecondsLeft = 0
	if p.TargetsPerSecond > 0 && p.Totals.Jobs > 0 {
		perJob := float64(p.Totals.Targets) / float64(p.Totals.Jobs)
		p.SecondsLeft = float64(p.Queued+p.InFlight+p.Parked) * perJob / p.TargetsPerSecond
	}
}

func (o *Ops) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := o.js.KeyValue(ctx, o.topo.CampaignsBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s (start a worker against this server first): %w", o.topo.CampaignsBucket, err)
	}
	return kv, nil
}

// state is the campaign's state and whether a key holds it; err wraps
// ErrUnreadable when the stored value cannot be read.
func state(ctx context.Context, kv jetstream.KeyValue, name string) (campaign.State, bool, error) {
	entry, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return campaign.State{State: campaign.Running}, false, nil
	}
	if err != nil {
		return campaign.State{}, false, err
	}
	s, err := campaign.Decode(entry.Value())
	if err != nil {
		return campaign.State{State: campaign.Running}, true, fmt.Errorf("campaign %s: %w: the stored value (%v): set a state again, or delete it", name, ErrUnreadable, err)
	}
	return s, true, nil
}

// changes are the last values written for the campaign, newest first.
func changes(ctx context.Context, kv jetstream.KeyValue, name string) []campaign.State {
	h, err := kv.History(ctx, name)
	if err != nil {
		return nil
	}
	var out []campaign.State
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Operation() != jetstream.KeyValuePut {
			out = append(out, campaign.State{State: "deleted", UpdatedAt: h[i].Created().UTC()})
			continue
		}
		if s, err := campaign.Decode(h[i].Value()); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Change is a new state for a campaign, with the audit the bucket keeps.
type Change struct {
	State  string // campaign.Running, Paused or Canceled
	Reason string
	Actor  string // who: "enqueue:alice@host", "console:ops-team", …
	// Create sets the state of a campaign that has not run yet (to pause or
	// pace it before it is loaded); without it that is ErrUnknownCampaign.
	Create bool
}

// SetState writes a new state. The workers carry it out within a second,
// whoever wrote it: a pause parks the campaign's jobs, a resume or a cancel
// brings the parked ones back (to run, or to end canceled). A campaign that
// never ran is ErrUnknownCampaign; a canceled one stays so (ErrCanceled) until
// Delete.
func (o *Ops) SetState(ctx context.Context, name string, c Change) (campaign.State, error) {
	kv, s, err := o.current(ctx, name, true, c.Create)
	if err != nil {
		return campaign.State{}, err
	}
	if s.State == campaign.Canceled && c.State != campaign.Canceled {
		return s, fmt.Errorf("campaign %s: %w: it stays so until its state is deleted", name, ErrCanceled)
	}
	s.State, s.Reason, s.Actor, s.UpdatedAt = c.State, c.Reason, c.Actor, time.Now().UTC()
	if _, err := kv.Put(ctx, name, s.Encode()); err != nil {
		return campaign.State{}, err
	}
	return s, nil
}

// current is the bucket and the state of a campaign that is known (it has a
// state, or ran: else ErrUnknownCampaign, unless create). An unreadable stored
// value is an error unless overwrite, which takes it as running.
func (o *Ops) current(ctx context.Context, name string, overwrite, create bool) (jetstream.KeyValue, campaign.State, error) {
	if err := campaign.ValidName(name); err != nil {
		return nil, campaign.State{}, err
	}
	kv, err := o.bucket(ctx)
	if err != nil {
		return nil, campaign.State{}, err
	}
	s, exists, err := state(ctx, kv, name)
	if err != nil && !(overwrite && errors.Is(err, ErrUnreadable)) {
		return nil, campaign.State{}, err
	}
	if !exists && !create {
		if err := o.mustKnow(ctx, name); err != nil {
			return nil, campaign.State{}, err
		}
	}
	return kv, s, nil
}

// Pace sets the campaign's targets per second over all workers (0: no pace of
// its own). A campaign that has not run yet is ErrUnknownCampaign unless create.
func (o *Ops) Pace(ctx context.Context, name string, targetsPerSecond float64, actor string, create bool) (campaign.State, error) {
	kv, s, err := o.current(ctx, name, false, create)
	if err != nil {
		return campaign.State{}, err
	}
	s.TargetsPerSecond, s.Actor, s.Reason, s.UpdatedAt = targetsPerSecond, actor, "pace", time.Now().UTC()
	if _, err := kv.Put(ctx, name, s.Encode()); err != nil {
		return campaign.State{}, err
	}
	return s, nil
}

// DeleteState removes the campaign's state: it runs again at no pace of its own
// (the workers bring its parked jobs back).
func (o *Ops) DeleteState(ctx context.Context, name string) error {
	if err := campaign.ValidName(name); err != nil {
		return err
	}
	kv, err := o.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Get(ctx, name); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("campaign %s has no state of its own: %w", name, ErrNotFound)
	}
	return kv.Delete(ctx, name)
}

// mustKnow is ErrUnknownCampaign unless a job of the campaign is queued,
// parked, in a worker's hands or done.
func (o *Ops) mustKnow(ctx context.Context, name string) error {
	p, err := o.look(ctx, name, false)
	if err != nil {
		return err
	}
	if !p.Known() {
		return fmt.Errorf("campaign %q: %w: no job of it is queued, parked or done ('enqueue campaign list' shows the known ones)", name, ErrUnknownCampaign)
	}
	return nil
}

// Parked is how many of the campaign's jobs wait in the parking stream.
func (o *Ops) Parked(ctx context.Context, name string) (int, error) {
	return o.subjectCount(ctx, o.topo.ParkedStream, o.topo.CampaignParked(name))
}

// WaitUnparked watches the parking stream until the campaign has no parked
// job, or until ctx ends; it returns how many are still parked. The workers
// move them; this only looks.
func (o *Ops) WaitUnparked(ctx context.Context, name string) (int, error) {
	for {
		n, err := o.Parked(ctx, name)
		if err != nil || n == 0 {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// subjectCount is how many messages of stream match filter.
func (o *Ops) subjectCount(ctx context.Context, streamName, filter string) (int, error) {
	s, err := o.js.Stream(ctx, streamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

// Progress is the campaign's state, jobs and totals now. A campaign that never
// ran and has no state is ErrUnknownCampaign.
func (o *Ops) Progress(ctx context.Context, name string) (*Progress, error) {
	if err := campaign.ValidName(name); err != nil {
		return nil, err
	}
	p, err := o.look(ctx, name, true)
	if err != nil {
		return nil, err
	}
	if !p.Known() {
		return p, fmt.Errorf("campaign %q: %w: no job of it is queued, parked or done, and it has no state ('enqueue campaign list' shows the known ones)", name, ErrUnknownCampaign)
	}
	return p, nil
}

// look reads the state (withState), the streams and every worker's report.
func (o *Ops) look(ctx context.Context, name string, withState bool) (*Progress, error) {
	p := &Progress{Campaign: name, State: campaign.State{State: campaign.Running}}
	if withState {
		kv, err := o.bucket(ctx)
		if err != nil {
			return nil, err
		}
		s, exists, err := state(ctx, kv, name)
		switch {
		case errors.Is(err, ErrUnreadable):
			p.Invalid = err.Error()
		case err != nil:
			return nil, err
		default:
			p.State = s
		}
		p.HasState = exists
		if exists {
			p.Changes = changes(ctx, kv, name)
		}
	}
	var err error
	if p.Queued, err = o.queued(ctx, name); err != nil {
		return nil, err
	}
	if p.Parked, err = o.Parked(ctx, name); err != nil {
		return nil, err
	}
	reports, err := o.reports(ctx, name)
	if err != nil {
		return nil, err
	}
	merge(p, reports)
	return p, nil
}

// merge adds the workers' reports of one campaign to p.
func merge(p *Progress, reports []campaign.Report) {
	p.Workers = len(reports)
	if p.Invalid != "" && len(reports) > 0 {
		p.State = reports[0].State // what the workers keep: the last valid state
	}
	for _, r := range reports {
		p.InFlight += r.InFlight
		if r.TotalsError == "" && r.Totals.Jobs >= p.Totals.Jobs {
			p.Totals = r.Totals
		}
		if r.Invalid != "" {
			p.Invalid = "a worker did not take the stored value: " + r.Invalid
		}
	}
	if p.Totals.FailedBy == nil {
		p.Totals.FailedBy = map[string]int{}
	}
	if len(reports) > 0 && !slices.ContainsFunc(reports, func(r campaign.Report) bool { return r.TotalsError == "" }) {
		p.TotalsError = reports[0].TotalsError
	}
	p.Queued = max(0, p.Queued-p.InFlight)
	p.Done = p.Totals.Jobs
}

// queued is how many of the campaign's push jobs the job stream holds (those in
// a worker's hands included: a work queue keeps a job until it is acked); its
// admin jobs are a recall's, not the campaign's.
func (o *Ops) queued(ctx context.Context, name string) (int, error) {
	a, err := o.subjectCount(ctx, o.topo.JobsStream, o.topo.BulkSubject(name))
	if err != nil {
		return 0, err
	}
	b, err := o.subjectCount(ctx, o.topo.JobsStream, o.topo.BulkSubject(name)+".>")
	if err != nil {
		return 0, err
	}
	admin, err := o.subjectCount(ctx, o.topo.JobsStream, o.topo.AdminSubject(name))
	return a + b - admin, err
}

// Campaigns is every campaign seen: those with totals (every campaign that ran,
// for as long as its totals are kept), with a state in the bucket, or with jobs
// queued, parked or in a worker's hands, sorted by name. It costs one question
// to the workers and one read of each stream, whatever the number of campaigns.
func (o *Ops) Campaigns(ctx context.Context) ([]*Progress, error) {
	by := map[string]*Progress{}
	get := func(name string) *Progress {
		if by[name] == nil {
			by[name] = &Progress{Campaign: name, State: campaign.State{State: campaign.Running}}
		}
		return by[name]
	}
	var (
		wg                      sync.WaitGroup
		reports                 []campaign.Reports
		queued, parked          map[string]int
		askErr, qErr, pErr, kvE error
		states                  map[string]campaign.State
		unreadable              map[string]string
	)
	wg.Add(4)
	go func() { defer wg.Done(); reports, askErr = o.allReports(ctx) }()
	go func() {
		defer wg.Done()
		queued, qErr = o.byCampaign(ctx, o.topo.JobsStream, o.topo.BulkLaneSubjects(), o.topo.Campaign)
	}()
	go func() {
		defer wg.Done()
		parked, pErr = o.byCampaign(ctx, o.topo.ParkedStream, o.topo.ParkedSubjects(), o.parkedCampaign)
	}()
	go func() { defer wg.Done(); states, unreadable, kvE = o.states(ctx) }()
	wg.Wait()
	if err := errors.Join(askErr, qErr, pErr, kvE); err != nil {
		return nil, err
	}
	for name, s := range states {
		p := get(name)
		p.State, p.HasState = s, true
	}
	for name, why := range unreadable {
		p := get(name)
		p.HasState, p.Invalid = true, why
	}
	perCampaign := map[string][]campaign.Report{}
	for _, w := range reports {
		for _, r := range w.Campaigns {
			if campaign.ValidName(r.Campaign) == nil {
				perCampaign[r.Campaign] = append(perCampaign[r.Campaign], r)
			}
		}
	}
	for name, n := range queued {
		get(name).Queued = n
	}
	for name, n := range parked {
		get(name).Parked = n
	}
	for name, rs := range perCampaign {
		p := get(name)
		merge(p, rs)
	}
	out := make([]*Progress, 0, len(by))
	for _, p := range by {
		p.Workers = len(reports)
		if p.Totals.FailedBy == nil {
			p.Totals.FailedBy = map[string]int{}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Campaign < out[j].Campaign })
	return out, nil
}

// states are every campaign's stored state, and why those that cannot be read
// were not taken.
func (o *Ops) states(ctx context.Context) (map[string]campaign.State, map[string]string, error) {
	kv, err := o.bucket(ctx)
	if err != nil {
		return nil, nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = lister.Stop() }()
	states, unreadable := map[string]campaign.State{}, map[string]string{}
	for k := range lister.Keys() {
		s, _, err := state(ctx, kv, k)
		if err != nil {
			unreadable[k] = err.Error()
			continue
		}
		states[k] = s
	}
	return states, unreadable, nil
}

// byCampaign counts the messages of stream under filter by campaign.
func (o *Ops) byCampaign(ctx context.Context, streamName, filter string, campaignOf func(string) string) (map[string]int, error) {
	s, err := o.js.Stream(ctx, streamName)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for subject, n := range info.State.Subjects {
		if name := campaignOf(subject); name != "" && campaign.ValidName(name) == nil && !o.topo.IsAdmin(subject) {
			out[name] += int(n)
		}
	}
	return out, nil
}

// parkedCampaign is the campaign of a parked job's subject.
func (o *Ops) parkedCampaign(subject string) string {
	rest, ok := strings.CutPrefix(subject, o.topo.Root+".parked.")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, ".")
	return name
}
