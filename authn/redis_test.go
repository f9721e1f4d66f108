package authn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

func TestMain(m *testing.M) { falkortest.Main(m) }

// newRedis returns a constructor of clients to the test's FalkorDB server
// (one client per replica) and a key prefix in the test's namespace, whose
// keys falkortest deletes when the test ends.
func newRedis(t *testing.T) (func() *redis.Client, string) {
	db := falkortest.Start(t)
	newClient := func() *redis.Client { return db.Redis(t) }
	require.NoError(t, newClient().Ping(context.Background()).Err())
	return newClient, db.Namespace() + ":authn:revoked:"
}

func TestRedisRevocation(t *testing.T) {
	newClient, prefix := newRedis(t)
	c := newClient()
	s, err := NewRedisRevocation(c, RedisRevocationOptions{Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()

	require.NoError(t, s.Revoke(ctx, "jti-1", time.Now().Add(time.Hour)))
	got, err := s.Revoked(ctx, "jti-1")
	require.NoError(t, err)
	require.True(t, got)
	got, err = s.Revoked(ctx, "jti-2")
	require.NoError(t, err)
	require.False(t, got)

	// The key: prefix + 64 hex digits, expiring with the token.
	key := s.Key("jti-1")
	require.True(t, strings.HasPrefix(key, prefix))
	require.Len(t, key, len(prefix)+64)
	ttl, err := c.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 59*time.Minute)
	require.LessOrEqual(t, ttl, time.Hour)

	// A shorter revocation never shortens, a longer one lengthens.
	require.NoError(t, s.Revoke(ctx, "jti-1", time.Now().Add(time.Minute)))
	ttl, _ = c.PTTL(ctx, key).Result()
	require.Greater(t, ttl, 59*time.Minute)
	require.NoError(t, s.Revoke(ctx, "jti-1", time.Now().Add(2*time.Hour)))
	ttl, _ = c.PTTL(ctx, key).Result()
	require.Greater(t, ttl, 119*time.Minute)

	// In the past: nothing stored.
	require.NoError(t, s.Revoke(ctx, "old", time.Now().Add(-time.Second)))
	n, err := c.Exists(ctx, s.Key("old")).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// Odd jtis are fine: they are hashed into the key.
	odd := "a b*c?[d]{e}\x00\n" + strings.Repeat("é", 1000)
	require.NoError(t, s.Revoke(ctx, odd, time.Now().Add(time.Minute)))
	got, err = s.Revoked(ctx, odd)
	require.NoError(t, err)
	require.True(t, got)
}

func TestRedisRevocationSharedByReplicas(t *testing.T) {
	newClient, prefix := newRedis(t)
	keys := newTestKeys(t)
	replica := func() *Verifier {
		s, err := NewRedisRevocation(newClient(), RedisRevocationOptions{Prefix: prefix})
		require.NoError(t, err)
		return newTestVerifier(t, Config{Revocation: s, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
	}
	a, b := replica(), replica()
	ctx := context.Background()
	cl := claimsAt(time.Now())
	tok := keys.ed.Mint(cl)
	_, err := b.Verify(ctx, tok)
	require.NoError(t, err)

	require.NoError(t, a.Revoke(ctx, cl["jti"].(string), time.Now().Add(10*time.Minute)))
	_, err = b.Verify(ctx, tok)
	requireRefused(t, err, ErrRevoked, tok)
	_, err = a.Verify(ctx, tok)
	requireRefused(t, err, ErrRevoked, tok)
	_, err = b.Verify(ctx, keys.ed.Mint(claimsAt(time.Now())))
	require.NoError(t, err, "other tokens unaffected")
}

func TestRedisRevocationDownFailsClosed(t *testing.T) {
	// A server that is not there: the closed port 1 on loopback.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer c.Close()
	s, err := NewRedisRevocation(c, RedisRevocationOptions{})
	require.NoError(t, err)
	keys := newTestKeys(t)
	v := newTestVerifier(t, Config{Revocation: s, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
	tok := keys.ed.Mint(claimsAt(time.Now()))
	_, err = v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrRevocationUnavailable, tok)
	require.NotContains(t, err.Error(), "127.0.0.1:1")
	require.Error(t, v.Revoke(context.Background(), "x", time.Now().Add(time.Minute)))

	_, err = NewRedisRevocation(nil, RedisRevocationOptions{})
	require.Error(t, err)
}
