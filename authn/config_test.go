package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

func TestConfigErrors(t *testing.T) {
	keys := newTestKeys(t)
	weak := authntest.CachedRSA(t, 1024, 0)
	p521 := authntest.NewEC(t, elliptic.P521())
	good := keys.public()
	base := func(mod func(*Issuer)) Config {
		in := Issuer{Issuer: testIss, Audiences: []string{testAud}, Keys: good}
		mod(&in)
		return Config{Issuers: []Issuer{in}}
	}
	tests := []struct {
		name    string
		cfg     Config
		wantKey bool // also wraps ErrUnsupportedKey
		msg     string
	}{
		{"no issuers", Config{}, false, "no Issuers"},
		{"RSA-1024 key", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: weak.Public()}} }), true, "1024 bits"},
		{"P-521 key", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: p521.Public()}} }), true, "P-521"},
		{"short Ed25519 key", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: ed25519.PublicKey(make([]byte, 31))}} }), true, "31 bytes"},
		{"RSA even exponent", base(func(in *Issuer) {
			in.Keys = []PublicKey{{Key: &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2100), E: 4}}}
		}), true, "exponent"},
		{"symmetric key", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: []byte("secret")}} }), true, "not supported"},
		{"key alg does not fit", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: keys.rsa.Public(), Algorithm: "ES256"}} }), true, "does not fit"},
		{"key alg HS256", base(func(in *Issuer) { in.Keys = []PublicKey{{Key: keys.rsa.Public(), Algorithm: "HS256"}} }), true, "not accepted"},
		{"no audience", base(func(in *Issuer) { in.Audiences = nil }), false, "no Audiences"},
		{"empty audience", base(func(in *Issuer) { in.Audiences = []string{""} }), false, "empty audience"},
		{"alg none", base(func(in *Issuer) { in.Algorithms = []string{"none"} }), false, `"none" not accepted`},
		{"alg HS256", base(func(in *Issuer) { in.Algorithms = []string{"RS256", "HS256"} }), false, `"HS256" not accepted`},
		{"alg ES512", base(func(in *Issuer) { in.Algorithms = []string{"ES512"} }), false, `"ES512" not accepted`},
		{"alg lower case", base(func(in *Issuer) { in.Algorithms = []string{"rs256"} }), false, `"rs256" not accepted`},
		{"empty issuer", base(func(in *Issuer) { in.Issuer = "" }), false, "empty Issuer"},
		{"issuer with space", base(func(in *Issuer) { in.Issuer = "https://a.example x" }), false, "white space"},
		{"no key source", base(func(in *Issuer) { in.Keys = nil }), false, "exactly one key source"},
		{"two key sources", base(func(in *Issuer) { in.JWKSURL = "https://issuer.example/jwks" }), false, "exactly one key source"},
		{"several keys without kid", base(func(in *Issuer) {
			in.Keys = []PublicKey{{Key: keys.rsa.Public()}, {Key: keys.ec.Public()}}
		}), false, "needs a KeyID"},
		{"duplicate kid", base(func(in *Issuer) {
			in.Keys = []PublicKey{{KeyID: "a", Key: keys.rsa.Public()}, {KeyID: "a", Key: keys.ec.Public()}}
		}), false, "duplicate KeyID"},
		{"plain http JWKS", base(func(in *Issuer) { in.Keys, in.JWKSURL = nil, "http://issuer.example/jwks" }), false, "loopback"},
		{"ftp JWKS", base(func(in *Issuer) { in.Keys, in.JWKSURL = nil, "ftp://issuer.example/jwks" }), false, "https"},
		{"JWKS URL with credentials", base(func(in *Issuer) { in.Keys, in.JWKSURL = nil, "https://u:p@issuer.example/jwks" }), false, "credentials"},
		{"discovery on plain http", base(func(in *Issuer) { in.Keys, in.Discovery, in.Issuer = nil, true, "http://issuer.example" }), false, "loopback"},
		{"discovery of a non-URL issuer", base(func(in *Issuer) { in.Keys, in.Discovery, in.Issuer = nil, true, "acme-idp" }), false, "https"},
		{"staleness below refresh", base(func(in *Issuer) {
			in.Keys, in.JWKSURL = nil, "https://issuer.example/jwks"
			in.JWKS = JWKSOptions{MaxRefresh: time.Hour, MaxStaleness: time.Minute}
		}), false, "MaxStaleness"},
		{"refresh below 1s", base(func(in *Issuer) {
			in.Keys, in.JWKSURL = nil, "https://issuer.example/jwks"
			in.JWKS = JWKSOptions{MinRefresh: time.Millisecond}
		}), false, "MinRefresh"},
		{"empty tenant path element", base(func(in *Issuer) { in.TenantClaim = "a..b" }), false, "empty path element"},
		{"negative lifetime", base(func(in *Issuer) { in.MaxLifetime = -1 }), false, "MaxLifetime"},
		{"duplicate issuer", Config{Issuers: []Issuer{
			{Issuer: testIss, Audiences: []string{testAud}, Keys: good},
			{Issuer: testIss, Audiences: []string{testAud}, Keys: good},
		}}, false, "twice"},
		{"leeway too large", func() Config { c := base(func(*Issuer) {}); c.Leeway = time.Hour; return c }(), false, "Leeway"},
		{"token size too small", func() Config { c := base(func(*Issuer) {}); c.MaxTokenSize = 10; return c }(), false, "MaxTokenSize"},
		{"cache TTL too long", func() Config { c := base(func(*Issuer) {}); c.Cache = &CacheConfig{TTL: time.Hour}; return c }(), false, "Cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			require.Nil(t, v)
			require.ErrorIs(t, err, ErrInvalidConfig)
			if tt.wantKey {
				require.ErrorContains(t, err, ErrUnsupportedKey.Error())
			}
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestConfigAccepts(t *testing.T) {
	keys := newTestKeys(t)
	p384 := authntest.NewEC(t, elliptic.P384())
	rsa3072 := authntest.CachedRSA(t, 3072, 0)
	v := newTestVerifier(t, Config{Issuers: []Issuer{{
		Issuer: testIss, Audiences: []string{testAud},
		Keys:       []PublicKey{{Key: p384.Public(), KeyID: "p384"}, {Key: rsa3072.Public(), KeyID: "r4k"}, {Key: keys.ed.Public(), KeyID: "ed"}},
		Algorithms: []string{"ES384", "RS512", "PS384", "EdDSA", "EdDSA"},
	}}})
	require.Equal(t, []string{testIss}, v.Issuers())
	h := v.Health()
	require.Len(t, h, 1)
	require.Equal(t, 3, h[0].Keys)
	require.False(t, h[0].Stale)
	require.NoError(t, v.Ready())

	now := time.Now()
	for _, k := range []struct {
		key *authntest.Key
		alg string
	}{{p384, "ES384"}, {rsa3072, "RS512"}, {rsa3072, "PS384"}, {keys.ed, "EdDSA"}} {
		kk := *k.key
		kk.Alg = k.alg
		kk.KeyID = map[*authntest.Key]string{p384: "p384", rsa3072: "r4k", keys.ed: "ed"}[k.key]
		_, err := v.Verify(t.Context(), kk.Mint(claimsAt(now)))
		require.NoError(t, err, k.alg)
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	keys := newTestKeys(t)
	for _, k := range []*authntest.Key{keys.rsa, keys.ec, keys.ed} {
		pub, err := ParsePublicKeyPEM(k.PEM())
		require.NoError(t, err)
		require.True(t, pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()))
	}
	// PKCS #1 and certificates.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(keys.rsa.Public().(*rsa.PublicKey))})
	_, err := ParsePublicKeyPEM(pkcs1)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, keys.ec.Public(), keys.ec.Private)
	require.NoError(t, err)
	pub, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	require.NoError(t, err)
	require.True(t, pub.(*ecdsa.PublicKey).Equal(keys.ec.Public()))

	// Refused.
	weak := authntest.CachedRSA(t, 1024, 0)
	_, err = ParsePublicKeyPEM(weak.PEM())
	require.ErrorIs(t, err, ErrUnsupportedKey)
	require.ErrorContains(t, err, "1024 bits")
	_, err = ParsePublicKeyPEM([]byte("not pem"))
	require.ErrorIs(t, err, ErrUnsupportedKey)
	der, err = x509.MarshalPKCS8PrivateKey(keys.ed.Private)
	require.NoError(t, err)
	_, err = ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.ErrorIs(t, err, ErrUnsupportedKey)
}

func TestParseJWK(t *testing.T) {
	keys := newTestKeys(t)
	for _, k := range []*authntest.Key{keys.rsa, keys.ec, keys.ed, authntest.NewEC(t, elliptic.P384())} {
		pk, err := ParseJWK(k.JWKJSON())
		require.NoError(t, err)
		require.Equal(t, k.KeyID, pk.KeyID)
		require.Equal(t, k.Alg, pk.Algorithm)
		require.True(t, pk.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()))
	}
	weak := authntest.CachedRSA(t, 1024, 0)
	refused := map[string]string{
		"RSA-1024":          string(weak.JWKJSON()),
		"private RSA":       `{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`,
		"symmetric":         `{"kty":"oct","k":"c2VjcmV0"}`,
		"use enc":           `{"kty":"OKP","crv":"Ed25519","use":"enc","x":"` + keys.ed.JWK()["x"].(string) + `"}`,
		"key_ops sign only": `{"kty":"OKP","crv":"Ed25519","key_ops":["sign"],"x":"` + keys.ed.JWK()["x"].(string) + `"}`,
		"alg HS256":         `{"kty":"OKP","crv":"Ed25519","alg":"HS256","x":"` + keys.ed.JWK()["x"].(string) + `"}`,
		"X25519":            `{"kty":"OKP","crv":"X25519","x":"` + keys.ed.JWK()["x"].(string) + `"}`,
		"P-521":             string(authntest.NewEC(t, elliptic.P521()).JWKJSON()),
		"EC off curve":      `{"kty":"EC","crv":"P-256","x":"` + keys.ec.JWK()["x"].(string) + `","y":"` + keys.ec.JWK()["x"].(string) + `"}`,
		"EC short x":        `{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}`,
		"padded base64":     `{"kty":"OKP","crv":"Ed25519","x":"` + keys.ed.JWK()["x"].(string) + `="}`,
		"not an object":     `[1,2]`,
		"huge exponent":     `{"kty":"RSA","n":"` + keys.rsa.JWK()["n"].(string) + `","e":"AQAAAAAB"}`,
	}
	for name, j := range refused {
		_, err := ParseJWK([]byte(j))
		require.ErrorIs(t, err, ErrUnsupportedKey, name)
	}
	ks, skipped, err := ParseJWKS([]byte(`{"keys":[` + string(keys.ed.JWKJSON()) + `,` + refused["RSA-1024"] + `,` + refused["symmetric"] + `]}`))
	require.NoError(t, err)
	require.Len(t, ks, 1)
	require.Len(t, skipped, 2)
	_, _, err = ParseJWKS([]byte(`{"nokeys":[]}`))
	require.Error(t, err)
	_, _, err = ParseJWKS([]byte(`<html>`))
	require.Error(t, err)
}
