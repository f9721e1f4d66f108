package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

// BenchmarkVerify compares full, uncached verification of a typical access
// token ("authn") with the bare signature check of the same token ("raw":
// hashing the signing input and rsa.VerifyPKCS1v15 / ecdsa.Verify /
// ed25519.Verify, signature already decoded) and with golang-jwt's Parse.
// The difference between authn and raw is this package's overhead.
func BenchmarkVerify(b *testing.B) {
	clock := newClock()
	keys := map[string]*authntest.Key{
		"RS256": authntest.CachedRSA(b, 2048, 0),
		"ES256": authntest.NewEC(b, elliptic.P256()),
		"EdDSA": authntest.NewEd25519(b),
	}
	ctx := context.Background()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k := keys[alg]
		v, tok := benchVerifier(b, clock, k)
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := b64.DecodeString(tok[dot+1:])

		b.Run(alg+"/authn", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			switch pub := k.Public().(type) {
			case *rsa.PublicKey:
				for b.Loop() {
					h := sha256.Sum256(input)
					if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) != nil {
						b.Fatal("bad")
					}
				}
			case *ecdsa.PublicKey:
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				for b.Loop() {
					h := sha256.Sum256(input)
					if !ecdsa.Verify(pub, h[:], r, s) {
						b.Fatal("bad")
					}
				}
			case ed25519.PublicKey:
				for b.Loop() {
					if !ed25519.Verify(pub, input, sig) {
						b.Fatal("bad")
					}
				}
			}
		})
		b.Run(alg+"/golang-jwt", func(b *testing.B) {
			b.ReportAllocs()
			p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithAudience(testAud), jwt.WithIssuer(testIss),
				jwt.WithTimeFunc(clock.Now), jwt.WithExpirationRequired())
			kf := func(*jwt.Token) (any, error) { return k.Public(), nil }
			for b.Loop() {
				if _, err := p.Parse(tok, kf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached measures a hit in the verified-token cache, through
// Verify and through the MCP SDK adapter.
func BenchmarkVerifyCached(b *testing.B) {
	clock := newClock()
	k := authntest.CachedRSA(b, 2048, 0)
	v, err := New(Config{Now: clock.Now, Cache: &CacheConfig{}, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: []PublicKey{{Key: k.Public()}}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	tok := k.Mint(claimsAt(clock.Now()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	tv := v.TokenVerifier()
	b.Run("TokenVerifier", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tv(ctx, tok, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkOverhead measures this package's overhead over the raw
// signature check on a loaded machine: each iteration times a full
// verification and the raw check of the same token back to back, and the
// reported overhead-ns/op is the median of the differences.
func BenchmarkOverhead(b *testing.B) {
	clock := newClock()
	ctx := context.Background()
	for _, k := range []*authntest.Key{authntest.CachedRSA(b, 2048, 0), authntest.NewEC(b, elliptic.P256()), authntest.NewEd25519(b)} {
		v, tok := benchVerifier(b, clock, k)
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := b64.DecodeString(tok[dot+1:])
		var raw func() bool
		switch pub := k.Public().(type) {
		case *rsa.PublicKey:
			raw = func() bool {
				h := sha256.Sum256(input)
				return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
			}
		case *ecdsa.PublicKey:
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			raw = func() bool {
				h := sha256.Sum256(input)
				return ecdsa.Verify(pub, h[:], r, s)
			}
		case ed25519.PublicKey:
			raw = func() bool { return ed25519.Verify(pub, input, sig) }
		}
		b.Run(k.Alg, func(b *testing.B) {
			diffs := make([]time.Duration, 0, b.N)
			var ours, theirs time.Duration
			for i := 0; b.Loop(); i++ {
				var dOurs, dRaw time.Duration
				if i%2 == 0 {
					t0 := time.Now()
					_, err := v.Verify(ctx, tok)
					t1 := time.Now()
					ok := raw()
					t2 := time.Now()
					if err != nil || !ok {
						b.Fatal(err, ok)
					}
					dOurs, dRaw = t1.Sub(t0), t2.Sub(t1)
				} else {
					t0 := time.Now()
					ok := raw()
					t1 := time.Now()
					_, err := v.Verify(ctx, tok)
					t2 := time.Now()
					if err != nil || !ok {
						b.Fatal(err, ok)
					}
					dRaw, dOurs = t1.Sub(t0), t2.Sub(t1)
				}
				diffs = append(diffs, dOurs-dRaw)
				ours += dOurs
				theirs += dRaw
			}
			slices.Sort(diffs)
			b.ReportMetric(float64(diffs[len(diffs)/2].Nanoseconds()), "overhead-ns/op")
			b.ReportMetric(float64(ours.Nanoseconds())/float64(len(diffs)), "authn-ns/op")
			b.ReportMetric(float64(theirs.Nanoseconds())/float64(len(diffs)), "raw-ns/op")
		})
	}
}

// BenchmarkVerifyWithoutCrypto runs every step of an uncached verification
// except the signature check itself (parse, issuer, key lookup, claims):
// this package's overhead over raw verification, measured directly.
func BenchmarkVerifyWithoutCrypto(b *testing.B) {
	clock := newClock()
	ctx := context.Background()
	for _, k := range []*authntest.Key{authntest.CachedRSA(b, 2048, 0), authntest.NewEC(b, elliptic.P256()), authntest.NewEd25519(b)} {
		v, tok := benchVerifier(b, clock, k)
		b.Run(k.Alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := v.parse(tok)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := t.in.key(ctx, t.h.Kid, t.alg); err != nil {
					b.Fatal(err)
				}
				if _, err := v.checkClaims(ctx, t.in, t.claims, clock.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchVerifier returns a verifier that trusts k alone and a token signed
// by k; the verifier is closed when the benchmark ends.
func benchVerifier(b *testing.B, clock *fakeClock, k *authntest.Key) (*Verifier, string) {
	b.Helper()
	v, err := New(Config{Now: clock.Now, Issuers: []Issuer{{Issuer: testIss, Audiences: []string{testAud}, Keys: []PublicKey{{KeyID: k.KeyID, Key: k.Public()}}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	cl := claimsAt(clock.Now())
	cl["scope"] = "graph:read graph:write"
	return v, k.Mint(cl)
}
