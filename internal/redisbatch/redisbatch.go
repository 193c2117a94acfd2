// Package redisbatch sends the Redis commands of many goroutines in one pipelined
// round trip (a group commit). A caller that finds no round trip under way sends
// its own commands at once, so an idle worker waits for nothing; callers that
// arrive while one is under way queue up and go together in the next, sent by
// the first of them. Urgent callers (events) form a lane of their own: they
// never wait for the other callers' round trip, only share theirs with each
// other. No goroutine of its own: the callers take turns.
//
// Under load this turns one round trip per call into one per batch, which is
// what both the worker (fewer writes, reads and wake-ups) and Redis (fewer
// events to serve) spend most of their time on for small pipelines.
//
// It imports nothing of this project.
package redisbatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeout bounds one round trip. It is the batch's own: one caller's context
// must not fail the commands of the others that share its round trip.
const Timeout = 10 * time.Second

// Batcher queues commands for one client.
type Batcher struct {
	rdb redis.UniversalClient

	mu     sync.Mutex
	common lane // every caller but the urgent ones
	urgent lane // callers whose ctx is Urgent
}

// lane is a queue of callers that share round trips.
type lane struct {
	queue   []*op
	leading bool // a caller of the lane is sending a batch
}

type op struct {
	build    func(redis.Pipeliner)
	from, to int // its commands in the pipeline
	err      error
	done     chan bool // true: the caller sends the next batch; false: its commands ran
}

// New makes a Batcher on rdb.
func New(rdb redis.UniversalClient) *Batcher { return &Batcher{rdb: rdb} }

// Client is the client the batches go through.
func (b *Batcher) Client() redis.UniversalClient { return b.rdb }

// Do queues the commands build adds to the pipeline it is given, waits until
// they have run, and returns the first error among them other than redis.Nil
// (a key that is not there, a SET NX that did not set). Each command keeps its
// own answer: read it after Do returns. ctx only carries values (trace, logger):
// once queued, commands run to their end or to Timeout.
//
// A caller whose ctx is Urgent queues only with other urgent callers: it never
// waits for a round trip of the others under way.
func (b *Batcher) Do(ctx context.Context, build func(redis.Pipeliner)) error {
	o := &op{build: build, done: make(chan bool, 1)}
	l := &b.common
	if ctx.Value(urgentKey{}) != nil {
		l = &b.urgent
	}
	b.mu.Lock()
	l.queue = append(l.queue, o)
	if l.leading {
		b.mu.Unlock()
		if lead := <-o.done; !lead {
			return o.err
		}
		b.mu.Lock()
	}
	l.leading = true
	// This caller sends every command queued so far, its own among them.
	batch := l.queue
	l.queue = nil
	b.mu.Unlock()
	b.send(ctx, batch, o)
	b.mu.Lock()
	if len(l.queue) > 0 {
		next := l.queue[0]
		b.mu.Unlock()
		next.done <- true // it sends the commands that queued meanwhile
	} else {
		l.leading = false
		b.mu.Unlock()
	}
	return o.err
}

type urgentKey struct{}

// Urgent marks ctx so that Do with it does not wait for the round trips of
// callers without it: an event's claims and marks must not wait for a
// campaign's batch in flight, then for their own (two round trips of a loaded
// Redis instead of one). Urgent callers share round trips among themselves, so
// that many events at once cost Redis and the worker a round trip per batch,
// not one each; a lone event goes at once.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

func (b *Batcher) send(ctx context.Context, batch []*op, self *op) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	for _, o := range batch {
		o.from = pipe.Len()
		o.build(pipe)
		o.to = pipe.Len()
	}
	// Exec answers every command queued, each with its own error, and the first
	// of those errors.
	cmds, err := pipe.Exec(ctx)
	for _, o := range batch {
		if len(cmds) >= o.to {
			o.err = firstError(cmds[o.from:o.to])
		} else if err != nil {
			o.err = err
		}
		if o != self {
			o.done <- false
		}
	}
}

func firstError(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// Renewals remembers, per key, when this process last renewed something
// there (an expiry), so that it renews it at most once per interval rather
// than with every write; a renewal that failed is forgotten, so that the next
// write renews again.
type Renewals struct {
	every time.Duration
	limit int // keys remembered at most; past it all are forgotten (old hours, old campaigns)

	mu sync.Mutex
	at map[string]time.Time
}

// NewRenewals renews at most every interval per key, remembering up to limit keys.
func NewRenewals(every time.Duration, limit int) *Renewals {
	return &Renewals{every: every, limit: limit, at: map[string]time.Time{}}
}

// Due reports whether a write at now should renew key, and if so counts it renewed.
func (r *Renewals) Due(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.at[key]; ok && now.Sub(at) < r.every {
		return false
	}
	if len(r.at) >= r.limit {
		clear(r.at)
	}
	r.at[key] = now
	return true
}

// Failed forgets key's renewal: the next write renews it.
func (r *Renewals) Failed(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.at, key)
}
