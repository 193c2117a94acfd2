package campaign

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// States tells the state of a campaign as this worker knows it now.
type States interface {
	Get(name string) State
}

// Watcher follows the bucket. Get is cheap (a map read): the pipeline asks it
// before every call.
type Watcher struct {
	kv  jetstream.KeyValue
	log *zap.Logger

	mu       sync.RWMutex
	states   map[string]State
	invalid  map[string]string // campaign → why its latest value was not taken
	ready    chan struct{}     // closed once the initial values are in
	gone     map[string]bool   // campaigns whose key was deleted: running again
	onChange []func(name string, s State)
}

// OnChange calls f after every state this worker applies (a deleted key: Running
// at no pace), in the watcher's goroutine, outside its lock. Add before Run.
func (w *Watcher) OnChange(f func(name string, s State)) { w.onChange = append(w.onChange, f) }

// Known are the campaigns the bucket has held a value for since this worker
// started (deleted ones included, as Running), with their states.
func (w *Watcher) Known() map[string]State {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make(map[string]State, len(w.states)+len(w.gone))
	for name := range w.gone {
		out[name] = State{State: Running}
	}
	for name, s := range w.states {
		out[name] = s
	}
	return out
}

// Bucket finds the control bucket, or creates it when it is missing (from any
// number of workers at once: one create wins, the others find it). A bucket
// that exists is taken as it is: workers starting together send JetStream no
// update.
func Bucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 5, Replicas: max(1, replicas),
		Description: "campaign control: key = campaign, value = {state, targetsPerSecond, reason, actor, updatedAt}"})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, name)
	}
	return kv, err
}

// NewWatcher makes a watcher of kv; Run follows it.
func NewWatcher(kv jetstream.KeyValue, log *zap.Logger) *Watcher {
	return &Watcher{kv: kv, log: log, states: map[string]State{}, invalid: map[string]string{}, gone: map[string]bool{},
		ready: make(chan struct{})}
}

// Get is name's state: Running at no pace when it has no valid value.
func (w *Watcher) Get(name string) State {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if s, ok := w.states[name]; ok {
		return s
	}
	return State{State: Running}
}

// Ready is closed once the bucket's values at start are in.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run follows the bucket until ctx ends, watching again after a lost watch.
func (w *Watcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("campaign control watch ended: watching again", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

var errWatchClosed = errors.New("the watch closed")

func (w *Watcher) watch(ctx context.Context) error {
	kw, err := w.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = kw.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-kw.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil { // the initial values are in
				w.markReady()
				continue
			}
			w.apply(e)
		}
	}
}

func (w *Watcher) markReady() {
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
}

func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	name := e.Key()
	s, changed := w.applyLocked(e)
	if !changed {
		return
	}
	for _, f := range w.onChange {
		f(name, s)
	}
}

// applyLocked takes one bucket entry and logs the transition: the state now
// in force and whether it is new.
func (w *Watcher) applyLocked(e jetstream.KeyValueEntry) (State, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := e.Key()
	from := w.stateLocked(name)
	if e.Operation() != jetstream.KeyValuePut {
		delete(w.states, name)
		delete(w.invalid, name)
		w.gone[name] = true
		w.log.Info("campaign control: state removed, the campaign runs", zap.String("campaign", name), zap.String("from", from),
			zap.Uint64("revision", e.Revision()))
		return State{State: Running}, true
	}
	s, err := Decode(e.Value())
	if err != nil {
		// A value written by hand that cannot be read: keep the last valid state.
		w.invalid[name] = err.Error()
		w.log.Error("campaign control value not taken: the campaign keeps its last valid state",
			zap.String("campaign", name), zap.String("state", from), zap.Uint64("revision", e.Revision()), zap.Error(err))
		return State{}, false
	}
	delete(w.invalid, name)
	delete(w.gone, name)
	w.states[name] = s
	w.log.Info("campaign control", zap.String("campaign", name), zap.String("from", from), zap.String("state", s.State),
		zap.Float64("targets_per_second", s.TargetsPerSecond), zap.String("actor", s.Actor), zap.String("reason", s.Reason),
		zap.Uint64("revision", e.Revision()))
	return s, true
}

func (w *Watcher) stateLocked(name string) string {
	if s, ok := w.states[name]; ok {
		return s.State
	}
	return Running
}

// Counts are the campaigns this worker knows by state, for metrics.
func (w *Watcher) Counts() map[string]int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := map[string]int{Running: 0, Paused: 0, Canceled: 0}
	for _, s := range w.states {
		out[s.State]++
	}
	return out
}
