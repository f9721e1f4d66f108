package authn

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

func TestCache(t *testing.T) {
	clock := newClock()
	keys := newTestKeys(t)
	revs := NewMemoryRevocation(clock.Now)
	var hits, misses atomic.Int64
	cfg := Config{
		Now: clock.Now, Leeway: NoLeeway, Revocation: revs,
		Cache:   &CacheConfig{MaxEntries: 8, TTL: time.Minute},
		Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}},
		Hooks: Hooks{Verified: func(e VerifyEvent) {
			if e.Cached {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		}},
	}
	v := newTestVerifier(t, cfg)
	ctx := context.Background()

	t.Run("hit returns the same result", func(t *testing.T) {
		tok := keys.rsa.Mint(claimsAt(clock.Now()))
		p1, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		h := hits.Load()
		p2, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		require.Same(t, p1, p2)
		require.Equal(t, h+1, hits.Load())
		ti1, err := v.TokenVerifier()(ctx, tok, nil)
		require.NoError(t, err)
		ti2, err := v.TokenVerifier()(ctx, tok, nil)
		require.NoError(t, err)
		require.Same(t, ti1, ti2)
		got, _ := PrincipalFromTokenInfo(ti1)
		require.Same(t, p1, got)
	})

	t.Run("entries live at most TTL", func(t *testing.T) {
		tok := keys.ec.Mint(claimsAt(clock.Now()))
		p1, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		clock.Advance(time.Minute)
		h := hits.Load()
		p2, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		require.NotSame(t, p1, p2)
		require.Equal(t, h, hits.Load())
	})

	t.Run("entries end at exp", func(t *testing.T) {
		tok := keys.ed.Mint(with(claimsAt(clock.Now()), "exp", clock.Now().Add(30*time.Second).Unix()))
		_, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		clock.Advance(30 * time.Second)
		_, err = v.Verify(ctx, tok)
		requireRefused(t, err, ErrExpired, tok)
	})

	t.Run("Revoke drops the entry", func(t *testing.T) {
		cl := claimsAt(clock.Now())
		tok := keys.ed.Mint(cl)
		_, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		require.NoError(t, v.Revoke(ctx, cl["jti"].(string), clock.Now().Add(time.Hour)))
		_, err = v.Verify(ctx, tok)
		requireRefused(t, err, ErrRevoked, tok)
	})

	t.Run("revocation by another replica within TTL", func(t *testing.T) {
		other := newTestVerifier(t, cfg) // shares the store
		cl := claimsAt(clock.Now())
		tok := keys.ed.Mint(cl)
		_, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		require.NoError(t, other.Revoke(ctx, cl["jti"].(string), clock.Now().Add(time.Hour)))
		_, err = other.Verify(ctx, tok)
		require.ErrorIs(t, err, ErrRevoked)
		// Documented bound: this replica's cached entry lives until TTL.
		_, err = v.Verify(ctx, tok)
		require.NoError(t, err)
		clock.Advance(time.Minute)
		_, err = v.Verify(ctx, tok)
		requireRefused(t, err, ErrRevoked, tok)
	})

	t.Run("bounded size", func(t *testing.T) {
		for range 50 {
			_, err := v.Verify(ctx, keys.ed.Mint(claimsAt(clock.Now())))
			require.NoError(t, err)
		}
		require.LessOrEqual(t, v.cache.len(), 8)
		require.Positive(t, v.cache.len())
	})

	t.Run("refusals are not cached", func(t *testing.T) {
		tok := authntest.Unsigned(claimsAt(clock.Now()))
		for range 3 {
			_, err := v.Verify(ctx, tok)
			require.ErrorIs(t, err, ErrUnsupportedAlg)
		}
	})
}

func TestCacheFollowsKeySet(t *testing.T) {
	clock := newClock()
	a, b := authntest.NewEd25519(t), authntest.NewEd25519(t)
	srv := authntest.NewJWKSServer(t, a)
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{MaxRefresh: time.Hour, MaxStaleness: 2 * time.Hour}), func(c *Config) {
		c.Cache = &CacheConfig{TTL: 5 * time.Minute}
	})
	waitReady(t, v)
	ctx := context.Background()

	// Cached, then the key is withdrawn: the cached entry dies with it.
	tokA := a.Mint(with(claimsAt(clock.Now()), "exp", clock.Now().Add(5*time.Hour).Unix()))
	_, err := v.Verify(ctx, tokA)
	require.NoError(t, err)
	srv.SetKeys(b)
	_, err = v.Verify(ctx, b.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	_, err = v.Verify(ctx, tokA)
	requireRefused(t, err, ErrUnknownKey, tokA)

	// Cached, then the keys go stale: fail closed, cache or not.
	tokB := b.Mint(with(claimsAt(clock.Now()), "exp", clock.Now().Add(5*time.Hour).Unix()))
	_, err = v.Verify(ctx, tokB)
	require.NoError(t, err)
	srv.SetFault(authntest.Fault{Status: 503})
	clock.Advance(2*time.Hour + time.Second)
	_, err = v.Verify(ctx, tokB)
	requireRefused(t, err, ErrKeysStale, tokB)
}

func TestMemoryRevocation(t *testing.T) {
	clock := newClock()
	s := NewMemoryRevocation(clock.Now)
	ctx := context.Background()
	require.NoError(t, s.Revoke(ctx, "a", clock.Now().Add(time.Minute)))
	require.NoError(t, s.Revoke(ctx, "past", clock.Now().Add(-time.Minute)))
	require.NoError(t, s.Revoke(ctx, "b", clock.Now().Add(time.Hour)))
	require.NoError(t, s.Revoke(ctx, "b", clock.Now().Add(time.Second)), "a shorter revocation does not shorten")
	for jti, want := range map[string]bool{"a": true, "b": true, "past": false, "c": false} {
		got, err := s.Revoked(ctx, jti)
		require.NoError(t, err)
		require.Equal(t, want, got, jti)
	}
	clock.Advance(time.Minute)
	got, _ := s.Revoked(ctx, "a")
	require.False(t, got, "expired with the token")
	got, _ = s.Revoked(ctx, "b")
	require.True(t, got)

	// Expired entries are purged as the store grows.
	for i := range 3000 {
		require.NoError(t, s.Revoke(ctx, string(rune('A'+i%26))+authntest.RandomID(), clock.Now().Add(time.Second)))
	}
	clock.Advance(2 * time.Second)
	for range 2000 {
		require.NoError(t, s.Revoke(ctx, authntest.RandomID(), clock.Now().Add(time.Hour)))
	}
	require.Less(t, s.Len(), 3000)
}
