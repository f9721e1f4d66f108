package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocation is a store of revoked token ids (jti). RFC 7519 requires jti
// values to be unique across issuers, so the store is keyed by jti alone.
type Revocation interface {
	// Revoked reports whether jti has been revoked (and the revocation
	// has not expired). An error makes the Verifier refuse the token.
	Revoked(ctx context.Context, jti string) (bool, error)
	// Revoke revokes jti until the given time, normally the token's
	// expiry; afterwards the entry may be forgotten.
	Revoke(ctx context.Context, jti string, until time.Time) error
}

// MemoryRevocation is an in-process Revocation whose entries expire. Use it
// for a single replica; replicas that must share revocations use
// RedisRevocation. The zero value is not usable: call NewMemoryRevocation.
type MemoryRevocation struct {
	now func() time.Time

	mu    sync.Mutex
	m     map[string]time.Time
	purge int // size at which expired entries are next purged
}

// NewMemoryRevocation returns an empty in-memory store. now is the clock
// (nil for time.Now).
func NewMemoryRevocation(now func() time.Time) *MemoryRevocation {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocation{now: now, m: map[string]time.Time{}, purge: 1024}
}

// Revoked implements Revocation.
func (s *MemoryRevocation) Revoked(_ context.Context, jti string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.m[jti]
	if !ok {
		return false, nil
	}
	if !s.now().Before(until) {
		delete(s.m, jti)
		return false, nil
	}
	return true, nil
}

// Revoke implements Revocation. A time in the past is a no-op.
func (s *MemoryRevocation) Revoke(_ context.Context, jti string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !now.Before(until) {
		return nil
	}
	if old, ok := s.m[jti]; !ok || until.After(old) {
		s.m[jti] = until
	}
	if len(s.m) >= s.purge {
		for k, t := range s.m {
			if !now.Before(t) {
				delete(s.m, k)
			}
		}
		s.purge = max(1024, 2*len(s.m))
	}
	return nil
}

// Len returns the number of entries held (expired ones may still count
// until purged).
func (s *MemoryRevocation) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// revokeScript sets the key with a TTL, or lengthens (never shortens) the
// TTL of an existing key.
var revokeScript = redis.NewScript(`
local ttl = tonumber(ARGV[1])
if redis.call('SET', KEYS[1], '1', 'PX', ttl, 'NX') then return 1 end
local cur = redis.call('PTTL', KEYS[1])
if cur >= 0 and cur < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 0
`)

// DefaultRevocationPrefix is the key prefix of RedisRevocation.
const DefaultRevocationPrefix = "tenantgraph:revoked:"

// RedisRevocation is a Revocation stored in a Redis-protocol server
// (Redis, Valkey, the FalkorDB server), shared by every replica that uses
// the same server and prefix. Each revoked jti is a key
// Prefix + hex(SHA-256(jti)) that expires with the token.
type RedisRevocation struct {
	c      redis.Cmdable
	prefix string
	now    func() time.Time
}

// RedisRevocationOptions configure NewRedisRevocation.
type RedisRevocationOptions struct {
	// Prefix of the keys; default DefaultRevocationPrefix.
	Prefix string
	// Now is the clock used to compute expirations; default time.Now.
	Now func() time.Time
}

// NewRedisRevocation returns a store using c (a *redis.Client,
// *redis.ClusterClient, ... or falkor.Client.Redis()).
func NewRedisRevocation(c redis.Cmdable, opts RedisRevocationOptions) (*RedisRevocation, error) {
	if c == nil {
		return nil, errors.New("authn: NewRedisRevocation: nil client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultRevocationPrefix
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RedisRevocation{c: c, prefix: opts.Prefix, now: opts.Now}, nil
}

// Key returns the Redis key that records jti's revocation.
func (s *RedisRevocation) Key(jti string) string {
	sum := sha256.Sum256([]byte(jti))
	return s.prefix + hex.EncodeToString(sum[:])
}

// Revoked implements Revocation.
func (s *RedisRevocation) Revoked(ctx context.Context, jti string) (bool, error) {
	n, err := s.c.Exists(ctx, s.Key(jti)).Result()
	if err != nil {
		return false, fmt.Errorf("authn: revocation store: %w", err)
	}
	return n > 0, nil
}

// Revoke implements Revocation: the key expires at until (at least one
// millisecond from now). A time in the past is a no-op.
func (s *RedisRevocation) Revoke(ctx context.Context, jti string, until time.Time) error {
	ttl := until.Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	ttl = max(ttl, time.Millisecond)
	ms := ttl.Milliseconds()
	if err := revokeScript.Run(ctx, s.c, []string{s.Key(jti)}, ms).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("authn: revocation store: %w", err)
	}
	return nil
}
