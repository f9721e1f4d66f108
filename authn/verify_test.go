package authn

import (
	"context"
	"crypto/elliptic"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/graphname"
)

const (
	orgIss   = "https://orgs.example"
	otherIss = "https://other.example"
	typedIss = "https://typed.example"
)

// conformance is the setting of the conformance tests: four issuers with
// static keys, a fake clock and an in-memory revocation store.
type conformance struct {
	clock  *fakeClock
	keys   testKeys
	orgKey *authntest.Key
	other  *authntest.Key
	typed  *authntest.Key
	revs   *MemoryRevocation
	v      *Verifier
}

func newConformance(t *testing.T) *conformance {
	c := &conformance{clock: newClock(), keys: newTestKeys(t)}
	c.orgKey = authntest.NewEd25519(t)
	c.other = authntest.NewEC(t, elliptic.P256())
	c.other.KeyID = "other-1"
	c.typed = authntest.NewEd25519(t)
	c.revs = NewMemoryRevocation(c.clock.Now)
	c.v = newTestVerifier(t, Config{
		Now:        c.clock.Now,
		Revocation: c.revs,
		Issuers: []Issuer{
			{Issuer: testIss, Audiences: []string{testAud, "urn:also-me"}, Keys: c.keys.public()},
			{
				Issuer: orgIss, Audiences: []string{testAud},
				Keys:           []PublicKey{{Key: c.orgKey.Public()}},
				TenantClaim:    "custom_claims.organization",
				AllowedTenants: []string{"acme", "globex"},
			},
			{Issuer: otherIss, Audiences: []string{testAud}, Keys: []PublicKey{{KeyID: c.other.KeyID, Key: c.other.Public()}}},
			{
				Issuer: typedIss, Audiences: []string{testAud},
				Keys:           []PublicKey{{KeyID: c.typed.KeyID, Key: c.typed.Public(), Algorithm: "EdDSA"}},
				Algorithms:     []string{"EdDSA", "Ed25519"},
				RequiredType:   "at+jwt",
				MaxLifetime:    time.Hour,
				RequiredScopes: []string{"graph:read"},
				RequireJTI:     true,
				TenantAllowed:  func(t string) bool { return t != "initech" },
			},
		},
	})
	return c
}

func (c *conformance) claims() map[string]any { return claimsAt(c.clock.Now()) }

func (c *conformance) orgClaims(org any) map[string]any {
	m := authntest.Claims(orgIss, testAud, "user-7", c.clock.Now(), 10*time.Minute)
	if org != nil {
		m["custom_claims"] = map[string]any{"organization": org}
	}
	return m
}

func (c *conformance) typedClaims() map[string]any {
	m := authntest.Claims(typedIss, testAud, "acme", c.clock.Now(), 10*time.Minute)
	m["scope"] = "graph:read graph:write"
	return m
}

// with returns a copy of m with the given changes; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	c := newConformance(t)
	now := c.clock.Now()
	rsa, ec, ed := c.keys.rsa, c.keys.ec, c.keys.ed
	revoked := c.claims()
	require.NoError(t, c.revs.Revoke(context.Background(), revoked["jti"].(string), now.Add(time.Hour)))

	tests := []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		// Accepted tokens, one per algorithm and claim form.
		{"RS256", rsa.Mint(c.claims()), nil},
		{"ES256", ec.Mint(c.claims()), nil},
		{"EdDSA", ed.Mint(c.claims()), nil},
		{"aud array containing ours", rsa.Mint(with(c.claims(), "aud", []string{"urn:x", testAud})), nil},
		{"second configured audience", rsa.Mint(with(c.claims(), "aud", "urn:also-me")), nil},
		{"exp within leeway", rsa.Mint(with(c.claims(), "exp", now.Add(-20*time.Second).Unix())), nil},
		{"nbf within leeway", rsa.Mint(with(c.claims(), "nbf", now.Add(20*time.Second).Unix())), nil},
		{"jku, x5u, jwk and x5c ignored", rsa.MintWithHeader(map[string]any{
			"alg": "RS256", "kid": rsa.KeyID, "jku": "https://evil.example/jwks", "x5u": "https://evil.example/x5u",
			"jwk": c.other.JWK(), "x5c": []string{"MIIB"},
		}, c.claims()), nil},
		{"tenant at dotted path", c.orgKey.Mint(c.orgClaims("globex")), nil},
		{"typ at+jwt", c.typed.Mint(c.typedClaims()), nil},
		{"typ application/at+jwt", c.typed.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": c.typed.KeyID, "typ": "application/AT+JWT"}, c.typedClaims()), nil},

		// Algorithm and header attacks.
		{"alg none", authntest.Unsigned(c.claims()), ErrUnsupportedAlg},
		{"HS256 with the RSA public key as secret", authntest.HS256(rsa.PEM(), map[string]any{"kid": rsa.KeyID}, c.claims()), ErrUnsupportedAlg},
		{"HS256 with the JWK n as secret", authntest.HS256([]byte(rsa.JWK()["n"].(string)), nil, c.claims()), ErrUnsupportedAlg},
		{"alg not allowed for issuer", mintAs(t, rsa, "PS256", c.claims()), ErrUnsupportedAlg},
		{"ES256 header on an RSA kid", ec.MintWithHeader(map[string]any{"alg": "ES256", "kid": rsa.KeyID}, c.claims()), ErrUnknownKey},
		{"alg restricted by key", mintAs(t, c.typed, "Ed25519", c.typedClaims()), ErrUnknownKey},
		{"crit header", rsa.MintWithHeader(map[string]any{"alg": "RS256", "kid": rsa.KeyID, "crit": []string{"exp"}, "exp": 1}, c.claims()), ErrCritHeader},
		{"crit null", rsa.MintWithHeader(map[string]any{"alg": "RS256", "kid": rsa.KeyID, "crit": nil}, c.claims()), ErrCritHeader},
		{"typ missing", c.typed.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": c.typed.KeyID}, c.typedClaims()), ErrWrongType},
		{"typ JWT (an ID token)", c.typed.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": c.typed.KeyID, "typ": "JWT"}, c.typedClaims()), ErrWrongType},

		// Shape and size.
		{"oversized", rsa.Mint(with(c.claims(), "pad", strings.Repeat("x", DefaultMaxTokenSize))), ErrTooLarge},
		{"5-part JWE", authntest.JWE(), ErrMalformed},
		{"two parts", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0", ErrMalformed},
		{"padding in segment", strings.Replace(rsa.Mint(c.claims()), ".", "=.", 1), ErrMalformed},
		{"header not JSON", authntest.Segment("nope") + "." + authntest.Segment(c.claims()) + ".c2ln", ErrMalformed},
		{"payload not an object", rsa.MintWithHeader(map[string]any{"alg": "RS256", "kid": rsa.KeyID}, nil), ErrMalformed},

		// Issuer and keys.
		{"wrong iss", rsa.Mint(with(c.claims(), "iss", "https://evil.example")), ErrUnknownIssuer},
		{"missing iss", rsa.Mint(with(c.claims(), "iss", nil)), ErrUnknownIssuer},
		{"iss with trailing slash", rsa.Mint(with(c.claims(), "iss", testIss+"/")), ErrUnknownIssuer},
		{"unknown kid", rsa.MintWithHeader(map[string]any{"alg": "RS256", "kid": "nope"}, c.claims()), ErrUnknownKey},
		{"no kid with several keys", rsa.MintWithHeader(map[string]any{"alg": "RS256"}, c.claims()), ErrUnknownKey},
		{"kid of another issuer", c.other.Mint(c.claims()), ErrUnknownKey},
		{"other issuer's key claiming our iss, our kid", c.other.MintWithHeader(map[string]any{"alg": "ES256", "kid": ec.KeyID}, c.claims()), ErrBadSignature},
		{"tampered payload", authntest.Tamper(rsa.Mint(c.claims()), with(c.claims(), "sub", "globex")), ErrBadSignature},
		{"signature of another token", swapSig(rsa.Mint(c.claims()), rsa.Mint(with(c.claims(), "sub", "globex"))), ErrBadSignature},
		{"empty signature", strings.TrimRight(rsa.Mint(c.claims()), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), ErrBadSignature},

		// Time.
		{"expired", rsa.Mint(with(c.claims(), "exp", now.Add(-time.Minute).Unix())), ErrExpired},
		{"missing exp", rsa.Mint(with(c.claims(), "exp", nil)), ErrMissingExp},
		{"exp as string", rsa.Mint(with(c.claims(), "exp", "tomorrow")), ErrMalformed},
		{"nbf in the future", rsa.Mint(with(c.claims(), "nbf", now.Add(time.Minute).Unix())), ErrNotYetValid},
		{"iat in the future", rsa.Mint(with(c.claims(), "iat", now.Add(time.Minute).Unix())), ErrIssuedInFuture},
		{"lifetime too long", c.typed.Mint(with(c.typedClaims(), "exp", now.Add(2*time.Hour).Unix())), ErrLifetimeTooLong},

		// Audience.
		{"wrong aud", rsa.Mint(with(c.claims(), "aud", "https://other-resource.example")), ErrWrongAudience},
		{"missing aud", rsa.Mint(with(c.claims(), "aud", nil)), ErrWrongAudience},
		{"aud array without ours", rsa.Mint(with(c.claims(), "aud", []string{"urn:a", "urn:b"})), ErrWrongAudience},
		{"empty aud array", rsa.Mint(with(c.claims(), "aud", []string{})), ErrWrongAudience},
		{"aud array with a number", rsa.Mint(with(c.claims(), "aud", []any{1, testAud})), ErrMalformed},

		// Subject and tenant.
		{"missing sub", rsa.Mint(with(c.claims(), "sub", nil)), ErrMissingSubject},
		{"missing tenant", c.orgKey.Mint(c.orgClaims(nil)), ErrMissingTenant},
		{"empty tenant", c.orgKey.Mint(c.orgClaims("")), ErrMissingTenant},
		{"tenant not a string", c.orgKey.Mint(c.orgClaims(42)), ErrInvalidTenant},
		{"invalid tenant (prefix collision)", c.orgKey.Mint(c.orgClaims("acme_corp")), ErrInvalidTenant},
		{"invalid tenant (glob)", rsa.Mint(with(c.claims(), "sub", "*")), ErrInvalidTenant},
		{"issuer-tenant binding (list)", c.orgKey.Mint(c.orgClaims("initech")), ErrTenantNotAllowed},
		{"issuer-tenant binding (func)", c.typed.Mint(with(c.typedClaims(), "sub", "initech")), ErrTenantNotAllowed},

		// Scopes, jti, revocation.
		{"required scope missing", c.typed.Mint(with(c.typedClaims(), "scope", "graph:write")), ErrInsufficientScope},
		{"scope not a string", rsa.Mint(with(c.claims(), "scope", 7)), ErrMalformed},
		{"missing jti when required", c.typed.Mint(with(c.typedClaims(), "jti", nil)), ErrMissingJTI},
		{"revoked jti", rsa.Mint(revoked), ErrRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				require.NoError(t, err)
				require.NotEmpty(t, p.Tenant)
				return
			}
			require.Nil(t, p)
			requireRefused(t, err, tt.want, tt.token)
			// Exactly one reason.
			for _, other := range allReasons {
				if other != tt.want {
					require.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

var allReasons = []error{
	ErrTooLarge, ErrMalformed, ErrUnsupportedAlg, ErrCritHeader, ErrWrongType, ErrUnknownIssuer,
	ErrUnknownKey, ErrKeysStale, ErrBadSignature, ErrMissingExp, ErrExpired, ErrNotYetValid,
	ErrIssuedInFuture, ErrLifetimeTooLong, ErrWrongAudience, ErrMissingSubject, ErrMissingTenant,
	ErrInvalidTenant, ErrTenantNotAllowed, ErrInsufficientScope, ErrMissingJTI, ErrRevoked,
	ErrRevocationUnavailable, ErrClosed,
}

// mintAs signs with k's key under another alg name.
func mintAs(t *testing.T, k *authntest.Key, alg string, claims map[string]any) string {
	t.Helper()
	k2 := *k
	k2.Alg = alg
	return k2.Mint(claims)
}

func swapSig(a, b string) string {
	return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
}

func TestPrincipal(t *testing.T) {
	c := newConformance(t)
	cl := c.typedClaims()
	cl["scp"] = []string{"graph:admin", "graph:read"}
	cl["custom"] = map[string]any{"team": "blue"}
	p, err := c.v.Verify(context.Background(), c.typed.Mint(cl))
	require.NoError(t, err)
	now := c.clock.Now()
	require.Equal(t, "acme", p.Tenant)
	require.Equal(t, "acme", p.Subject)
	require.Equal(t, typedIss, p.Issuer)
	require.Equal(t, []string{"graph:read", "graph:write", "graph:admin"}, p.Scopes)
	require.True(t, p.HasScope("graph:admin"))
	require.False(t, p.HasScope("graph"))
	require.Equal(t, now.Add(10*time.Minute).Unix(), p.Expiry.Unix())
	require.Equal(t, now.Unix(), p.IssuedAt.Unix())
	require.Equal(t, cl["jti"], p.JTI)
	require.Equal(t, "blue", p.Claims["custom"].(map[string]any)["team"])
	require.Equal(t, typedIss+" acme", p.UserID())

	// The go-sdk adapter and the tenancy hand-over contract.
	ti, err := c.v.TokenVerifier()(context.Background(), c.typed.Mint(cl), nil)
	require.NoError(t, err)
	require.Equal(t, typedIss+" acme", ti.UserID)
	require.Equal(t, p.Scopes, ti.Scopes)
	require.Equal(t, p.Expiry, ti.Expiration)
	require.Equal(t, "acme", ti.Extra[ExtraTenant])
	require.Equal(t, "acme", ti.Extra[ExtraSubject])
	require.Equal(t, typedIss, ti.Extra[ExtraIssuer])
	got, ok := PrincipalFromTokenInfo(ti)
	require.True(t, ok)
	require.Equal(t, "acme", got.Tenant)
	_, ok = PrincipalFromTokenInfo(&auth.TokenInfo{})
	require.False(t, ok)

	// Tenant from a dotted path differs from the subject.
	p, err = c.v.Verify(context.Background(), c.orgKey.Mint(c.orgClaims("globex")))
	require.NoError(t, err)
	require.Equal(t, "globex", p.Tenant)
	require.Equal(t, "user-7", p.Subject)
	require.Equal(t, orgIss+" user-7", p.UserID())
}

func TestTokenVerifierErrorsAreInvalidToken(t *testing.T) {
	c := newConformance(t)
	tv := c.v.TokenVerifier()
	for _, tok := range []string{"", "x", authntest.Unsigned(c.claims()), authntest.JWE(), c.keys.rsa.Mint(with(c.claims(), "exp", nil))} {
		ti, err := tv(context.Background(), tok, nil)
		require.Nil(t, ti)
		require.ErrorIs(t, err, auth.ErrInvalidToken)
	}
}

func TestLeewayAndClock(t *testing.T) {
	clock := newClock()
	keys := newTestKeys(t)
	for _, tt := range []struct {
		leeway time.Duration
		expAgo time.Duration
		want   error
	}{
		{NoLeeway, time.Second, ErrExpired},
		{NoLeeway, 0, ErrExpired}, // exp is the first instant the token is invalid
		{NoLeeway, -time.Second, nil},
		{0, 29 * time.Second, nil}, // default 30 s
		{0, 31 * time.Second, ErrExpired},
		{MaxLeeway, 4 * time.Minute, nil},
	} {
		v := newTestVerifier(t, Config{Now: clock.Now, Leeway: tt.leeway, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
		_, err := v.Verify(context.Background(), keys.ed.Mint(with(claimsAt(clock.Now()), "exp", clock.Now().Add(-tt.expAgo).Unix())))
		if tt.want == nil {
			require.NoError(t, err, "leeway %v exp %v ago", tt.leeway, tt.expAgo)
		} else {
			require.ErrorIs(t, err, tt.want, "leeway %v exp %v ago", tt.leeway, tt.expAgo)
		}
	}
}

func TestRevocationStoreDownFailsClosed(t *testing.T) {
	keys := newTestKeys(t)
	v := newTestVerifier(t, Config{Revocation: failingRevocation{}, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
	tok := keys.ed.Mint(claimsAt(time.Now()))
	_, err := v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrRevocationUnavailable, tok)
	require.NotContains(t, err.Error(), "10.1.2.3", "store address must not reach the client")
	require.Contains(t, errorsCause(err), "10.1.2.3", "cause kept for logs")
}

func errorsCause(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) && ve.Cause != nil {
		return ve.Cause.Error()
	}
	return ""
}

func TestTenantValidator(t *testing.T) {
	keys := newTestKeys(t)
	opaque, err := graphname.New(graphname.Options{Scheme: graphname.OpaqueSubject})
	require.NoError(t, err)
	for _, tt := range []struct {
		name   string
		tv     TenantValidator
		sub    string
		reason error
	}{
		{"default readable accepts", nil, "acme", nil},
		{"default readable refuses upper case", nil, "Acme", ErrInvalidTenant},
		{"default readable refuses separator", nil, "a_b", ErrInvalidTenant},
		{"opaque subject accepts an IdP subject", opaque, "auth0|64f1c2 Ü", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, Config{TenantValidator: tt.tv, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
			_, err := v.Verify(context.Background(), keys.ed.Mint(with(claimsAt(time.Now()), "sub", tt.sub)))
			if tt.reason == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.reason)
			require.ErrorIs(t, err, graphname.ErrInvalidTenant, "validator's error is the cause")
		})
	}
}

func TestInteropWithGolangJWT(t *testing.T) {
	// Tokens minted by another library verify; ours verify in golang-jwt.
	keys := newTestKeys(t)
	v := newTestVerifier(t, Config{Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public(), Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}}}})
	now := time.Now()
	for _, tt := range []struct {
		m   jwt.SigningMethod
		key *authntest.Key
	}{
		{jwt.SigningMethodRS256, keys.rsa}, {jwt.SigningMethodPS256, keys.rsa}, {jwt.SigningMethodES256, keys.ec}, {jwt.SigningMethodEdDSA, keys.ed},
	} {
		tok := jwt.NewWithClaims(tt.m, jwt.MapClaims(claimsAt(now)))
		tok.Header["kid"] = tt.key.KeyID
		s, err := tok.SignedString(tt.key.Private)
		require.NoError(t, err)
		p, err := v.Verify(context.Background(), s)
		require.NoError(t, err, tt.m.Alg())
		require.Equal(t, "acme", p.Tenant)

		ours := tt.key.Mint(claimsAt(now))
		if tt.m == jwt.SigningMethodPS256 {
			continue
		}
		_, err = jwt.Parse(ours, func(*jwt.Token) (any, error) { return tt.key.Public(), nil },
			jwt.WithValidMethods([]string{tt.m.Alg()}), jwt.WithAudience(testAud), jwt.WithIssuer(testIss))
		require.NoError(t, err, tt.m.Alg())
	}
}

func TestUnknownIssuerMakesNoNetworkCall(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer srv.Close()
	key := authntest.NewEd25519(t)
	v := newTestVerifier(t, Config{Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, JWKSURL: srv.URL + "/jwks", JWKS: JWKSOptions{MinRefresh: time.Hour}}}})
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond, "initial fetch")
	before := calls.Load()
	tok := key.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": "fresh-kid", "jku": srv.URL + "/attacker"},
		authntest.Claims("https://unknown.example", testAud, "acme", time.Now(), time.Minute))
	for range 50 {
		_, err := v.Verify(context.Background(), tok)
		requireRefused(t, err, ErrUnknownIssuer, tok)
	}
	require.Equal(t, before, calls.Load())
}

func TestReason(t *testing.T) {
	require.Equal(t, "ok", Reason(nil))
	require.Equal(t, "expired", Reason(fail(ErrExpired, "", "")))
	require.Equal(t, "error", Reason(errors.New("x")))
	require.Equal(t, "bad_signature", Reason(ErrBadSignature))
	seen := map[string]bool{}
	for _, r := range allReasons {
		code := Reason(r)
		require.NotEqual(t, "error", code)
		require.False(t, seen[code], "duplicate code %s", code)
		seen[code] = true
	}
}

func TestClosedVerifierRefuses(t *testing.T) {
	keys := newTestKeys(t)
	v, err := New(Config{Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}}})
	require.NoError(t, err)
	require.NoError(t, v.Close())
	require.NoError(t, v.Close())
	tok := keys.ed.Mint(claimsAt(time.Now()))
	_, err = v.Verify(context.Background(), tok)
	requireRefused(t, err, ErrClosed, tok)
	require.ErrorIs(t, v.Ready(), ErrClosed)
}

func TestVerifiedHook(t *testing.T) {
	keys := newTestKeys(t)
	var events []VerifyEvent
	v := newTestVerifier(t, Config{
		Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()}},
		Hooks:   Hooks{Verified: func(e VerifyEvent) { events = append(events, e) }},
	})
	ctx := context.Background()
	now := time.Now()
	_, _ = v.Verify(ctx, keys.ed.Mint(claimsAt(now)))
	_, _ = v.Verify(ctx, keys.ed.Mint(with(claimsAt(now), "iss", "https://attacker.example/"+strings.Repeat("x", 100))))
	_, _ = v.Verify(ctx, keys.ed.Mint(with(claimsAt(now), "aud", "x")))
	_, _ = v.Verify(ctx, "garbage")
	require.Len(t, events, 4)
	require.Equal(t, VerifyEvent{Issuer: testIss, Reason: "ok"}, events[0])
	require.Equal(t, "", events[1].Issuer, "unverified issuers are not reported")
	require.Equal(t, "unknown_issuer", events[1].Reason)
	require.Equal(t, testIss, events[2].Issuer)
	require.Equal(t, "wrong_audience", events[2].Reason)
	require.ErrorIs(t, events[2].Err, ErrWrongAudience)
	require.Equal(t, "malformed", events[3].Reason)
}
