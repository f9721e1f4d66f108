package tenancy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

func TestMain(m *testing.M) { falkortest.Main(m) }

// testRedis returns a client of a test FalkorDB (falkortest: FALKORDB_URL or
// a local server) and a key prefix in the test's own namespace, or skips.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	db := falkortest.Start(t)
	c := db.Redis(t)
	prefix := db.Namespace() + ":ratelimit:"
	ctx := context.Background()
	t.Cleanup(func() {
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return c, prefix
}

func TestRedisLimiter(t *testing.T) {
	c, prefix := testRedis(t)
	ctx := context.Background()
	l := NewRedisLimiter(c, &RedisLimiterOptions{Prefix: prefix})
	other := NewRedisLimiter(c, &RedisLimiterOptions{Prefix: prefix}) // another replica
	lim := Limit{Rate: 1, Burst: 2}

	ok, _, err := l.Allow(ctx, "acme_", lim)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _, err = other.Allow(ctx, "acme_", lim)
	require.NoError(t, err)
	require.True(t, ok)
	ok, retry, err := l.Allow(ctx, "acme_", lim)
	require.NoError(t, err)
	require.False(t, ok, "the replicas share one bucket")
	require.Greater(t, retry, time.Duration(0))
	require.LessOrEqual(t, retry, time.Second)

	ok, _, err = l.Allow(ctx, "bob_", lim)
	require.NoError(t, err)
	require.True(t, ok, "another tenant has its own bucket")

	ttl, err := c.PTTL(ctx, prefix+"acme_").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "buckets expire")
	require.LessOrEqual(t, ttl, 2*time.Second+time.Millisecond)

	ok, _, err = l.Allow(ctx, "x", Limit{})
	require.NoError(t, err)
	require.True(t, ok, "no rate, no limit")

	// Extreme limits stay within the script's integer arithmetic.
	for _, lim := range []Limit{{Rate: 1e-9, Burst: 1 << 20}, {Rate: 1e9, Burst: 1}} {
		ok, _, err = l.Allow(ctx, fmt.Sprint("extreme", lim.Rate), lim)
		require.NoError(t, err)
		require.True(t, ok)
	}
}

func TestRedisLimiterAtomic(t *testing.T) {
	c, prefix := testRedis(t)
	l := NewRedisLimiter(c, &RedisLimiterOptions{Prefix: prefix})
	lim := Limit{Rate: 0.001, Burst: 10}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			ok, _, err := l.Allow(context.Background(), "acme_", lim)
			if err == nil && ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 10, allowed.Load(), "exactly the burst passes")
}

func TestRedisLimiterErrorsFailClosed(t *testing.T) {
	c, prefix := testRedis(t)
	broken := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
	require.NoError(t, broken.Close())
	l := NewRedisLimiter(broken, &RedisLimiterOptions{Prefix: prefix})
	ok, _, err := l.Allow(context.Background(), "acme_", Limit{Rate: 1})
	require.ErrorIs(t, err, ErrLimiter)
	require.False(t, ok)
}

func TestRedisLimiterInMiddleware(t *testing.T) {
	c, prefix := testRedis(t)
	e := newEnv(t, Config{
		Limits:  func(*Identity) Limit { return Limit{Rate: 0.01, Burst: 1} },
		Limiter: NewRedisLimiter(c, &RedisLimiterOptions{Prefix: prefix}),
	})
	cs := e.connect(acmeRW)
	res, err := callTool(t, cs, "whoami", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError)
	res, err = callTool(t, cs, "whoami", map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "retry after")
	require.Equal(t, 1, e.rec.count())
	n, err := c.Exists(context.Background(), prefix+"acme_").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "keyed on the tenant's prefix")
}
