package authntest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
)

// Key is a signing key pair for tests. Its KeyID and Alg end up in the
// header of the tokens it mints and in its public JWK.
type Key struct {
	// KeyID is the JWK "kid". NewRSA, NewEC and NewEd25519 set it to an
	// RFC 7638 thumbprint prefix; tests may change it before use.
	KeyID string
	// Alg is the JWS algorithm the key signs with ("RS256", "ES256",
	// "ES384", "EdDSA", "PS256", ...).
	Alg string
	// Private is the private key.
	Private crypto.Signer
}

// Public returns the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

var (
	rsaCacheMu sync.Mutex
	rsaCache   = map[int][]*rsa.PrivateKey{}
)

// NewRSA returns a freshly generated RSA key of the given size that signs
// with RS256. Sizes below 2048 bits are allowed, to test that verifiers
// refuse them.
func NewRSA(tb testing.TB, bits int) *Key {
	tb.Helper()
	pk, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatalf("authntest: generate RSA-%d: %v", bits, err)
	}
	return finish(tb, &Key{Alg: "RS256", Private: pk})
}

// CachedRSA is NewRSA drawing from a per-process pool, because generating
// RSA keys is slow: the same (bits, index) pair always yields the same key
// pair, under a fresh Key value. Distinct indexes give distinct keys.
func CachedRSA(tb testing.TB, bits, index int) *Key {
	tb.Helper()
	rsaCacheMu.Lock()
	defer rsaCacheMu.Unlock()
	for len(rsaCache[bits]) <= index {
		pk, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			tb.Fatalf("authntest: generate RSA-%d: %v", bits, err)
		}
		rsaCache[bits] = append(rsaCache[bits], pk)
	}
	return finish(tb, &Key{Alg: "RS256", Private: rsaCache[bits][index]})
}

// NewEC returns a fresh ECDSA key on P-256 (ES256), P-384 (ES384) or P-521
// (ES512, which verifiers of this project refuse).
func NewEC(tb testing.TB, curve elliptic.Curve) *Key {
	tb.Helper()
	pk, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		tb.Fatalf("authntest: generate EC key: %v", err)
	}
	alg := map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[curve.Params().BitSize]
	return finish(tb, &Key{Alg: alg, Private: pk})
}

// NewEd25519 returns a fresh Ed25519 key that signs with EdDSA.
func NewEd25519(tb testing.TB) *Key {
	tb.Helper()
	_, pk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("authntest: generate Ed25519 key: %v", err)
	}
	return finish(tb, &Key{Alg: "EdDSA", Private: pk})
}

func finish(tb testing.TB, k *Key) *Key {
	tb.Helper()
	tp, err := Thumbprint(k.Public())
	if err != nil {
		tb.Fatalf("authntest: %v", err)
	}
	k.KeyID = tp[:16]
	return k
}

// PEM returns the public key as a PKIX "PUBLIC KEY" PEM block.
func (k *Key) PEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(fmt.Sprintf("authntest: marshal public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWK returns the public key as a JWK object with "kid", "alg" and
// "use":"sig" set.
func (k *Key) JWK() map[string]any {
	m := PublicJWK(k.Public())
	if k.KeyID != "" {
		m["kid"] = k.KeyID
	}
	if k.Alg != "" {
		m["alg"] = k.Alg
	}
	m["use"] = "sig"
	return m
}

// JWKJSON returns JWK marshalled to JSON.
func (k *Key) JWKJSON() []byte {
	b, err := json.Marshal(k.JWK())
	if err != nil {
		panic(err)
	}
	return b
}

// PublicJWK returns the bare JWK members (kty, crv, n, e, x, y) of a public
// key, without kid, alg or use.
func PublicJWK(pub crypto.PublicKey) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		raw, err := p.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]any{"kty": "EC", "crv": p.Curve.Params().Name, "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(p)}
	default:
		panic(fmt.Sprintf("authntest: unsupported public key type %T", pub))
	}
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of a public key,
// base64url-encoded.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	m := PublicJWK(pub)
	var canon string
	switch m["kty"] {
	case "RSA":
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, m["e"], m["n"])
	case "EC":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, m["crv"], m["x"], m["y"])
	case "OKP":
		canon = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, m["x"])
	default:
		return "", fmt.Errorf("unsupported key type %v", m["kty"])
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
