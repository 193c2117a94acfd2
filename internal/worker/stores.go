package worker

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/redisbatch"
)

// stores are what the worker keeps outside NATS: the dedupe store, the shared
// rate limit (one per credential with a credentials file: credentials.go), the
// campaigns' paces and totals. On Redis, every key under the layout of
// cfg.RedisKeys(); in dev mode, in memory.
type stores struct {
	rdb     redis.UniversalClient // nil in memory
	dedupe  dedupe.Store
	limiter pipeline.Limiter // every mPaaS call takes a slot of it
	pace    pipeline.Pacer
	totals  campaignTotals
	parts   []part // what runs for them: the shared limiter's dispenser
}

// openStores connects to Redis (or takes o.Redis) and makes the stores on it,
// or makes them in memory when there is no Redis.
func (s *Worker) openStores(ctx context.Context, o Options) (stores, error) {
	c := s.cfg
	redis.SetLogger(discardRedisLog{}) // go-redis's own logger prints to stderr; its errors reach our log through the worker
	s.metrics.Rate(float64(c.RateLimit))
	rdb := o.Redis
	if rdb == nil && c.Redis.URL == "" {
		s.log.Info("dev mode: in-memory dedupe and rate limit (REDIS_URL is unset): one worker only, nothing survives a restart")
		s.desc["redis"] = "in-memory"
		limiter, _ := s.rateLimits(nil, c.RedisKeys())
		return stores{dedupe: dedupe.NewMemory(c.SentTTL, c.LeaseTTL), limiter: limiter,
			pace: campaign.NewMemoryPace(), totals: campaign.NewMemoryTotals()}, nil
	}
	if rdb == nil {
		var err error
		if rdb, err = dial.Redis(ctx, c.Redis); err != nil {
			return stores{}, err
		}
		s.closers = append(s.closers, func() { _ = rdb.Close() })
		s.desc["redis"] = dial.RedactURL(c.Redis.URL)
	} else {
		s.desc["redis"] = "(given)"
	}
	batch := redisbatch.New(rdb) // the calls' claims and marks and the campaign totals share round trips
	keys := c.RedisKeys()
	dcfg := dedupe.RedisConfig{Prefix: keys.Dedupe, SentTTL: c.SentTTL, LeaseTTL: c.LeaseTTL, Batch: batch}
	if c.ReadOldDedupe {
		dcfg.OldPrefix = keys.OldDedupe
	}
	store := dedupe.NewRedis(rdb, dcfg)
	if err := store.Load(ctx); err != nil {
		return stores{}, fmt.Errorf("redis: %w", err)
	}
	limiter, parts := s.rateLimits(rdb, keys)
	return stores{rdb: rdb, dedupe: store, limiter: limiter, pace: campaign.NewPace(rdb, keys.Pace),
		totals: campaign.NewRedisTotals(batch, keys.Totals), parts: parts}, nil
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
