package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/queue"
)

// ApplyWait is how long a command that moves parked jobs waits after writing the
// state: every worker applies a change within a second.
const ApplyWait = 1500 * time.Millisecond

func campaignVerb(verb string) func(fs *flag.FlagSet) command {
	return func(fs *flag.FlagSet) command {
		reason := ""
		if verb == "pause" || verb == "cancel" {
			fs.StringVar(&reason, "reason", "", "why, kept with the state (shown by status and list)")
		}
		asJSON := false
		if verb == "list" || verb == "status" {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
		watch := false
		if verb == "status" {
			fs.BoolVar(&watch, "watch", false, "redraw the status with a progress bar until the campaign is done; exit 1 if anything failed")
		}
		return command{run: func(e *env, args []string) error {
			want := 1 // NAME
			switch verb {
			case "list":
				want = 0
			case "pace":
				want = 2
			}
			if len(args) != want {
				return usageError{fmt.Sprintf("campaign %s: want %s", verb, map[int]string{0: "no argument", 1: "NAME", 2: "NAME TARGETS-PER-SECOND"}[want])}
			}
			if verb == "list" {
				return e.campaignList(asJSON)
			}
			name := args[0]
			if err := campaign.ValidName(name); err != nil {
				return usageError{strings.TrimPrefix(err.Error(), campaign.ErrInvalid.Error()+": ")}
			}
			switch verb {
			case "status":
				return e.campaignStatus(name, asJSON, watch)
			case "pace":
				pace, err := strconv.ParseFloat(args[1], 64)
				if err != nil || pace < 0 || pace != pace || pace > 1e9 {
					return usageError{fmt.Sprintf("campaign pace %s %q: TARGETS-PER-SECOND is a number ≥ 0 (0: no pace of its own)", name, args[1])}
				}
				return e.campaignPace(name, pace)
			case "delete":
				return e.campaignDelete(name)
			}
			return e.campaignSet(name, verb, reason)
		}}
	}
}

func (e *env) bucket() (jetstream.KeyValue, error) {
	kv, err := e.js.KeyValue(e.ctx, e.topo.CampaignsBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s (start a worker against this server first): %w", e.topo.CampaignsBucket, err)
	}
	return kv, nil
}

// current is the campaign's state and whether a key holds it.
func current(ctx context.Context, kv jetstream.KeyValue, name string) (campaign.State, bool, error) {
	entry, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return campaign.State{State: campaign.Running}, false, nil
	}
	if err != nil {
		return campaign.State{}, false, err
	}
	s, err := campaign.Decode(entry.Value())
	if err != nil {
		return campaign.State{}, true, fmt.Errorf("campaign %s: the stored value cannot be read (%v): set a state again, or delete it", name, err)
	}
	return s, true, nil
}

// campaignSet pauses, resumes or cancels.
func (e *env) campaignSet(name, verb, reason string) error {
	kv, err := e.bucket()
	if err != nil {
		return err
	}
	s, exists, err := current(e.ctx, kv, name)
	if err != nil && verb != "cancel" {
		return err
	}
	if !exists {
		if known, kerr := e.campaignKnown(name); kerr != nil {
			return kerr
		} else if !known {
			return usageError{fmt.Sprintf("campaign %q is unknown: no job of it is queued, parked or done (campaign list shows the known ones)", name)}
		}
	}
	if s.State == campaign.Canceled && verb != "cancel" {
		return usageError{fmt.Sprintf("campaign %s is canceled and stays so: 'enqueue campaign delete %s' removes its state first", name, name)}
	}
	s.State = map[string]string{"pause": campaign.Paused, "resume": campaign.Running, "cancel": campaign.Canceled}[verb]
	s.Reason, s.UpdatedAt = reason, time.Now().UTC()
	if _, err := kv.Put(e.ctx, name, s.Encode()); err != nil {
		return err
	}
	switch verb {
	case "pause":
		fmt.Fprintf(e.stdout, "campaign %s paused: within a second no new call of it starts; its jobs wait in %s\n", name, e.topo.ParkedStream)
		return nil
	case "resume":
		fmt.Fprintf(e.stdout, "campaign %s running\n", name)
	case "cancel":
		fmt.Fprintf(e.stdout, "campaign %s canceled: nothing more is sent; its jobs end with status canceled ('enqueue campaign delete %s' lifts it)\n", name, name)
	}
	// Parked jobs go back to the job stream: resumed, they run; canceled, the
	// workers end them as canceled. Wait until no worker parks any more.
	if !clock.Sleep(e.ctx, ApplyWait) {
		return e.ctx.Err()
	}
	n, err := e.unpark(name)
	fmt.Fprintf(e.stdout, "%d parked jobs back on the job stream\n", n)
	return err
}

// unpark moves the campaign's parked jobs back to the subjects they came on,
// each with its job id and a Nats-Msg-Id of its own, then removes them from the
// parking stream.
func (e *env) unpark(name string) (int, error) {
	stream, err := e.js.Stream(e.ctx, e.topo.ParkedStream)
	if err != nil {
		return 0, err
	}
	c, err := stream.OrderedConsumer(e.ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{e.topo.CampaignParked(name)}})
	if err != nil {
		return 0, err
	}
	moved := 0
	for {
		total, err := e.subjectCount(e.topo.ParkedStream, e.topo.CampaignParked(name))
		if err != nil || total == 0 {
			return moved, err
		}
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return moved, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := e.unparkOne(stream, name, m); err != nil {
				return moved, err
			}
			moved++
		}
		if n == 0 {
			return moved, batch.Error()
		}
	}
}

func (e *env) unparkOne(stream jetstream.Stream, name string, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	subject := m.Headers().Get(queue.HeaderSubject)
	if e.topo.Campaign(subject) != name {
		subject = e.topo.BulkSubject(name)
	}
	jobID := m.Headers().Get(queue.HeaderJobID)
	out := &nats.Msg{Subject: subject, Data: m.Data(), Header: nats.Header{}}
	out.Header.Set(queue.HeaderJobID, jobID)
	out.Header.Set(jetstream.MsgIDHeader, "unpark-"+strconv.FormatUint(meta.Sequence.Stream, 10)+"-"+jobID)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("putting back parked job %s: %w", jobID, err)
	}
	return stream.DeleteMsg(ctx, meta.Sequence.Stream)
}

// subjectCount is how many messages of stream match filter.
func (e *env) subjectCount(streamName, filter string) (int, error) {
	s, err := e.js.Stream(e.ctx, streamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(e.ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

// queued is how many of the campaign's push jobs the job stream holds (those in
// a worker's hands included: a work queue keeps a job until it is acked); its
// admin jobs are a recall's, not the campaign's.
func (e *env) queued(name string) (int, error) {
	a, err := e.subjectCount(e.topo.JobsStream, e.topo.BulkSubject(name))
	if err != nil {
		return 0, err
	}
	b, err := e.subjectCount(e.topo.JobsStream, e.topo.BulkSubject(name)+".>")
	if err != nil {
		return 0, err
	}
	admin, err := e.subjectCount(e.topo.JobsStream, e.topo.AdminSubject(name))
	return a + b - admin, err
}

// campaignKnown: a job of it is queued, parked or done.
func (e *env) campaignKnown(name string) (bool, error) {
	st, err := e.gather(name, false)
	if err != nil {
		return false, err
	}
	return st.Queued+st.InFlight+st.Parked+st.Totals.Jobs > 0, nil
}

func (e *env) campaignPace(name string, pace float64) error {
	kv, err := e.bucket()
	if err != nil {
		return err
	}
	s, _, err := current(e.ctx, kv, name)
	if err != nil {
		return err
	}
	s.TargetsPerSecond, s.UpdatedAt = pace, time.Now().UTC()
	if _, err := kv.Put(e.ctx, name, s.Encode()); err != nil {
		return err
	}
	if pace == 0 {
		fmt.Fprintf(e.stdout, "campaign %s: no pace of its own (the shared call rate still holds)\n", name)
	} else {
		fmt.Fprintf(e.stdout, "campaign %s paced at %g targets/s over all workers\n", name, pace)
	}
	return nil
}

func (e *env) campaignDelete(name string) error {
	kv, err := e.bucket()
	if err != nil {
		return err
	}
	if err := kv.Delete(e.ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "campaign %s: state removed (it runs again, at no pace of its own)\n", name)
	// Jobs parked while it was paused run again too.
	if !clock.Sleep(e.ctx, ApplyWait) {
		return e.ctx.Err()
	}
	n, err := e.unpark(name)
	if n > 0 {
		fmt.Fprintf(e.stdout, "%d parked jobs back on the job stream\n", n)
	}
	return err
}

// listed is one row of campaign list.
type listed struct {
	Name  string         `json:"name"`
	State campaign.State `json:"state"`
	Error string         `json:"error,omitempty"` // the stored value cannot be read
}

func (e *env) campaignList(asJSON bool) error {
	kv, err := e.bucket()
	if err != nil {
		return err
	}
	keys, err := kv.Keys(e.ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	sort.Strings(keys)
	rows := []listed{}
	for _, k := range keys {
		s, _, err := current(e.ctx, kv, k)
		row := listed{Name: k, State: s}
		if err != nil {
			row.Error = err.Error()
		}
		rows = append(rows, row)
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CAMPAIGN\tSTATE\tPACE (targets/s)\tSINCE\tREASON")
	for _, r := range rows {
		state, pace := r.State.State, "-"
		if r.Error != "" {
			state = "unreadable"
		}
		if r.State.TargetsPerSecond > 0 {
			pace = strconv.FormatFloat(r.State.TargetsPerSecond, 'g', -1, 64)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, state, pace, r.State.UpdatedAt.Format(time.RFC3339), r.State.Reason)
	}
	return w.Flush()
}

// progress is what campaign status shows.
type progress struct {
	Campaign         string          `json:"campaign"`
	State            campaign.State  `json:"state"`
	Invalid          string          `json:"invalid,omitempty"` // why a worker did not take the stored value
	Queued           int             `json:"queued"`            // jobs in the job stream, not yet in a worker's hands
	InFlight         int             `json:"inFlight"`
	Parked           int             `json:"parked"`
	Done             int             `json:"done"` // jobs with a result
	Totals           campaign.Totals `json:"totals"`
	Workers          int             `json:"workers"` // workers that answered
	TargetsPerSecond float64         `json:"targetsPerSecond"`
	SecondsLeft      float64         `json:"secondsLeft,omitempty"` // at that rate; estimated from the targets per done job
}

// gather reads the state, the streams and every worker's report.
func (e *env) gather(name string, needState bool) (*progress, error) {
	st := &progress{Campaign: name, State: campaign.State{State: campaign.Running}}
	if needState {
		kv, err := e.bucket()
		if err != nil {
			return nil, err
		}
		s, _, err := current(e.ctx, kv, name)
		if err != nil {
			st.Invalid = err.Error()
		} else {
			st.State = s
		}
	}
	var err error
	if st.Queued, err = e.queued(name); err != nil {
		return nil, err
	}
	if st.Parked, err = e.subjectCount(e.topo.ParkedStream, e.topo.CampaignParked(name)); err != nil {
		return nil, err
	}
	reports, err := e.reports(name)
	if err != nil {
		return nil, err
	}
	st.Workers = len(reports)
	if st.Invalid != "" && len(reports) > 0 {
		st.State = reports[0].State // what the workers keep: the last valid state
	}
	for _, r := range reports {
		st.InFlight += r.InFlight
		if r.Totals.Jobs >= st.Totals.Jobs {
			st.Totals = r.Totals
		}
		if r.Invalid != "" {
			st.Invalid = "a worker did not take the stored value: " + r.Invalid
		}
	}
	st.Queued = max(0, st.Queued-st.InFlight)
	st.Done = st.Totals.Jobs
	return st, nil
}

// reports asks every worker for the campaign's report.
func (e *env) reports(name string) ([]campaign.Report, error) {
	req, _ := json.Marshal(map[string]string{"campaign": name})
	var out []campaign.Report
	err := e.askWorkers(e.topo.CampaignStatusSubject(), req, func(data []byte) {
		var r campaign.Report
		if json.Unmarshal(data, &r) == nil {
			out = append(out, r)
		}
	})
	return out, err
}

// askWorkers sends one request to subject, which every worker answers, and
// hands each answer that comes within 300 ms to f.
func (e *env) askWorkers(subject string, req []byte, f func([]byte)) error {
	inbox := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.nc.PublishRequest(subject, inbox, req); err != nil {
		return err
	}
	for deadline := time.Now().Add(300 * time.Millisecond); ; {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return nil // the time is up
		}
		f(m.Data)
	}
}

func (e *env) campaignStatus(name string, asJSON, watch bool) error {
	prev, err := e.gather(name, true)
	if err != nil {
		return err
	}
	if !watch {
		if !clock.Sleep(e.ctx, time.Second) { // a second's progress gives the rate now
			return e.ctx.Err()
		}
		st, err := e.gather(name, true)
		if err != nil {
			return err
		}
		rate(st, prev, time.Second)
		if asJSON {
			return json.NewEncoder(e.stdout).Encode(st)
		}
		e.printStatus(st)
		return nil
	}
	return e.watchCampaign(name, prev)
}

// rate fills the targets per second between two looks, and the time left at it.
func rate(st, prev *progress, d time.Duration) {
	done := func(s *progress) int { return s.Totals.Sent + s.Totals.Duplicates + s.Totals.Failed }
	st.TargetsPerSecond = float64(done(st)-done(prev)) / d.Seconds()
	if st.TargetsPerSecond > 0 && st.Totals.Jobs > 0 {
		perJob := float64(st.Totals.Targets) / float64(st.Totals.Jobs)
		st.SecondsLeft = float64(st.Queued+st.InFlight+st.Parked) * perJob / st.TargetsPerSecond
	}
}

func (e *env) printStatus(st *progress) {
	fmt.Fprintf(e.stdout, "campaign %s: %s", st.Campaign, st.State.State)
	if st.State.TargetsPerSecond > 0 {
		fmt.Fprintf(e.stdout, ", paced at %g targets/s", st.State.TargetsPerSecond)
	}
	if st.State.Reason != "" {
		fmt.Fprintf(e.stdout, " (%s)", st.State.Reason)
	}
	fmt.Fprintln(e.stdout)
	if st.Invalid != "" {
		fmt.Fprintf(e.stdout, "  warning: %s\n", st.Invalid)
	}
	fmt.Fprintf(e.stdout, "  jobs: %d queued, %d in flight, %d parked, %d done (%d canceled); %d workers answered\n",
		st.Queued, st.InFlight, st.Parked, st.Done, st.Totals.Canceled, st.Workers)
	fmt.Fprintf(e.stdout, "  targets: %d sent, %d duplicates, %d failed\n", st.Totals.Sent, st.Totals.Duplicates, st.Totals.Failed)
	e.printFailedBy("    ", st.Totals.FailedBy)
	if t := st.Totals; t.Recalled() {
		fmt.Fprintf(e.stdout, "  recall: %d revoked, %d scheduled tasks canceled, %d calls failed\n", t.Revoked, t.CanceledScheduled, t.RecallFailed)
		e.printFailedBy("    ", t.RecallFailedBy)
	}
	fmt.Fprintf(e.stdout, "  now: %.0f targets/s", st.TargetsPerSecond)
	if st.SecondsLeft > 0 {
		fmt.Fprintf(e.stdout, ", about %s left at that rate", (time.Duration(st.SecondsLeft) * time.Second).Round(time.Second))
	}
	fmt.Fprintln(e.stdout)
}

// line is the one-line progress of a campaign.
func line(st *progress) string {
	return fmt.Sprintf("%s %s: %d/%d jobs done, %d sent, %d duplicates, %d failed, %.0f targets/s, %d queued, %d in flight, %d parked",
		st.Campaign, st.State.State, st.Done, st.Done+st.Queued+st.InFlight+st.Parked, st.Totals.Sent, st.Totals.Duplicates,
		st.Totals.Failed, st.TargetsPerSecond, st.Queued, st.InFlight, st.Parked)
}

// finished: no job queued, in flight or parked, and at least one done.
func finished(st *progress) bool { return st.Queued+st.InFlight+st.Parked == 0 && st.Done > 0 }

// watchCampaign redraws the status every second (a bar on a terminal, a line
// every 2 s otherwise) until the campaign is done.
func (e *env) watchCampaign(name string, prev *progress) error {
	f, tty := e.stdout.(*os.File)
	tty = tty && term.IsTerminal(int(f.Fd()))
	var bar *progressbar.ProgressBar
	lastLine := time.Time{}
	for {
		if !clock.Sleep(e.ctx, time.Second) {
			return e.ctx.Err()
		}
		st, err := e.gather(name, true)
		if err != nil {
			return err
		}
		rate(st, prev, time.Second)
		prev = st
		total := int64(st.Done + st.Queued + st.InFlight + st.Parked)
		if tty {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(name),
					progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth())
			}
			bar.ChangeMax64(max(total, 1))
			bar.Describe(fmt.Sprintf("%s %s · %d sent · %d failed · %.0f targets/s · jobs", name, st.State.State,
				st.Totals.Sent, st.Totals.Failed, st.TargetsPerSecond))
			_ = bar.Set(st.Done)
		} else if time.Since(lastLine) >= 2*time.Second {
			lastLine = time.Now()
			fmt.Fprintln(e.stdout, line(st))
		}
		if finished(st) {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(e.stdout)
			}
			e.printStatus(st)
			if st.Totals.Failed > 0 {
				return exitError{1}
			}
			return nil
		}
	}
}
