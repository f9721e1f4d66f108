package authn

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

// remote returns an issuer using url as JWKS URL, with refreshes far
// enough apart that only forced refreshes happen during a test.
func remote(url string, o JWKSOptions) Issuer {
	if o.MinRefresh == 0 {
		o.MinRefresh = time.Hour
	}
	return Issuer{Issuer: testIss, Audiences: []string{testAud}, JWKSURL: url, JWKS: o}
}

func newRemoteVerifier(t *testing.T, clock *fakeClock, in Issuer, mod ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Now: clock.Now, Issuers: []Issuer{in}}
	for _, m := range mod {
		m(&cfg)
	}
	return newTestVerifier(t, cfg)
}

func waitReady(t *testing.T, v *Verifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, v.WaitReady(ctx))
}

func withKid(k *authntest.Key, kid string) *authntest.Key {
	k2 := *k
	k2.KeyID = kid
	return &k2
}

func TestJWKSRotation(t *testing.T) {
	clock := newClock()
	a, b := authntest.NewEd25519(t), authntest.NewEC(t, elliptic.P256())
	srv := authntest.NewJWKSServer(t, a)
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{Cooldown: time.Minute}))
	waitReady(t, v)
	require.Equal(t, 1, srv.Fetches())
	ctx := context.Background()

	_, err := v.Verify(ctx, a.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	require.Equal(t, 1, srv.Fetches(), "known keys need no fetch")

	// Rotation: the issuer now publishes b only. A token signed with b
	// has an unknown kid, which triggers one refresh.
	srv.SetKeys(b)
	_, err = v.Verify(ctx, b.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	require.Equal(t, 2, srv.Fetches())

	// The refresh replaced the set: a is gone, not merged.
	tok := a.Mint(claimsAt(clock.Now()))
	_, err = v.Verify(ctx, tok)
	requireRefused(t, err, ErrUnknownKey, tok)
	require.Equal(t, 2, srv.Fetches(), "cooldown: no second forced fetch")

	// After the cooldown an unknown kid may trigger a fetch again.
	clock.Advance(time.Minute)
	srv.SetKeys(a, b)
	_, err = v.Verify(ctx, a.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	require.Equal(t, 3, srv.Fetches())
}

func TestJWKSEmptySetRevokesKeys(t *testing.T) {
	clock := newClock()
	a := authntest.NewEd25519(t)
	srv := authntest.NewJWKSServer(t, a)
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{}))
	waitReady(t, v)
	srv.SetBody([]byte(`{"keys":[]}`))
	// Any unknown kid forces the refresh that brings the empty set.
	_, err := v.Verify(context.Background(), withKid(a, "new").Mint(claimsAt(clock.Now())))
	require.ErrorIs(t, err, ErrUnknownKey)
	tok := a.Mint(claimsAt(clock.Now()))
	_, err = v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrUnknownKey, tok)
	require.Equal(t, 0, v.Health()[0].Keys)
}

func TestJWKSRefreshStormIsBounded(t *testing.T) {
	clock := newClock()
	a, c := authntest.NewEd25519(t), authntest.NewEd25519(t)
	srv := authntest.NewJWKSServer(t, a)
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{}))
	waitReady(t, v)
	ctx := context.Background()

	t.Run("random kids", func(t *testing.T) {
		before := srv.Fetches()
		var wg sync.WaitGroup
		errs := make([]error, 1000)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = v.Verify(ctx, withKid(a, authntest.RandomID()).Mint(claimsAt(clock.Now())))
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.ErrorIs(t, err, ErrUnknownKey)
		}
		require.Equal(t, before+1, srv.Fetches(), "1000 unknown kids, one fetch")
	})

	t.Run("rotation storm joins one fetch", func(t *testing.T) {
		clock.Advance(time.Hour) // past the cooldown, well within staleness
		before := srv.Fetches()
		srv.SetKeys(a, c)
		release := srv.Hold()
		var wg sync.WaitGroup
		errs := make([]error, 1000)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = v.Verify(ctx, c.Mint(claimsAt(clock.Now())))
			})
		}
		require.Eventually(t, func() bool { return srv.Fetches() == before+1 }, 10*time.Second, time.Millisecond)
		release()
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, before+1, srv.Fetches(), "1000 requests for a new kid, one fetch")
	})
}

func TestJWKSEndpointDownServesUntilMaxStaleness(t *testing.T) {
	clock := newClock()
	a := authntest.NewEd25519(t)
	srv := authntest.NewJWKSServer(t, a)
	var mu sync.Mutex
	var events []FetchEvent
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{MaxRefresh: time.Hour, MaxStaleness: 2 * time.Hour, Cooldown: time.Minute}),
		func(c *Config) {
			c.Hooks.KeysFetched = func(e FetchEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }
		})
	waitReady(t, v)
	fetchedAt := clock.Now()
	ctx := context.Background()
	srv.SetFault(authntest.Fault{Status: http.StatusInternalServerError})

	// Down, but within the maximum staleness: known keys serve, and an
	// unknown kid's refresh fails without harming them.
	clock.Advance(119 * time.Minute)
	_, err := v.Verify(ctx, withKid(a, "unknown").Mint(claimsAt(clock.Now())))
	require.ErrorIs(t, err, ErrUnknownKey)
	_, err = v.Verify(ctx, a.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	require.NoError(t, v.Ready())
	h := v.Health()[0]
	require.False(t, h.Stale)
	require.Contains(t, h.LastError, "500")
	require.Equal(t, fetchedAt, h.LastSuccess)

	// Past it: fail closed, and readiness says so.
	clock.Advance(2 * time.Minute)
	tok := a.Mint(claimsAt(clock.Now()))
	_, err = v.Verify(ctx, tok)
	requireRefused(t, err, ErrKeysStale, tok)
	require.ErrorIs(t, v.Ready(), ErrKeysStale)
	require.True(t, v.Health()[0].Stale)

	// The endpoint recovers: the next attempt after the cooldown fetches.
	srv.SetFault(authntest.Fault{})
	clock.Advance(time.Minute)
	_, err = v.Verify(ctx, a.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)
	require.NoError(t, v.Ready())

	mu.Lock()
	defer mu.Unlock()
	results := map[string]int{}
	for _, e := range events {
		require.Equal(t, testIss, e.Issuer)
		results[e.Result]++
	}
	require.Equal(t, 2, results["ok"])
	require.Equal(t, 2, results["http_status"])
	require.Equal(t, clock.Now(), events[len(events)-1].LastSuccess)
}

func TestJWKSSlowEndpointNeverDelaysKnownKeys(t *testing.T) {
	clock := newClock()
	a := authntest.NewEd25519(t)
	srv := authntest.NewJWKSServer(t, a)
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{}))
	waitReady(t, v)
	ctx := context.Background()

	release := srv.Hold() // every fetch now hangs until release
	defer release()
	unknown := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, withKid(a, "new-kid").Mint(claimsAt(clock.Now())))
		unknown <- err
	}()
	require.Eventually(t, func() bool { return srv.Fetches() == 2 }, 10*time.Second, time.Millisecond, "refresh in flight")

	// While that fetch hangs, known keys verify (this would deadlock,
	// and the watchdog fire, if they waited for it).
	done := make(chan error, 1)
	go func() {
		for range 100 {
			if _, err := v.Verify(ctx, a.Mint(claimsAt(clock.Now()))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("verification of a known key waited for the slow key endpoint")
	}
	select {
	case <-unknown:
		t.Fatal("the unknown kid did not wait for the fetch in flight")
	default:
	}
	release()
	require.ErrorIs(t, <-unknown, ErrUnknownKey)
}

func TestJWKSUnsupportedKeysSkipped(t *testing.T) {
	clock := newClock()
	a := authntest.NewEd25519(t)
	weak := authntest.CachedRSA(t, 1024, 0)
	srv := authntest.NewJWKSServer(t, a)
	srv.AddRawKey(string(weak.JWKJSON()))
	srv.AddRawKey(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`)
	srv.AddRawKey(`"not a key"`)
	srv.AddRawKey(`{"kty":"EC","kid":"bad-point","crv":"P-256","x":"AQAB","y":"AQAB"}`)
	var skipped int
	v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{}), func(c *Config) {
		c.Hooks.KeysFetched = func(e FetchEvent) { skipped = e.Skipped }
	})
	waitReady(t, v)
	require.Equal(t, 1, v.Health()[0].Keys)
	require.Equal(t, 4, skipped)

	_, err := v.Verify(context.Background(), a.Mint(claimsAt(clock.Now())))
	require.NoError(t, err)

	// The RSA-1024 key was published, and refused.
	tok := weak.Mint(claimsAt(clock.Now()))
	_, err = v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrUnknownKey, tok)
	require.ErrorContains(t, err, "1024 bits")
	// An HMAC token naming the published symmetric key gets nowhere.
	tok = authntest.HS256([]byte("secret"), map[string]any{"kid": "hmac"}, claimsAt(clock.Now()))
	_, err = v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrUnsupportedAlg, tok)
}

func TestJWKSFaults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault authntest.Fault
		body  []byte
		want  string
	}{
		{"status 500", authntest.Fault{Status: 500}, nil, "500"},
		{"status 404", authntest.Fault{Status: 404}, nil, "404"},
		{"oversized body", authntest.Fault{Oversize: MaxJWKSSize + 10}, nil, "exceeds"},
		{"garbage", authntest.Fault{Garbage: true}, nil, "not a JSON Web Key Set"},
		{"no keys member", authntest.Fault{}, []byte(`{"kids":[]}`), `no "keys" array`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			a := authntest.NewEd25519(t)
			srv := authntest.NewJWKSServer(t, a)
			v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{}))
			waitReady(t, v)

			// A broken answer keeps the old keys.
			srv.SetFault(tt.fault)
			if tt.body != nil {
				srv.SetBody(tt.body)
			}
			_, err := v.Verify(context.Background(), withKid(a, "x").Mint(claimsAt(clock.Now())))
			require.ErrorIs(t, err, ErrUnknownKey)
			require.Equal(t, 2, srv.Fetches())
			require.Contains(t, v.Health()[0].LastError, tt.want)
			_, err = v.Verify(context.Background(), a.Mint(claimsAt(clock.Now())))
			require.NoError(t, err)

			// Broken from the start: nothing verifies, readiness says why.
			clock2 := newClock()
			v2 := newRemoteVerifier(t, clock2, remote(srv.JWKSURL(), JWKSOptions{}))
			require.Eventually(t, func() bool { return v2.Health()[0].Fetches >= 1 }, 10*time.Second, time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, v2.WaitReady(ctx), context.Canceled)
			require.ErrorIs(t, v2.Ready(), ErrKeysStale)
			require.ErrorContains(t, v2.Ready(), tt.want)
			tok := a.Mint(claimsAt(clock2.Now()))
			_, err = v2.Verify(context.Background(), tok)
			requireRefused(t, err, ErrKeysStale, tok)
			require.NotContains(t, err.Error(), "127.0.0.1", "no addresses in client-visible errors")
		})
	}
}

func TestJWKSCacheControl(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{
		{"", time.Hour},
		{"max-age=120", 2 * time.Minute},
		{"public, max-age=5", 10 * time.Second},
		{"max-age=86400, must-revalidate", time.Hour},
		{"no-store", 10 * time.Second},
		{"max-age=garbage", time.Hour},
		{"max-age=-5", time.Hour},
		{`max-age="300"`, 5 * time.Minute},
		{"max-age=99999999999999999999", time.Hour},
	} {
		t.Run(tt.header, func(t *testing.T) {
			clock := newClock()
			srv := authntest.NewJWKSServer(t, authntest.NewEd25519(t))
			srv.SetCacheControl(tt.header)
			v := newRemoteVerifier(t, clock, remote(srv.JWKSURL(), JWKSOptions{MinRefresh: 10 * time.Second, MaxRefresh: time.Hour}))
			waitReady(t, v)
			r := v.order[0].remote
			r.mu.Lock()
			defer r.mu.Unlock()
			require.Equal(t, tt.want, r.interval)
		})
	}
}

func TestJWKSFailureBackoff(t *testing.T) {
	r := &remoteKeys{opts: JWKSOptions{MinRefresh: time.Minute}, interval: time.Hour}
	require.Equal(t, time.Hour, r.nextDelay())
	var got []time.Duration
	for r.failures = 1; r.failures <= 6; r.failures++ {
		got = append(got, r.nextDelay())
	}
	require.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}, got)
	r.failures = 1000
	require.Equal(t, time.Minute, r.nextDelay())
}

func TestJWKSRedirects(t *testing.T) {
	key := authntest.NewEd25519(t)
	plain := authntest.NewJWKSServer(t, key)
	var tlsSrv *httptest.Server
	tlsSrv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.JWKSURL(), http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, tlsSrv.URL+"/jwks", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/jwks":
			_, _ = fmt.Fprintf(w, `{"keys":[%s]}`, key.JWKJSON())
		}
	}))
	defer tlsSrv.Close()
	for _, tt := range []struct {
		path string
		want string // "" = success
	}{
		{"/to-https", ""},
		{"/to-http", "redirect from https to http refused"},
		{"/loop", "too many redirects"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			clock := newClock()
			v := newRemoteVerifier(t, clock, remote(tlsSrv.URL+tt.path, JWKSOptions{}), func(c *Config) {
				c.Transport = tlsSrv.Client().Transport
			})
			require.Eventually(t, func() bool { return v.Health()[0].Fetches >= 1 }, 10*time.Second, time.Millisecond)
			h := v.Health()[0]
			if tt.want == "" {
				require.Empty(t, h.LastError)
				require.Equal(t, 1, h.Keys)
				return
			}
			require.Contains(t, h.LastError, tt.want)
			require.True(t, h.Stale)
		})
	}
	require.Equal(t, 0, plain.Fetches(), "never followed to plain http")
}

func TestDiscovery(t *testing.T) {
	key := authntest.NewEd25519(t)
	other := authntest.NewJWKSServer(t, key)
	for _, tt := range []struct {
		name        string
		iss, jwks   func(srv *authntest.JWKSServer) string
		want        string
		wantFetches int
	}{
		{"same origin", nil, nil, "", 1},
		{"issuer mismatch", func(*authntest.JWKSServer) string { return "https://evil.example" }, nil, "names issuer", 0},
		{"jwks_uri on another origin", nil, func(*authntest.JWKSServer) string { return other.JWKSURL() }, "not on the issuer's origin", 0},
		{"jwks_uri plain http elsewhere", nil, func(*authntest.JWKSServer) string { return "http://keys.example/jwks" }, "loopback", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := authntest.NewJWKSServer(t, key)
			var iss, jwks string
			if tt.iss != nil {
				iss = tt.iss(srv)
			}
			if tt.jwks != nil {
				jwks = tt.jwks(srv)
			}
			srv.SetDiscovery(iss, jwks)
			clock := newClock()
			v := newTestVerifier(t, Config{Now: clock.Now, Issuers: []Issuer{{
				Issuer: srv.URL, Audiences: []string{testAud}, Discovery: true, JWKS: JWKSOptions{MinRefresh: time.Hour},
			}}})
			require.Eventually(t, func() bool { return v.Health()[0].Fetches >= 1 }, 10*time.Second, time.Millisecond)
			require.Equal(t, tt.wantFetches, srv.Fetches())
			if tt.want != "" {
				require.Contains(t, v.Health()[0].LastError, tt.want)
				return
			}
			require.GreaterOrEqual(t, srv.DiscoveryFetches(), 1)
			_, err := v.Verify(context.Background(), key.Mint(authntest.Claims(srv.URL, testAud, "acme", clock.Now(), time.Minute)))
			require.NoError(t, err)
		})
	}
	require.Equal(t, 0, other.Fetches(), "cross-origin jwks_uri never fetched")
}

func TestWaitReadyAndNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		clock := newClock()
		key := authntest.NewEd25519(t)
		srvs := []*authntest.JWKSServer{authntest.NewJWKSServer(t, key), authntest.NewJWKSServer(t, key), authntest.NewJWKSServer(t, key)}
		var issuers []Issuer
		for i, s := range srvs {
			in := remote(s.JWKSURL(), JWKSOptions{})
			in.Issuer = fmt.Sprintf("https://iss%d.example", i)
			issuers = append(issuers, in)
		}
		release := srvs[2].Hold()
		v, err := New(Config{Now: clock.Now, Issuers: issuers})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		require.Eventually(t, func() bool { return srvs[2].Fetches() == 1 }, 10*time.Second, time.Millisecond)
		cancel()
		err = v.WaitReady(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "iss2")
		release()
		waitReady(t, v)
		require.NoError(t, v.Ready())

		// A fetch in flight when Close is called is abandoned.
		release = srvs[0].Hold()
		defer release()
		errc := make(chan error, 1)
		go func() {
			_, err := v.Verify(context.Background(), withKid(key, "new").Mint(authntest.Claims("https://iss0.example", testAud, "acme", clock.Now(), time.Minute)))
			errc <- err
		}()
		require.Eventually(t, func() bool { return srvs[0].Fetches() == 2 }, 10*time.Second, time.Millisecond)
		require.NoError(t, v.Close())
		require.ErrorIs(t, <-errc, ErrUnknownKey)
		for _, s := range srvs {
			s.Close()
		}
	}()
	settleGoroutines(t, before)
}
