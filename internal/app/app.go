// Package app wires one worker together: the JetStream topology, the dedupe store,
// the shared rate limit, the mPaaS client, the processor and the consumer. The
// worker command and the tests start workers through it, so the tests run what
// ships.
package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
	"github.com/mpaas-push/pushworker/internal/worker"
)

// Options of a worker.
type Options struct {
	NATS   *nats.Conn
	Redis  redis.UniversalClient // nil: in-memory dedupe and rate limit (dev mode only)
	Pusher worker.Pusher

	RateLimit    int     // mPaaS calls per second, shared by every worker on the same Redis: the ceiling
	RateBurst    int     // 0: ratelimit.DefaultBurst
	RateAdaptive bool    // follow mPaaS's throttling below the ceiling
	RateFloor    int     // the adaptive rate's lowest value
	EventsShare  float64 // of the rate kept for the default lane while it has calls
	RedisPrefix  string  // prefix of every Redis key; default "pushworker:"
	SentTTL      time.Duration
	LeaseTTL     time.Duration

	Consumer  consumer.Config
	Processor worker.Config

	Log       *zap.Logger
	Observers Observers
}

// Observers receive metrics; any may be nil.
type Observers struct {
	Worker   worker.Observer
	Consumer consumer.Observer
	Gate     func(cause string, open bool) // open: the problem started
	Rate     func(perSecond float64)       // the shared rate changed
}

// Worker is one running worker.
type Worker struct {
	opts    Options
	gate    *worker.Gate
	limiter worker.Limiter
	disp    *ratelimit.Redis
	cons    *consumer.Consumer
	store   dedupe.Store
}

// DefaultRedisPrefix prefixes every key the worker writes.
const DefaultRedisPrefix = "pushworker:"

// New sets up the streams and consumers and prepares the parts; it does not fetch.
func New(ctx context.Context, o Options) (*Worker, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.RedisPrefix == "" {
		o.RedisPrefix = DefaultRedisPrefix
	}
	if o.RateLimit <= 0 {
		return nil, fmt.Errorf("the rate limit must be positive, not %d", o.RateLimit)
	}
	w := &Worker{opts: o}
	log := o.Log
	w.gate = worker.NewGate(
		func(cause string, err error) {
			log.Warn("paused: waiting for "+cause, zap.String("cause", cause), zap.Error(err))
			if o.Observers.Gate != nil {
				o.Observers.Gate(cause, true)
			}
		},
		func(cause string) {
			log.Info("resumed: "+cause+" is back", zap.String("cause", cause))
			if o.Observers.Gate != nil {
				o.Observers.Gate(cause, false)
			}
		})

	if o.Redis != nil {
		store := dedupe.NewRedis(o.Redis, dedupe.RedisConfig{Prefix: o.RedisPrefix + "dedupe:", SentTTL: o.SentTTL, LeaseTTL: o.LeaseTTL})
		if err := store.Load(ctx); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		w.store = store
		w.disp = ratelimit.NewRedis(o.Redis, o.RedisPrefix+"rate:mpaas", o.RateLimit, o.RateBurst)
		w.disp.ReserveForEvents(o.EventsShare)
		if o.RateAdaptive {
			w.disp.Adapt(o.RateFloor, func(rate float64) {
				log.Info("shared rate changed", zap.Float64("calls_per_second", rate))
				if o.Observers.Rate != nil {
					o.Observers.Rate(rate)
				}
			})
		}
		w.limiter = w.disp
	} else {
		w.store = dedupe.NewMemory(o.SentTTL, o.LeaseTTL)
		w.limiter = ratelimit.NewMemory(o.RateLimit, o.RateBurst)
	}

	js, err := jetstream.New(o.NATS)
	if err != nil {
		return nil, err
	}
	cc := o.Consumer
	if cc.Topology.Root == "" {
		cc.Topology = consumer.DefaultTopology()
	}
	if cc.Limits.MaxDeliver == 0 {
		cc.Limits = consumer.DefaultLimits()
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defaultLane, bulkLane, err := consumer.Ensure(setupCtx, js, cc.Topology, cc.Limits)
	if err != nil {
		return nil, err
	}
	proc := worker.New(o.Processor, w.store, w.limiter, o.Pusher, w.gate, log, o.Observers.Worker)
	w.cons = consumer.New(cc, js, defaultLane, bulkLane, proc, w.gate, log, o.Observers.Consumer)
	return w, nil
}

// Gate tells what the worker waits for; readiness reads it.
func (w *Worker) Gate() *worker.Gate { return w.gate }

// Run works until ctx ends, then stops fetching, finishes or hands back what is
// in flight, and returns.
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.monitor(ctx)
	}()
	limiterCtx, stopLimiter := context.WithCancel(context.WithoutCancel(ctx))
	if w.disp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.disp.Run(limiterCtx)
		}()
	}
	w.cons.Run(ctx)
	stopLimiter() // only once no job needs a slot any more
	wg.Wait()
}

// MonitorEvery is how often the worker checks Redis and NATS while idle, so that
// readiness tells the truth before a job finds out.
const MonitorEvery = 2 * time.Second

func (w *Worker) monitor(ctx context.Context) {
	t := time.NewTicker(MonitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.opts.Redis != nil {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := w.opts.Redis.Ping(pctx).Err()
			cancel()
			if err != nil && ctx.Err() == nil {
				w.gate.Set(worker.CauseRedis, err)
			} else if err == nil {
				w.gate.Clear(worker.CauseRedis)
			}
		}
		if w.opts.NATS.IsConnected() {
			w.gate.Clear(consumer.CauseNATS)
		} else {
			w.gate.Set(consumer.CauseNATS, fmt.Errorf("NATS connection %s", w.opts.NATS.Status()))
		}
	}
}
