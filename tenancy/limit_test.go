package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/graphname"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimit(t *testing.T) {
	clock := newClock()
	e := newEnv(t, Config{
		Limits:  func(*Identity) Limit { return Limit{Rate: 1, Burst: 2} },
		Limiter: NewLocalLimiter(&LocalLimiterOptions{Now: clock.Now}),
	})
	acme, bob := e.connect(acmeRW), e.connect(bobRW)
	for range 2 {
		res, err := callTool(t, acme, "whoami", map[string]any{})
		require.NoError(t, err)
		require.False(t, res.IsError)
	}
	res, err := callTool(t, acme, "whoami", map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "rate limit exceeded")
	require.Contains(t, text(res), "retry after 1 s")
	require.EqualValues(t, 1000, res.Meta["retryAfterMs"])
	require.Equal(t, 2, e.rec.count(), "the refused call did not reach the tool")

	res, err = callTool(t, bob, "whoami", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, "another tenant has its own budget")

	// A second session (another token) of the same tenant shares the budget.
	res, err = callTool(t, e.connect(ident("acme", ScopeRead)), "whoami", map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)

	clock.Advance(time.Second)
	res, err = callTool(t, acme, "whoami", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, "the bucket refilled")
}

func TestRateLimitPerPlanAndCaseFold(t *testing.T) {
	r, err := graphname.New(graphname.Options{TenantCase: graphname.CaseFold})
	require.NoError(t, err)
	clock := newClock()
	e := newEnv(t, Config{
		Resolver: r,
		Limits: func(id *Identity) Limit {
			if id.Subject == "premium" {
				return Limit{Rate: 1, Burst: 3}
			}
			return Limit{Rate: 1, Burst: 1}
		},
		Limiter: NewLocalLimiter(&LocalLimiterOptions{Now: clock.Now}),
	})
	ok := func(id *Identity) bool {
		res, err := callTool(t, e.connect(id), "whoami", map[string]any{})
		require.NoError(t, err)
		return !res.IsError
	}
	// "Acme" and "acme" are one tenant under CaseFold: one budget.
	require.True(t, ok(&Identity{Tenant: "Acme", Subject: "basic"}))
	require.False(t, ok(&Identity{Tenant: "acme", Subject: "basic"}))

	premium := &Identity{Tenant: "big", Subject: "premium"}
	require.True(t, ok(premium))
	require.True(t, ok(premium))
	require.True(t, ok(premium))
	require.False(t, ok(premium))
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, Limit) (bool, time.Duration, error) {
	return false, 0, errors.New("connection to 10.0.0.9:6379 refused")
}

func TestLimiterErrorFailsClosed(t *testing.T) {
	var ev Event
	e := newEnv(t, Config{
		Limits:  func(*Identity) Limit { return Limit{Rate: 100, Burst: 100} },
		Limiter: failingLimiter{},
		Auditor: AuditFunc(func(_ context.Context, e *Event) { ev = *e }),
	})
	res, err := callTool(t, e.connect(acmeRW), "whoami", map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "rate limiter is unavailable")
	require.NotContains(t, text(res), "10.0.0.9")
	require.Zero(t, e.rec.count())
	require.ErrorIs(t, ev.Err, ErrLimiter)
	require.Equal(t, "limiter", ev.Class)
}

func TestConcurrencyCap(t *testing.T) {
	e := newEnv(t, Config{Limits: func(*Identity) Limit { return Limit{Concurrent: 1} }})
	acme := e.connect(acmeRW)
	done := make(chan error, 1)
	go func() {
		res, err := acme.CallTool(context.Background(), mcpParams("block"))
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %s", text(res))
		}
		done <- err
	}()
	<-e.started // the first call is in the tool

	res, err := callTool(t, e.connect(ident("acme", ScopeRead)), "whoami", map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "too many concurrent calls")
	require.Contains(t, text(res), "retry after 1 s")

	res, err = callTool(t, e.connect(bobRW), "whoami", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, "another tenant is not capped by acme's calls")

	close(e.block)
	require.NoError(t, <-done)
	res, err = callTool(t, acme, "whoami", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, "the slot was released")
	require.Equal(t, 3, e.rec.count())
}

func TestLocalLimiter(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	l := NewLocalLimiter(&LocalLimiterOptions{MaxKeys: 2, Now: clock.Now})
	lim := Limit{Rate: 2, Burst: 1}

	ok, _, err := l.Allow(ctx, "a", lim)
	require.NoError(t, err)
	require.True(t, ok)
	ok, retry, err := l.Allow(ctx, "a", lim)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, retry)

	// A refused call consumes nothing: after the wait, one call passes.
	clock.Advance(retry)
	ok, _, _ = l.Allow(ctx, "a", lim)
	require.True(t, ok)

	// The map is bounded: a third key is refused while a and b are busy...
	ok, _, err = l.Allow(ctx, "b", lim)
	require.NoError(t, err)
	require.True(t, ok)
	_, _, err = l.Allow(ctx, "c", lim)
	require.ErrorIs(t, err, ErrLimiterFull)
	// ...and admitted once their buckets have refilled (lossless eviction).
	clock.Advance(time.Second)
	ok, _, err = l.Allow(ctx, "c", lim)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, l.Len())

	// A changed limit (a plan upgrade) applies to the existing bucket.
	big := Limit{Rate: 2, Burst: 3}
	ok, _, _ = l.Allow(ctx, "c", big)
	require.False(t, ok, "the bucket is still empty")
	clock.Advance(2 * time.Second)
	for range 3 {
		ok, _, _ = l.Allow(ctx, "c", big)
		require.True(t, ok)
	}
	ok, _, _ = l.Allow(ctx, "c", big)
	require.False(t, ok)

	// No rate: always allowed, nothing tracked.
	ok, _, err = l.Allow(ctx, "z", Limit{})
	require.NoError(t, err)
	require.True(t, ok)
}
