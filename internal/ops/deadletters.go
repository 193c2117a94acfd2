package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// DeadLetter is one letter of the dead-letter stream as operators see it.
type DeadLetter struct {
	Seq        uint64 `json:"seq"`
	JobID      string `json:"jobId"`
	Reason     string `json:"reason"` // rejected, failed or stopped
	Error      string `json:"error"`
	Subject    string `json:"subject"`            // where the job came from
	Campaign   string `json:"campaign,omitempty"` // the subject's campaign; none for event jobs
	Deliveries int    `json:"deliveries"`
	Targets    int    `json:"targets"` // targets in the letter (0 when it is not a job)
	At         string `json:"at"`
	// Replayable: Replay without force would publish it again; when not,
	// NotReplayable says why.
	Replayable    bool   `json:"replayable"`
	NotReplayable string `json:"notReplayable,omitempty"`
	Body          []byte `json:"-"` // the job as received, or with only its failed targets: template values, never shown as is
	// BodyBytes is set when the letter was too big to store whole: Body is a
	// prefix of a body this long (never replayed).
	BodyBytes int `json:"bodyBytes,omitempty"`
}

// Filter chooses dead letters. Campaign, Reason and ErrorContains (a
// case-insensitive part of the error) must all match when set.
type Filter struct {
	Campaign      string
	Reason        string
	ErrorContains string
	Before        uint64 // a page: only letters with seq < Before; 0 from the newest
	Limit         int    // letters in a page; 0 is DefaultLimit, at most MaxLimit
}

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
	// ScanCap bounds the sequences one filtered page looks at, so that a filter
	// that matches little never reads the whole stream in one request; the page
	// then says Capped and Next goes on from where it stopped.
	ScanCap = 20000
)

// Page is one page of dead letters, newest first.
type Page struct {
	Letters []DeadLetter `json:"letters"`
	Next    uint64       `json:"next"`    // the next page's Before; 0 when nothing older is left
	Total   uint64       `json:"total"`   // letters in the stream, whatever the filter
	Scanned uint64       `json:"scanned"` // sequences looked at for this page
	Capped  bool         `json:"capped"`  // the scan stopped at ScanCap before the page was full
}

// Sentinel errors of dead letters beside those of errors.go.
var (
	// ErrRejected: a rejected job's letter is not replayed: it would be rejected again.
	ErrRejected = errors.New("the job was rejected: fix it and publish it again")
	// ErrTruncated: the letter keeps only a prefix of its job (it was too big
	// to store whole): there is no job to replay.
	ErrTruncated = errors.New("the letter keeps only a prefix of its job")
	// ErrNoFilter: a purge must name a campaign, a reason or an error.
	ErrNoFilter = errors.New("no filter: name a campaign, a reason or an error")
)

// canceledError is the error of the targets a canceled campaign did not send;
// ops_test holds it equal to the pipeline's.
var canceledError = ErrCanceled.Error()

// callTimeout bounds each request to NATS.
const callTimeout = 10 * time.Second

// getters is how many single-letter reads are in flight at once: one read is a
// round trip, and a page of 50 read one after the other waits 50 of them.
const getters = 16

func (f Filter) filtered() bool { return f.Campaign != "" || f.Reason != "" || f.ErrorContains != "" }

func (f Filter) match(d *wire.DeadLetter, camp string) bool {
	return (f.Campaign == "" || camp == f.Campaign) && (f.Reason == "" || d.Reason == f.Reason) &&
		(f.ErrorContains == "" || strings.Contains(strings.ToLower(d.Error), strings.ToLower(f.ErrorContains)))
}

func (o *Ops) dlq(ctx context.Context) (jetstream.Stream, error) {
	return o.stream(ctx, o.topo.DLQStream)
}

// DeadLetters is one page of dead letters, newest first. It reads backwards by
// sequence from the stream's last one (or f.Before), a window at a time, never
// the whole stream: a page of 50 unfiltered letters is 50 reads. A filtered
// page looks at ScanCap sequences at most.
func (o *Ops) DeadLetters(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	stream, err := o.dlq(ctx)
	if err != nil {
		return Page{}, err
	}
	page := Page{Letters: []DeadLetter{}}
	err = o.scan(ctx, stream, f.Before, func(first uint64, st jetstream.StreamState) uint64 {
		page.Total = st.Msgs
		if !f.filtered() {
			return uint64(f.Limit - len(page.Letters))
		}
		return 500
	}, func(d *wire.DeadLetter, seq uint64) bool {
		page.Scanned++
		if d != nil && f.match(d, o.topo.Campaign(d.Subject)) {
			page.Letters = append(page.Letters, o.view(*d))
			if len(page.Letters) == f.Limit {
				page.Next = seq
				return false
			}
		}
		if page.Scanned >= ScanCap {
			page.Capped, page.Next = true, seq
			return false
		}
		return true
	})
	if err != nil {
		return Page{}, err
	}
	if page.Next != 0 && page.Next <= stream.CachedInfo().State.FirstSeq {
		page.Next, page.Capped = 0, false
	}
	states := o.stateCache(ctx)
	for i := range page.Letters {
		o.judge(&page.Letters[i], states)
	}
	return page, nil
}

// scan reads the letters with seq < before (0: all), newest first, a window at
// a time, and gives each sequence to take with its letter (nil when it holds
// none), until take says stop or the first sequence is passed. window says how many sequences the next window reads.
func (o *Ops) scan(ctx context.Context, stream jetstream.Stream, before uint64,
	window func(first uint64, st jetstream.StreamState) uint64, take func(d *wire.DeadLetter, seq uint64) bool) error {
	ictx, cancel := context.WithTimeout(ctx, callTimeout)
	info, err := stream.Info(ictx)
	cancel()
	if err != nil {
		return err
	}
	st := info.State
	if st.Msgs == 0 {
		return nil
	}
	hi := st.LastSeq
	if before != 0 && before-1 < hi {
		hi = before - 1
	}
	for hi >= st.FirstSeq && hi > 0 {
		n := max(window(st.FirstSeq, st), 1)
		lo := st.FirstSeq
		if hi-lo+1 > n {
			lo = hi - n + 1
		}
		letters, err := o.read(ctx, stream, lo, hi)
		if err != nil {
			return err
		}
		for i := range letters {
			if !take(letters[i], hi-uint64(i)) {
				return nil
			}
		}
		hi = lo - 1
	}
	return nil
}

// read gets the letters at hi down to lo, getters at a time; a sequence that
// holds none (deleted, replayed, expired) is nil.
func (o *Ops) read(ctx context.Context, stream jetstream.Stream, lo, hi uint64) ([]*wire.DeadLetter, error) {
	out := make([]*wire.DeadLetter, hi-lo+1)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan uint64)
	)
	for range min(getters, len(out)) {
		wg.Go(func() {
			for seq := range next {
				m, err := stream.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				if err != nil {
					mu.Lock()
					first = cmpErr(first, fmt.Errorf("dead letter %d: %w", seq, err))
					mu.Unlock()
					cancel()
					continue
				}
				d := wire.DecodeDeadLetter(m.Sequence, m.Time, m.Header, m.Data)
				out[hi-seq] = &d
			}
		})
	}
	for seq := hi; seq >= lo && seq > 0; seq-- {
		if ctx.Err() != nil {
			break
		}
		next <- seq
	}
	close(next)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, ctx.Err()
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// view is the stored letter as operators see it (Replayable is judged apart).
func (o *Ops) view(w wire.DeadLetter) DeadLetter {
	d := DeadLetter{Seq: w.Seq, JobID: w.JobID, Reason: w.Reason, Error: w.Error, Subject: w.Subject,
		Campaign: o.topo.Campaign(w.Subject), Deliveries: int(w.Deliveries), Body: w.Body}
	if w.Truncated() {
		d.BodyBytes = w.BodyBytes
	}
	if !w.At.IsZero() {
		d.At = w.At.UTC().Format(time.RFC3339)
	}
	if a, err := job.DecodeAdmin(w.Body); err == nil && a.Action != "" {
		d.Targets = a.Units()
	} else if j, err := job.Decode(w.Body); err == nil {
		d.Targets = j.TargetCount()
	}
	return d
}

// states is each campaign's control state, read once per call as needed.
type states struct {
	o    *Ops
	ctx  context.Context
	kv   jetstream.KeyValue // nil: no bucket, every campaign runs
	seen map[string]string
}

func (o *Ops) stateCache(ctx context.Context) *states {
	s := &states{o: o, ctx: ctx, seen: map[string]string{}}
	kctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if kv, err := o.js.KeyValue(kctx, o.topo.CampaignsBucket); err == nil {
		s.kv = kv
	}
	return s
}

// state is the campaign's state as the workers read it: no key, or a value
// they cannot read, is running.
func (s *states) state(name string) string {
	if st, ok := s.seen[name]; ok {
		return st
	}
	st := campaign.Running
	if s.kv != nil {
		ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
		if e, err := s.kv.Get(ctx, name); err == nil {
			if v, err := campaign.Decode(e.Value()); err == nil {
				st = v.State
			}
		}
		cancel()
	}
	s.seen[name] = st
	return st
}

// refusal is why Replay without force does not replay d, or nil.
func (s *states) refusal(d *DeadLetter, force bool) error {
	switch {
	case d.Reason == wire.ReasonRejected:
		return fmt.Errorf("%w (%s)", ErrRejected, job.Clip(d.Error))
	case d.BodyBytes > 0:
		return fmt.Errorf("%w (%d of %d bytes)", ErrTruncated, len(d.Body), d.BodyBytes)
	case force:
		return nil
	case strings.Contains(d.Error, canceledError):
		return fmt.Errorf("%w: its targets were not sent because their campaign %s was canceled (--force replays it)", ErrCanceled, d.Campaign)
	case d.Campaign != "" && s.state(d.Campaign) == campaign.Canceled:
		return fmt.Errorf("%w: campaign %s is canceled (--force replays it)", ErrCanceled, d.Campaign)
	}
	return nil
}

func (o *Ops) judge(d *DeadLetter, s *states) {
	err := s.refusal(d, false)
	d.Replayable = err == nil
	if err != nil {
		d.NotReplayable = err.Error()
	}
}

// DeadLetter is the dead letter at seq.
func (o *Ops) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	stream, err := o.dlq(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	d, err := o.get(ctx, stream, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	o.judge(&d, o.stateCache(ctx))
	return d, nil
}

func (o *Ops) get(ctx context.Context, stream jetstream.Stream, seq uint64) (DeadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return o.view(wire.DecodeDeadLetter(m.Sequence, m.Time, m.Header, m.Data)), nil
}

// Select names the letters to replay: by sequence, by job id (every letter of
// that job), or all of them.
type Select struct {
	Seqs   []uint64
	JobIDs []string
	All    bool
}

// Replayed is what became of one letter a Replay selected.
type Replayed struct {
	Letter  DeadLetter
	NewID   string // the replay's job id
	Subject string // where it went
	Targets int
	// Err is why the letter was not replayed (nil when it was): ErrNotFound,
	// ErrRejected, ErrCanceled, ErrUnreadable.
	Err error
}

// ReplayDeadLetters publishes the selected letters again as new jobs, under ids derived
// from the old ones (ReplayID), and removes them from the stream. A rejected
// job's letter is never replayed; a canceled campaign's only with force. The
// error is for a failure to reach NATS; each letter's fate is in its Replayed.
func (o *Ops) ReplayDeadLetters(ctx context.Context, sel Select, force bool) ([]Replayed, error) {
	stream, err := o.dlq(ctx)
	if err != nil {
		return nil, err
	}
	states := o.stateCache(ctx)
	var out []Replayed
	one := func(d DeadLetter) error {
		r, err := o.replayOne(ctx, stream, d, states, force)
		out = append(out, r)
		return err
	}
	for _, seq := range sel.Seqs {
		d, err := o.get(ctx, stream, seq)
		if errors.Is(err, ErrNotFound) {
			out = append(out, Replayed{Letter: DeadLetter{Seq: seq}, Err: err})
			continue
		}
		if err != nil {
			return out, err
		}
		if err := one(d); err != nil {
			return out, err
		}
	}
	for _, id := range sel.JobIDs {
		found := 0
		err := o.ofJob(ctx, stream, id, func(d DeadLetter) error { found++; return one(d) })
		if err != nil {
			return out, err
		}
		if found == 0 {
			out = append(out, Replayed{Letter: DeadLetter{JobID: id}, Err: fmt.Errorf("no dead letter of job %q: %w", job.Clip(id), ErrNotFound)})
		}
	}
	if sel.All {
		var failed error
		err := o.scan(ctx, stream, 0, func(uint64, jetstream.StreamState) uint64 { return 500 }, func(w *wire.DeadLetter, _ uint64) bool {
			if w != nil {
				failed = one(o.view(*w))
			}
			return failed == nil
		})
		if err = cmpErr(failed, err); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ofJob gives each letter of job id, oldest first: its letters are on
// <root>.dlq.<id>, found one after the other by subject.
func (o *Ops) ofJob(ctx context.Context, stream jetstream.Stream, id string, f func(DeadLetter) error) error {
	if !job.ValidJobID(id) {
		return nil
	}
	subject := o.topo.DLQSubject(id)
	for seq := uint64(1); ; {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		m, err := stream.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(subject))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dead letters of job %s: %w", id, err)
		}
		if err := f(o.view(wire.DecodeDeadLetter(m.Sequence, m.Time, m.Header, m.Data))); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
}

func (o *Ops) replayOne(ctx context.Context, stream jetstream.Stream, d DeadLetter, states *states, force bool) (Replayed, error) {
	r := Replayed{Letter: d, NewID: ReplayID(d.JobID, d.Seq)}
	if r.Err = states.refusal(&d, force); r.Err != nil {
		return r, nil
	}
	body, targets, err := o.replayBody(d, r.NewID)
	if err != nil {
		r.Err = fmt.Errorf("%w: %v", ErrUnreadable, err)
		return r, nil
	}
	r.Targets, r.Subject = targets, d.Subject
	if o.topo.Lane(r.Subject) == "" {
		r.Subject = o.topo.EventsSubject("replay")
	}
	pctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err = o.js.PublishMsg(pctx, &nats.Msg{Subject: r.Subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{r.NewID}}})
	if err == nil {
		err = stream.DeleteMsg(pctx, d.Seq)
	}
	if err != nil {
		return r, fmt.Errorf("replaying %s: %w", d.JobID, err)
	}
	return r, nil
}

// replayBody is the letter as a job again under newID: a push job, or an admin
// job when it came on an admin subject.
func (o *Ops) replayBody(d DeadLetter, newID string) ([]byte, int, error) {
	if o.topo.IsAdmin(d.Subject) {
		a, err := job.DecodeAdmin(d.Body)
		if err != nil {
			return nil, 0, err
		}
		a.JobID = newID
		body, err := a.Encode()
		return body, a.Units(), err
	}
	j, err := job.Decode(d.Body)
	if err != nil {
		return nil, 0, err
	}
	j.JobID = newID
	body, err := j.Encode()
	return body, j.TargetCount(), err
}

// ReplayID derives a replay's job id from the old one and the dead letter's
// sequence: the same dead letter always gives the same id, so a replay run twice
// is dropped by the job stream's duplicate window.
func ReplayID(old string, seq uint64) string {
	id := old + ".replay" + strconv.FormatUint(seq, 10)
	if job.ValidJobID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(old))
	return "replay-" + hex.EncodeToString(sum[:8]) + ".replay" + strconv.FormatUint(seq, 10)
}

// DeleteDeadLetter removes the dead letter at seq.
func (o *Ops) DeleteDeadLetter(ctx context.Context, seq uint64) error {
	stream, err := o.dlq(ctx)
	if err != nil {
		return err
	}
	if _, err := o.get(ctx, stream, seq); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("deleting dead letter %d: %w", seq, err)
	}
	return nil
}

// PurgeDeadLetters removes every dead letter f matches (f.Before and f.Limit aside) and
// says how many. It reads the whole stream, a window at a time.
func (o *Ops) PurgeDeadLetters(ctx context.Context, f Filter) (int, error) {
	if !f.filtered() {
		return 0, ErrNoFilter
	}
	stream, err := o.dlq(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var failed error
	err = o.scan(ctx, stream, 0, func(uint64, jetstream.StreamState) uint64 { return 500 }, func(d *wire.DeadLetter, _ uint64) bool {
		if d == nil || !f.match(d, o.topo.Campaign(d.Subject)) {
			return true
		}
		dctx, cancel := context.WithTimeout(ctx, callTimeout)
		failed = stream.DeleteMsg(dctx, d.Seq)
		cancel()
		if errors.Is(failed, jetstream.ErrMsgNotFound) {
			failed = nil // gone meanwhile: replayed or expired
			return true
		}
		if failed != nil {
			failed = fmt.Errorf("deleting dead letter %d: %w", d.Seq, failed)
			return false
		}
		n++
		return true
	})
	return n, cmpErr(failed, err)
}
