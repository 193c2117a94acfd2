package dedupe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/redisbatch"
)

// Each script touches one key, so a pipeline of them works on Redis Cluster too
// (a multi-key script would fail there with CROSSSLOT).
var (
	// KEYS[1] pair; ARGV job id, message, lease value, lease ms, delivery.
	// Answers C (claimed), T (taken over from this delivery or an earlier one of
	// the same message: renewed), S (a later delivery of the same message holds
	// it: this one is superseded) or the value another holder left: a lease, or
	// the id of the call that sent the pair. A lease without a delivery number
	// (the layout before it) reads as delivery 0.
	claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 'C'
end
local job, msg, token = string.match(v, '^L|([^|]*)|([^|]*)|(.*)$')
if job == ARGV[1] and msg == ARGV[2] then
  local held = tonumber(string.match(token, '^d(%d+)%-') or '0')
  if held > tonumber(ARGV[5]) then return 'S' end
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
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
	Prefix   string              // key prefix; default DefaultPrefix
	SentTTL  time.Duration       // how long a sent mark is kept; default 72 h
	LeaseTTL time.Duration       // how long a claim holds without a mark; default 5 min
	Batch    *redisbatch.Batcher // shared with other users of the client; default one of its own

	// OldPrefix, when set, is the prefix of the layout before this one (a pair
	// under OldPrefix + 32 hex digits, its value S|job|request|attempts|data or
	// L|job|…): a claim also reads it, so that a pair sent before an upgrade is
	// not sent again. Needed for SentTTL after the upgrade.
	OldPrefix string
}

// Redis is a Store on plain Redis, Sentinel or Cluster (go-redis's universal client).
//
// A pair's key is the prefix and 12 bytes of its hash. While a delivery holds
// it, it holds the lease (job id, message, token); once sent, the id of the
// call that sent it, an integer; the call's record (job id, request id,
// attempts, data) is a field of an hourly hash (recordOf). Claims and marks of
// calls made at the same time share one round trip (redisbatch).
type Redis struct {
	rdb   redis.UniversalClient
	cfg   RedisConfig
	batch *redisbatch.Batcher

	expiries *redisbatch.Renewals // of the record hashes: set once a minute per process, not with every call
}

// NewRedis makes a store. Call Load before use to load the scripts.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.SentTTL <= 0 {
		cfg.SentTTL = DefaultSentTTL
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Batch == nil {
		cfg.Batch = redisbatch.New(rdb)
	}
	// Soon again after a Redis that lost the expiry (restarted empty); the
	// hashes of a few hours are remembered.
	return &Redis{rdb: rdb, cfg: cfg, batch: cfg.Batch, expiries: redisbatch.NewRenewals(time.Minute, 4<<idShardBits)}
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

// DefaultPrefix is the prefix of the store's keys when none is given.
const DefaultPrefix = "pushworker:d:"

// Claim claims keys. The common case, a free pair, costs one SET NX per key,
// in a round trip shared with the claims and marks of other calls; only the
// keys already held (a duplicate, an earlier delivery, a takeover) go through
// the claim script, in a second round trip, and those a call sent, through a
// read of its record. Scripts cost Redis several times a plain command.
func (r *Redis) Claim(ctx context.Context, h Holder, keys []Key) ([]Claim, error) {
	lease := leaseValue(h)
	names := make([]string, len(keys))
	sets := make([]*redis.StatusCmd, len(keys))
	for i, k := range keys {
		names[i] = hashKey(r.cfg.Prefix, k)
	}
	var old []*redis.StringCmd
	err := r.batch.Do(ctx, func(pipe redis.Pipeliner) {
		for i, name := range names {
			sets[i] = pipe.SetArgs(ctx, name, lease, redis.SetArgs{Mode: "NX", TTL: r.cfg.LeaseTTL})
		}
		if r.cfg.OldPrefix != "" {
			old = make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				old[i] = pipe.Get(ctx, oldKey(r.cfg.OldPrefix, k))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("dedupe: %w: %w", ErrUnavailable, err)
	}
	claims := make([]Claim, len(keys))
	var held []int
	var undo []string // leases just taken on pairs the old layout knows
	for i, c := range sets {
		if c.Err() != nil {
			held = append(held, i)
			continue
		}
		if old == nil {
			continue
		}
		if v, err := old[i].Result(); err == nil {
			claims[i] = withSelf(parseOld(v), h.JobID)
			undo = append(undo, names[i])
		}
	}
	if len(undo) > 0 {
		if _, err := r.pipeline(ctx, releaseScript, undo, lease); err != nil {
			return nil, err
		}
	}
	if len(held) == 0 {
		return claims, nil
	}
	heldNames := make([]string, len(held))
	for n, i := range held {
		heldNames[n] = names[i]
	}
	leaseMS := r.cfg.LeaseTTL.Milliseconds()
	cmds, err := r.pipeline(ctx, claimScript, heldNames, h.JobID, h.Message, lease, leaseMS, h.Delivery)
	if err != nil {
		return nil, err
	}
	calls := map[uint64][]int{} // call id → the claims it sent
	for n, c := range cmds {
		v, err := c.Text()
		if err != nil {
			return nil, fmt.Errorf("dedupe: %w: claim answer: %w", ErrUnavailable, err)
		}
		i := held[n]
		switch {
		case v == "C" || v == "T":
			claims[i] = Claim{State: Claimed}
		case v == "S":
			claims[i] = Claim{State: Superseded, Owner: h.JobID}
		case strings.HasPrefix(v, "L|"):
			claims[i] = parseLease(v)
		default:
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				claims[i] = Claim{State: SentByOther} // not a value this store writes: never send it
				continue
			}
			calls[id] = append(calls[id], i)
		}
	}
	if len(calls) == 0 {
		return claims, nil
	}
	return claims, r.readCalls(ctx, h, calls, claims)
}

// readCalls fills in the claims of sent pairs from their calls' records. A
// record that is gone (it expires with its pairs) leaves the pair sent by a job
// it cannot name.
func (r *Redis) readCalls(ctx context.Context, h Holder, calls map[uint64][]int, claims []Claim) error {
	ids := make([]uint64, 0, len(calls))
	gets := make([]*redis.StringCmd, 0, len(calls))
	err := r.batch.Do(ctx, func(pipe redis.Pipeliner) {
		for id := range calls {
			ids = append(ids, id)
			hash, field := recordOf(r.cfg.Prefix, id)
			gets = append(gets, pipe.HGet(ctx, hash, field))
		}
	})
	if err != nil {
		return fmt.Errorf("dedupe: %w: reading call records: %w", ErrUnavailable, err)
	}
	for n, id := range ids {
		c := Claim{State: SentByOther}
		if v, err := gets[n].Result(); err == nil {
			c = withSelf(parseRecord(v), h.JobID)
		}
		for _, i := range calls[id] {
			claims[i] = c
		}
	}
	return nil
}

// MarkSent marks keys sent by one call: its record, and its id under each key,
// in one pipelined round trip of plain commands shared with other calls. A pair
// that two jobs both sent (a counted duplicate) keeps the later mark. In the
// rare case that the record's field is taken (two calls of the same hour and
// shard drew the same number), it marks them again under another id.
func (r *Redis) MarkSent(ctx context.Context, h Holder, keys []Key, m Mark) error {
	record := callRecord(h.JobID, m)
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = hashKey(r.cfg.Prefix, k)
	}
	for attempt := 1; ; attempt++ {
		now := time.Now()
		id := newCallID(now)
		hash, field := recordOf(r.cfg.Prefix, id)
		value := strconv.FormatUint(id, 10)
		expire := r.expiries.Due(hash, now)
		var fresh *redis.BoolCmd
		err := r.batch.Do(ctx, func(pipe redis.Pipeliner) {
			fresh = pipe.HSetNX(ctx, hash, field, record)
			if expire {
				pipe.ExpireAt(ctx, hash, recordsExpire(now, r.cfg.SentTTL))
			}
			for _, name := range names {
				pipe.Set(ctx, name, value, r.cfg.SentTTL)
			}
		})
		if err != nil {
			if expire {
				r.expiries.Failed(hash)
			}
			return fmt.Errorf("dedupe: %w: %w", ErrUnavailable, err)
		}
		if fresh.Val() || attempt == 3 { // after three draws: the pairs stay sent, under another call's record
			return nil
		}
	}
}

// Release drops this delivery's leases on keys in one pipelined round trip.
func (r *Redis) Release(ctx context.Context, h Holder, keys []Key) error {
	v := leaseValue(h)
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = hashKey(r.cfg.Prefix, k)
	}
	_, err := r.pipeline(ctx, releaseScript, names, v)
	return err
}

// pipeline runs script once per key in one round trip. Scripts in a pipeline are
// sent as EVALSHA and do not reload themselves: after NOSCRIPT (Redis restarted
// or flushed its script cache) it loads them and runs the pipeline once more.
func (r *Redis) pipeline(ctx context.Context, s *redis.Script, names []string, args ...any) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(names))
		for i, name := range names {
			cmds[i] = s.EvalSha(ctx, pipe, []string{name}, args...)
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

// Urgent marks ctx so that the store's claims and marks under it do not wait
// for a round trip of other callers under way: each goes at once, in a round
// trip of its own (redisbatch.Urgent). An event job's, so that it does not
// wait for a campaign's batch.
func Urgent(ctx context.Context) context.Context { return redisbatch.Urgent(ctx) }
