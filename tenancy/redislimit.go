package tenancy

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is the key prefix of a [RedisLimiter] unless its options
// say otherwise.
const DefaultRedisPrefix = "tenantgraph:ratelimit:"

// gcraScript is the generic cell rate algorithm (GCRA) in one script, so that
// the check and the update are atomic and several replicas share one limit.
// The key holds the theoretical arrival time (TAT) in microseconds of the
// server clock (TIME), so replicas need no synchronised clocks.
//
// KEYS[1]: the bucket; ARGV[1]: emission interval in µs (1/rate); ARGV[2]:
// burst. Returns {1, 0} when allowed, {0, µs to wait} when not.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then
  tat = tonumber(v) or now
  if tat < now then tat = now end
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', math.ceil((new_tat - now) / 1000) + 1))
return {1, 0}
`)

// RedisLimiterOptions configure a [RedisLimiter].
type RedisLimiterOptions struct {
	// Prefix goes before every key; empty means [DefaultRedisPrefix].
	Prefix string
}

// RedisLimiter is a [Limiter] whose buckets live in a Redis-protocol server
// (Redis, Valkey, FalkorDB), so that all replicas of a server share one
// limit per tenant. Each Allow runs one Lua script (GCRA) with one key, which
// expires when its bucket has refilled. Errors of the server are returned, and
// the middleware refuses the call (fail closed).
type RedisLimiter struct {
	s      redis.Scripter
	prefix string
}

// NewRedisLimiter returns a RedisLimiter over s, for example a
// *redis.Client; opts may be nil.
func NewRedisLimiter(s redis.Scripter, opts *RedisLimiterOptions) *RedisLimiter {
	l := &RedisLimiter{s: s, prefix: DefaultRedisPrefix}
	if opts != nil && opts.Prefix != "" {
		l.prefix = opts.Prefix
	}
	return l
}

// Allow implements [Limiter].
func (l *RedisLimiter) Allow(ctx context.Context, key string, lim Limit) (bool, time.Duration, error) {
	if lim.Rate <= 0 {
		return true, 0, nil
	}
	// The emission interval in µs, between 1 µs and about 11.6 days.
	interval := int64(math.Round(min(1e6/lim.Rate, 1e12)))
	interval = max(interval, 1)
	res, err := gcraScript.Run(ctx, l.s, []string{l.prefix + key}, interval, lim.burst()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", ErrLimiter, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("%w: unexpected script reply %v", ErrLimiter, res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}
