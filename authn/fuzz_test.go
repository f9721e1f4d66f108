package authn

import (
	"context"
	"crypto/elliptic"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic,
// every refusal must be a *VerifyError wrapping auth.ErrInvalidToken, and
// nothing but the exact tokens minted for the seed corpus may verify
// (RSA PKCS #1 v1.5 and Ed25519 signatures are not malleable, and base64url
// decoding is strict).
func FuzzVerify(f *testing.F) {
	clock := newClock()
	rsaKey := authntest.CachedRSA(f, 2048, 0)
	rsaKey.KeyID = "rsa-1"
	edKey := authntest.NewEd25519(f)
	edKey.KeyID = "ed-1"
	in := Issuer{
		Issuer: testIss, Audiences: []string{testAud},
		Keys:        []PublicKey{{KeyID: "rsa-1", Key: rsaKey.Public()}, {KeyID: "ed-1", Key: edKey.Public()}},
		TenantClaim: "org.id", ScopeClaims: []string{"scope", "scp"},
	}
	mk := func(cache *CacheConfig) *Verifier {
		v, err := New(Config{Now: clock.Now, Cache: cache, MaxTokenSize: 4096, Issuers: []Issuer{in}})
		require.NoError(f, err)
		f.Cleanup(func() { _ = v.Close() })
		return v
	}
	plain, cached := mk(nil), mk(&CacheConfig{MaxEntries: 64})

	claims := func(kv ...any) map[string]any {
		c := with(claimsAt(clock.Now()), "org", map[string]any{"id": "acme"}, "scope", "a b", "scp", []string{"c"})
		return with(c, kv...)
	}
	valid := map[string]bool{}
	for _, k := range []*authntest.Key{rsaKey, edKey} {
		for _, c := range []map[string]any{claims(), claims("aud", []string{"x", testAud}), claims("jti", nil, "nbf", nil, "iat", nil)} {
			tok := k.Mint(c)
			valid[tok] = true
			f.Add(tok)
		}
	}
	for _, s := range []string{
		"", ".", "..", "....", "a.b.c", "a.b.c.d.e", "e30.e30.", "e30.e30.e30",
		authntest.Unsigned(claims()),
		authntest.HS256(rsaKey.PEM(), map[string]any{"kid": "rsa-1"}, claims()),
		authntest.JWE(),
		authntest.Tamper(edKey.Mint(claims()), claims("sub", "globex")),
		edKey.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": "ed-1", "crit": []string{"b64"}, "b64": false}, claims()),
		edKey.Mint(claims("exp", nil)),
		edKey.Mint(claims("exp", 1e300)),
		edKey.Mint(claims("exp", -1)),
		edKey.Mint(claims("org", map[string]any{"id": []any{"acme"}})),
		edKey.Mint(claims("aud", []any{nil, 1.5, map[string]any{}})),
		edKey.Mint(claims("scope", []any{"a", 1})),
		edKey.MintWithHeader(map[string]any{"alg": "EdDSA", "kid": strings.Repeat("k", 500)}, claims()),
		authntest.Segment(`{"alg":"EdDSA","kid":"ed-1"`) + "." + authntest.Segment(`{"iss":`) + ".AAAA",
		authntest.Segment(`{"alg":"EdDSA","alg":"none"}`) + "." + authntest.Segment(claims()) + ".",
		"eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0.////",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{plain, cached} {
			p, err := v.Verify(context.Background(), token)
			if err == nil {
				require.True(t, valid[token], "an unminted token verified: %q", token)
				require.Equal(t, "acme", p.Tenant)
				continue
			}
			require.Nil(t, p)
			require.ErrorIs(t, err, auth.ErrInvalidToken)
			var ve *VerifyError
			require.ErrorAs(t, err, &ve)
			require.NotEqual(t, "error", Reason(err))
		}
	})
}

// FuzzParseJWKS: arbitrary key-set documents never panic, and every key
// accepted is one a Verifier may use.
func FuzzParseJWKS(f *testing.F) {
	rsaKey := authntest.CachedRSA(f, 2048, 0)
	ec := authntest.NewEC(f, elliptic.P256())
	ed := authntest.NewEd25519(f)
	weak := authntest.CachedRSA(f, 1024, 0)
	f.Add([]byte(`{"keys":[` + string(rsaKey.JWKJSON()) + `,` + string(ec.JWKJSON()) + `,` + string(ed.JWKJSON()) + `]}`))
	f.Add([]byte(`{"keys":[` + string(weak.JWKJSON()) + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"RSA","n":"","e":""},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := ParseJWKS(data)
		if err != nil {
			require.Empty(t, keys)
			return
		}
		for _, k := range keys {
			vk, err := newVerifyKey(k)
			require.NoError(t, err)
			require.NotZero(t, vk.kind)
		}
	})
}

// FuzzCacheControl: header parsing never panics and the interval stays in
// bounds.
func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"", "max-age=60", "no-store", "public, max-age=99999999999999999999", `max-age="5"`, "max-age=-1,max-age=7", "=,,="} {
		f.Add(s)
	}
	o := JWKSOptions{MinRefresh: time.Minute, MaxRefresh: time.Hour}
	f.Fuzz(func(t *testing.T, h string) {
		d, ok := cacheMaxAge(h)
		require.GreaterOrEqual(t, d, time.Duration(0))
		iv := refreshInterval(d, ok, o)
		require.GreaterOrEqual(t, iv, o.MinRefresh)
		require.LessOrEqual(t, iv, o.MaxRefresh)
	})
}
