package worker

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/ratelimit"
)

// This file is the worker's AccessKeys: one (MPAAS_AK_ENV, MPAAS_SK_ENV, or
// dev mode's emulator key), or several from MPAAS_CREDENTIALS_FILE, each with
// its SDK client, its own shared rate limit and its metrics, shown by the
// AccessKey id's first characters (config.KeyPrefix), never the secret.

// openFleet is the mPaaS client of a credentials file: one SDK client per
// AccessKey, each call signed by the key that serves its app.
func (s *Worker) openFleet(pc push.Config) (*push.Fleet, error) {
	keys := make([]push.FleetKey, 0, len(s.cfg.Credentials))
	for _, c := range s.cfg.Credentials {
		keys = append(keys, push.FleetKey{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.Secret, AppIDs: c.AppIDs})
		s.log.Info("mPaaS credential", zap.String("credential", c.Name()), zap.Strings("apps", c.AppIDs), zap.Int("rate_limit", c.RateLimit))
	}
	return push.NewFleet(pc, keys)
}

// rateLimits are the limits every call waits on. One AccessKey: the shared
// limit under Limit. Several: each credential's limit under Credential + its
// AccessKey id (adaptive and with the events share on its own), and, when
// PUSH_RATE_LIMIT is set, the shared limit as the cap of them all. rdb nil:
// in memory (dev mode). The parts are the Redis limiters' dispensers.
func (s *Worker) rateLimits(rdb redis.UniversalClient, keys config.RedisKeys) (pipeline.Limiter, []part) {
	c := s.cfg
	if len(c.Credentials) == 0 {
		l, p := s.rateLimit(rdb, keys.Limit, c.RateLimit, c.RateBurst, true, func(rate float64) {
			s.log.Info("shared rate changed", zap.Float64("calls_per_second", rate))
			s.metrics.Rate(rate)
		})
		return counted{l, s.metrics.Credential(s.keyName, float64(c.RateLimit))}, p
	}
	var (
		total ratelimit.Limiter
		parts []part
		sum   int
	)
	if c.RateLimitSet {
		// The cap only caps: throttling is an AccessKey's, and slows its credential alone.
		var p []part
		total, p = s.rateLimit(rdb, keys.Limit, c.RateLimit, c.RateBurst, false, nil)
		parts = append(parts, p...)
	}
	apps := ratelimit.NewApps(total)
	for _, cr := range c.Credentials {
		m := s.metrics.Credential(cr.Name(), float64(cr.RateLimit))
		l, p := s.rateLimit(rdb, keys.Credential+cr.AccessKeyID, cr.RateLimit, 0, true, func(rate float64) {
			s.log.Info("credential's shared rate changed", zap.String("credential", cr.Name()), zap.Float64("calls_per_second", rate))
			m.Rate(rate)
		})
		apps.Add(counted{l, m}, cr.AppIDs...)
		parts = append(parts, p...)
		sum += cr.RateLimit
	}
	if c.RateLimitSet {
		sum = min(sum, c.RateLimit)
	}
	s.metrics.Rate(float64(sum))
	return apps, parts
}

// rateLimit is one shared limit of perSecond calls: in Redis under key, or in
// memory when rdb is nil; adaptive (when PUSH_RATE_ADAPTIVE) with onRate
// hearing its changes.
func (s *Worker) rateLimit(rdb redis.UniversalClient, key string, perSecond, burst int, adaptive bool, onRate func(float64)) (ratelimit.Limiter, []part) {
	c := s.cfg
	if rdb == nil {
		return ratelimit.NewMemory(perSecond, burst), nil
	}
	l := ratelimit.NewRedis(rdb, key, perSecond, burst)
	l.ReserveForEvents(c.EventsShare)
	if adaptive && c.RateAdaptive {
		l.Adapt(c.RateFloor, onRate)
	}
	return l, []part{l}
}

// counted is a credential's limit that counts its calls and throttled answers.
type counted struct {
	ratelimit.Limiter
	m *metrics.Credential
}

func (c counted) Wait(ctx context.Context, event bool) error {
	err := c.Limiter.Wait(ctx, event)
	if err == nil {
		c.m.Call()
	}
	return err
}

func (c counted) Throttled() {
	c.m.Throttled()
	c.Limiter.Throttled()
}
