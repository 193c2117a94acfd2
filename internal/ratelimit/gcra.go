package ratelimit

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a rate: Rate cells per Period, at most Burst at once.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// GCRA is the generic cell rate algorithm in Redis, on Redis's own clock, so
// that every worker sharing the Redis shares the limit. A key holds the limit's
// theoretical arrival time; the key is exactly the one given (under the
// worker's prefix: a Redis ACL on the prefix covers it).
type GCRA struct{ rdb redis.Scripter }

// NewGCRA takes limits in rdb.
func NewGCRA(rdb redis.Scripter) GCRA { return GCRA{rdb} }

// Allowed is an answer of AllowN: n cells, or none and how long until n are free.
type Allowed struct {
	Allowed    int
	RetryAfter time.Duration
}

// gcraScript takes ARGV[4] cells of the limit (ARGV: burst, rate, period in
// seconds, cells) at KEYS[1], all or none. Time is Redis's, in seconds since
// 2017 so that a double keeps microseconds. It answers {cells taken, seconds
// until they would be free}.
var gcraScript = redis.NewScript(`
local burst, rate, period, cells = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local interval = period / rate
local t = redis.call("TIME")
local now = (tonumber(t[1]) - 1483228800) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call("GET", KEYS[1]) or now) or now
if tat < now then tat = now end
local next_tat = tat + interval * cells
local allowed_from = next_tat - interval * burst
if now < allowed_from then
  return {0, string.format("%.6f", allowed_from - now)}
end
redis.call("SET", KEYS[1], string.format("%.6f", next_tat), "EX", math.max(1, math.ceil(next_tat - now)))
return {cells, "0"}
`)

// AllowN takes n cells of l at key, all or none. n above l.Burst never passes.
func (g GCRA) AllowN(ctx context.Context, key string, l Limit, n int) (Allowed, error) {
	v, err := gcraScript.Run(ctx, g.rdb, []string{key}, l.Burst, l.Rate, l.Period.Seconds(), n).Slice()
	if err != nil {
		return Allowed{}, err
	}
	var a Allowed
	if len(v) == 2 {
		allowed, _ := v[0].(int64)
		retry, _ := v[1].(string)
		secs, _ := strconv.ParseFloat(retry, 64)
		a = Allowed{Allowed: int(allowed), RetryAfter: time.Duration(secs * float64(time.Second))}
	}
	return a, nil
}
