package ratelimit

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The rate adapts to mPaaS: a throttled answer (Throttling*, 8011) cuts the rate
// shared by every worker to Decrease × itself, at most once per CutEvery, so that a
// burst of throttled calls counts once; after QuietBefore without a cut it climbs
// by Increase × the ceiling each second, never above the configured rate.
const (
	Decrease    = 0.9
	Increase    = 0.02
	CutEvery    = 1000 // ms
	QuietBefore = 2000 // ms
	RaiseEvery  = 1000 // ms
)

// adaptScript keeps {rate, cut, raise} in one hash, on Redis's own clock. ARGV:
// mode ("cut" or "tick"), ceiling, floor, decrease, increase. It answers the
// current rate.
var adaptScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ceiling, floor = tonumber(ARGV[2]), tonumber(ARGV[3])
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ceiling)
local cut = tonumber(redis.call('HGET', KEYS[1], 'cut') or 0)
local raise = tonumber(redis.call('HGET', KEYS[1], 'raise') or 0)
if rate > ceiling then rate = ceiling end
if ARGV[1] == 'cut' then
  if now - cut >= ` + strconv.Itoa(CutEvery) + ` then
    rate = math.max(floor, rate * tonumber(ARGV[4]))
    cut = now
  end
elseif now - cut >= ` + strconv.Itoa(QuietBefore) + ` and now - raise >= ` + strconv.Itoa(RaiseEvery) + ` and rate < ceiling then
  rate = math.min(ceiling, rate + ceiling * tonumber(ARGV[5]))
  raise = now
end
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'cut', tostring(cut), 'raise', tostring(raise))
redis.call('PEXPIRE', KEYS[1], 86400000)
return tostring(rate)`)

// adapt runs the script and returns the current shared rate.
func adapt(ctx context.Context, rdb redis.UniversalClient, key, mode string, ceiling, floor float64) (float64, error) {
	v, err := adaptScript.Run(ctx, rdb, []string{key}, mode, ceiling, floor, Decrease, Increase).Text()
	if err != nil {
		return 0, fmt.Errorf("rate limiter: %w: %w", ErrUnavailable, err)
	}
	return strconv.ParseFloat(v, 64)
}
