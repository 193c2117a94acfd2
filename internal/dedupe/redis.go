package dedupe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Each script touches one key, so a pipeline of them works on Redis Cluster too
// (a multi-key script would fail there with CROSSSLOT).
var (
	// KEYS[1] pair; ARGV job id, message, token, lease ms. Answers C (claimed), T
	// (taken over from an earlier delivery of the same message) or the value
	// another holder left.
	claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local lease = 'L|' .. ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3]
if not v then
  redis.call('SET', KEYS[1], lease, 'PX', ARGV[4])
  return 'C'
end
local kind, job, msg = string.match(v, '^([LS])|([^|]*)|([^|]*)')
if kind == 'L' and job == ARGV[1] and msg == ARGV[2] then
  redis.call('SET', KEYS[1], lease, 'PX', ARGV[4])
  return 'T'
end
return v`)

	// KEYS[1] pair; ARGV lease value. Deletes the key only if this delivery holds it.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// RedisConfig of a Redis store.
type RedisConfig struct {
	Prefix   string        // key prefix; default "pushworker:dedupe:"
	SentTTL  time.Duration // how long a sent mark is kept; default 72 h
	LeaseTTL time.Duration // how long a claim holds without a mark; default 5 min
}

// Redis is a Store on plain Redis, Sentinel or Cluster (go-redis's universal client).
type Redis struct {
	rdb redis.UniversalClient
	cfg RedisConfig
}

// NewRedis makes a store. Call Load before use to load the scripts.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = "pushworker:dedupe:"
	}
	if cfg.SentTTL <= 0 {
		cfg.SentTTL = DefaultSentTTL
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	return &Redis{rdb: rdb, cfg: cfg}
}

// Load loads the scripts into Redis's script cache (on every node of a cluster).
func (r *Redis) Load(ctx context.Context) error {
	for _, s := range []*redis.Script{claimScript, releaseScript} {
		if err := r.loadOne(ctx, s); err != nil {
			return fmt.Errorf("dedupe: %w: loading scripts: %w", ErrUnavailable, err)
		}
	}
	return nil
}

func (r *Redis) loadOne(ctx context.Context, s *redis.Script) error {
	if c, ok := r.rdb.(*redis.ClusterClient); ok {
		return c.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			return s.Load(ctx, shard).Err()
		})
	}
	return s.Load(ctx, r.rdb).Err()
}

// Claim claims keys. The common case, a free pair, costs one SET NX per key in one
// pipelined round trip; only the keys already held (a duplicate, an earlier
// delivery, a takeover) go through the claim script, in a second round trip.
// Scripts cost Redis several times a plain command.
func (r *Redis) Claim(ctx context.Context, h Holder, keys []Key) ([]Claim, error) {
	lease := leaseValue(h)
	names := make([]string, len(keys))
	pipe := r.rdb.Pipeline()
	sets := make([]*redis.StatusCmd, len(keys))
	for i, k := range keys {
		names[i] = hashKey(r.cfg.Prefix, k)
		sets[i] = pipe.SetArgs(ctx, names[i], lease, redis.SetArgs{Mode: "NX", TTL: r.cfg.LeaseTTL})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dedupe: %w: %w", ErrUnavailable, err)
	}
	claims := make([]Claim, len(keys))
	var held []int
	for i, c := range sets {
		if c.Err() != nil {
			held = append(held, i)
		}
	}
	if len(held) == 0 {
		return claims, nil
	}
	heldKeys := make([]Key, len(held))
	for n, i := range held {
		heldKeys[n] = keys[i]
	}
	leaseMS := r.cfg.LeaseTTL.Milliseconds()
	cmds, err := r.pipeline(ctx, claimScript, heldKeys, func(redis.Pipeliner, Key) []any { return []any{h.JobID, h.Message, h.Token, leaseMS} })
	if err != nil {
		return nil, err
	}
	for n, c := range cmds {
		v, err := c.Text()
		if err != nil {
			return nil, fmt.Errorf("dedupe: %w: claim answer: %w", ErrUnavailable, err)
		}
		claims[held[n]] = withSelf(parseClaim(v), h.JobID)
	}
	return claims, nil
}

// MarkSent marks keys sent in one pipelined round trip of plain SETs. A pair that
// two jobs both sent (a counted duplicate) keeps the later mark.
func (r *Redis) MarkSent(ctx context.Context, h Holder, keys []Key, m Mark) error {
	v := sentValue(h.JobID, m)
	pipe := r.rdb.Pipeline()
	for _, k := range keys {
		pipe.Set(ctx, hashKey(r.cfg.Prefix, k), v, r.cfg.SentTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dedupe: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Release drops this delivery's leases on keys in one pipelined round trip.
func (r *Redis) Release(ctx context.Context, h Holder, keys []Key) error {
	v := leaseValue(h)
	_, err := r.pipeline(ctx, releaseScript, keys, func(redis.Pipeliner, Key) []any { return []any{v} })
	return err
}

// pipeline runs script once per key in one round trip. Scripts in a pipeline are
// sent as EVALSHA and do not reload themselves: after NOSCRIPT (Redis restarted
// or flushed its script cache) it loads them and runs the pipeline once more.
func (r *Redis) pipeline(ctx context.Context, s *redis.Script, keys []Key, args func(redis.Pipeliner, Key) []any) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		for i, k := range keys {
			cmds[i] = s.EvalSha(ctx, pipe, []string{hashKey(r.cfg.Prefix, k)}, args(pipe, k)...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		if attempt == 0 && isNoScript(err) {
			if lerr := r.Load(ctx); lerr != nil {
				return nil, lerr
			}
			continue
		}
		return nil, fmt.Errorf("dedupe: %w: %w", ErrUnavailable, err)
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
