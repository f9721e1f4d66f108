package tenancy

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is the budget of one tenant: a token bucket (Rate, Burst) and a cap
// on calls in flight. [Config].Limits returns it per identity, so limits can
// depend on the tenant or its plan.
type Limit struct {
	// Rate is the sustained number of tool calls per second. Zero (or less)
	// means no rate limit.
	Rate float64

	// Burst is the number of calls allowed at once (the bucket size). Less
	// than 1 means 1.
	Burst int

	// Concurrent caps the tenant's tool calls in flight in this process.
	// Zero (or less) means no cap.
	Concurrent int
}

func (l Limit) burst() int { return max(l.Burst, 1) }

// A Limiter decides whether a tenant may make one more call. The middleware
// keys it on the tenant's physical key prefix, never on a token, so that
// minting new tokens does not escape a limit, and case variants of a tenant
// under graphname.CaseFold share one budget.
//
// Allow consumes one call from key's bucket of limit l (l.Rate > 0) and
// reports whether it was available; when it was not, retryAfter says when it
// will be. An error refuses the call (fail closed).
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (ok bool, retryAfter time.Duration, err error)
}

// LocalLimiterOptions configure a [LocalLimiter].
type LocalLimiterOptions struct {
	// MaxKeys bounds the number of tenants tracked at once; 0 means 65536.
	// When the map is full, buckets that have refilled completely are
	// evicted, which loses nothing: a full bucket and a new one are the
	// same. If none has, Allow fails with [ErrLimiterFull].
	MaxKeys int

	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// LocalLimiter is an in-process [Limiter]: a golang.org/x/time/rate token
// bucket per key, in a bounded map. Each replica of a server has its own; use
// [RedisLimiter] to share limits between replicas. It is safe for
// concurrent use.
type LocalLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	max     int
	now     func() time.Time
}

type bucket struct {
	lim   *rate.Limiter
	limit Limit
}

// NewLocalLimiter returns a LocalLimiter; opts may be nil.
func NewLocalLimiter(opts *LocalLimiterOptions) *LocalLimiter {
	l := &LocalLimiter{buckets: make(map[string]*bucket), max: 1 << 16, now: time.Now}
	if opts != nil {
		if opts.MaxKeys > 0 {
			l.max = opts.MaxKeys
		}
		if opts.Now != nil {
			l.now = opts.Now
		}
	}
	return l
}

// Allow implements [Limiter].
func (l *LocalLimiter) Allow(_ context.Context, key string, lim Limit) (bool, time.Duration, error) {
	if lim.Rate <= 0 {
		return true, 0, nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evict(now)
			if len(l.buckets) >= l.max {
				return false, 0, fmt.Errorf("%w: %d tenants are being limited at once", ErrLimiterFull, len(l.buckets))
			}
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(lim.Rate), lim.burst()), limit: lim}
		l.buckets[key] = b
	} else if b.limit != lim {
		b.lim.SetLimitAt(now, rate.Limit(lim.Rate))
		b.lim.SetBurstAt(now, lim.burst())
		b.limit = lim
	}
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	return true, 0, nil
}

// evict removes the buckets that have refilled completely. l.mu is held.
func (l *LocalLimiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.lim.TokensAt(now) >= float64(b.limit.burst()) {
			delete(l.buckets, k)
		}
	}
}

// Len returns the number of tenants currently tracked.
func (l *LocalLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// inflight counts the calls in flight per key (in-process semaphores).
type inflight struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one slot of key's max, reporting whether one was free.
func (f *inflight) acquire(key string, max int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = make(map[string]int)
	}
	if f.n[key] >= max {
		return false
	}
	f.n[key]++
	return true
}

func (f *inflight) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] <= 1 {
		delete(f.n, key)
		return
	}
	f.n[key]--
}

// retrySeconds rounds d up to whole seconds, at least 1, for messages.
func retrySeconds(d time.Duration) int64 {
	return max(int64(math.Ceil(d.Seconds())), 1)
}
