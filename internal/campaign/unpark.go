package campaign

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/topology"
)

// Unparker carries out resumes and cancels, whoever wrote them: whenever this
// worker sees a campaign that is not paused (running again, canceled, its key
// deleted), it moves the campaign's parked jobs back to the job stream, where a
// running campaign's jobs run and a canceled one's end canceled. No timing guess
// is needed: a worker parks only while it sees the campaign paused, and sweeps
// after it applies the change that ends the pause, so it also brings back the
// jobs it parked late. Each job goes back once: its Nats-Msg-Id names the parked
// copy, so two workers sweeping at once store it once.
type Unparker struct {
	js     jetstream.JetStream
	topo   topology.Topology
	states *Watcher
	log    *zap.Logger
	// Every is how often a worker looks for parked jobs of campaigns that are not
	// paused (left by a worker that died between parking and its sweep).
	Every time.Duration

	mu   sync.Mutex
	want map[string]bool
	wake chan struct{}
}

// DefaultUnparkEvery is Unparker.Every's default.
const DefaultUnparkEvery = 30 * time.Second

// NewUnparker makes the unparker of the campaigns that w watches; it follows
// w's changes from now on. Run does the work.
func NewUnparker(js jetstream.JetStream, topo topology.Topology, w *Watcher, log *zap.Logger) *Unparker {
	u := &Unparker{js: js, topo: topo.OrDefault(), states: w, log: log, Every: DefaultUnparkEvery,
		want: map[string]bool{}, wake: make(chan struct{}, 1)}
	w.OnChange(func(name string, s State) {
		if s.State != Paused {
			u.request(name)
		}
	})
	return u
}

// Parked is told that this worker parked a job of the campaign: when the
// campaign is no longer paused by now, the job goes back at once.
func (u *Unparker) Parked(name string) {
	if name != "" && u.states.Get(name).State != Paused {
		u.request(name)
	}
}

func (u *Unparker) request(name string) {
	u.mu.Lock()
	u.want[name] = true
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Run sweeps on request, and every Every the campaigns that may have parked
// jobs left, until ctx ends.
func (u *Unparker) Run(ctx context.Context) {
	t := time.NewTicker(u.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		case <-t.C:
			u.lookForLeftovers(ctx)
		}
		u.mu.Lock()
		names := u.want
		u.want = map[string]bool{}
		u.mu.Unlock()
		for name := range names {
			if err := u.sweep(ctx, name); err != nil && ctx.Err() == nil {
				u.log.Warn("parked jobs not moved back yet: trying again", zap.String("campaign", name), zap.Error(err))
				u.retryLater(ctx, name)
			}
		}
	}
}

// retryLater asks for another sweep of name in a second.
func (u *Unparker) retryLater(ctx context.Context, name string) {
	time.AfterFunc(time.Second, func() {
		if ctx.Err() == nil {
			u.request(name)
		}
	})
}

// lookForLeftovers asks for a sweep of every campaign this worker knows as not
// paused that has parked jobs. One stream read answers the common case: nothing
// is parked.
func (u *Unparker) lookForLeftovers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := u.js.Stream(ctx, u.topo.ParkedStream)
	if err != nil {
		return
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs == 0 {
		return
	}
	for name, s := range u.states.Known() {
		if s.State == Paused {
			continue
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(u.topo.CampaignParked(name)))
		if err == nil && len(info.State.Subjects) > 0 {
			u.request(name)
		}
	}
}

// sweepBatch is how many parked jobs one fetch takes.
const sweepBatch = 256

// sweep moves name's parked jobs back while the campaign is not paused. It
// reads them through a consumer of its own, which counts them when it is made.
func (u *Unparker) sweep(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	stream, err := u.js.Stream(ctx, u.topo.ParkedStream)
	if err != nil {
		return err
	}
	c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubject: u.topo.CampaignParked(name),
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, MemoryStorage: true,
		Description: "unparking campaign " + name})
	if err != nil {
		return err
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer dcancel()
		_ = stream.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	pending := c.CachedInfo().NumPending
	moved, seen := 0, uint64(0)
	for seen < pending {
		if u.states.Get(name).State == Paused {
			break // paused again: the rest wait for the next resume
		}
		batch, err := c.Fetch(int(min(pending-seen, sweepBatch)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			fresh, err := u.unpark(ctx, stream, name, m)
			if err != nil {
				return err
			}
			if fresh {
				moved++
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			break // removed meanwhile by another worker's sweep
		}
		seen += uint64(n)
	}
	if moved > 0 {
		u.log.Info("parked jobs back on the job stream", zap.String("campaign", name), zap.String("state", u.states.Get(name).State),
			zap.Int("jobs", moved))
	}
	return nil
}

// unpark puts one parked job back on the subject it came on, with its job id
// and a Nats-Msg-Id that names the parked copy, then removes the copy. fresh is
// false when another worker had already put it back.
func (u *Unparker) unpark(ctx context.Context, stream jetstream.Stream, name string, m jetstream.Msg) (fresh bool, err error) {
	meta, err := m.Metadata()
	if err != nil {
		return false, err
	}
	p := wire.DecodeParked(meta.Sequence.Stream, m.Headers(), m.Data())
	subject := p.Subject
	if u.topo.Campaign(subject) != name || u.topo.IsAdmin(subject) {
		subject = u.topo.BulkSubject(name)
	}
	out := p.UnparkMsg(subject)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := u.js.PublishMsg(pctx, out)
	if err != nil {
		return false, err
	}
	if err := stream.DeleteMsg(pctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, err
	}
	return !ack.Duplicate, nil
}
