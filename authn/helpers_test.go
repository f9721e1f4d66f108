package authn

import (
	"context"
	"crypto/elliptic"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

const (
	testIss = "https://issuer.example"
	testAud = "https://mcp.example/mcp"
)

// testEpoch is the fixed start of every fake clock.
var testEpoch = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: testEpoch} }

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

// testKeys are the keys of the default test issuer.
type testKeys struct {
	rsa, ec, ed *authntest.Key
}

func newTestKeys(t testing.TB) testKeys {
	k := testKeys{
		rsa: authntest.CachedRSA(t, 2048, 0),
		ec:  authntest.NewEC(t, elliptic.P256()),
		ed:  authntest.NewEd25519(t),
	}
	k.rsa.KeyID, k.ec.KeyID, k.ed.KeyID = "rsa-1", "ec-1", "ed-1"
	return k
}

func (k testKeys) public() []PublicKey {
	return []PublicKey{
		{KeyID: k.rsa.KeyID, Key: k.rsa.Public()},
		{KeyID: k.ec.KeyID, Key: k.ec.Public()},
		{KeyID: k.ed.KeyID, Key: k.ed.Public()},
	}
}

// newTestVerifier builds a Verifier and closes it with the test.
func newTestVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// claimsAt returns valid claims for the default issuer at the clock's time.
func claimsAt(now time.Time) map[string]any {
	return authntest.Claims(testIss, testAud, "acme", now, 10*time.Minute)
}

// requireRefused checks that err is a refusal for reason, wraps
// auth.ErrInvalidToken, and does not leak the token.
func requireRefused(t testing.TB, err error, reason error, token string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, reason, "got %v", err)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	var ve *VerifyError
	require.True(t, errors.As(err, &ve))
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 {
			require.NotContains(t, err.Error(), part, "error text leaks the token")
		}
	}
}

// settleGoroutines waits (briefly, with retries) until the goroutine count
// falls to at most n.
func settleGoroutines(t testing.TB, n int) {
	t.Helper()
	var got int
	for range 200 {
		got = runtime.NumGoroutine()
		if got <= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	buf = buf[:runtime.Stack(buf, true)]
	t.Fatalf("goroutines: have %d, want at most %d\n%s", got, n, buf)
}

// failingRevocation is a Revocation whose store is down.
type failingRevocation struct{}

func (failingRevocation) Revoked(context.Context, string) (bool, error) {
	return false, errors.New("dial tcp 10.1.2.3:6379: connection refused")
}

func (failingRevocation) Revoke(context.Context, string, time.Time) error {
	return errors.New("dial tcp 10.1.2.3:6379: connection refused")
}
