package authntest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"time"
)

// Claims builds the registered claims of a typical access token: iss, sub,
// aud, iat, nbf and exp (now+ttl) and a random jti. Add or delete entries to
// build the token a test needs.
func Claims(iss, aud, sub string, now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{
		"iss": iss,
		"sub": sub,
		"aud": aud,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": RandomID(),
	}
}

// RandomID returns 16 random bytes, base64url-encoded.
func RandomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Mint signs claims with k. The header is {"alg": k.Alg, "kid": k.KeyID,
// "typ": "at+jwt"} (kid omitted when empty).
func (k *Key) Mint(claims map[string]any) string {
	h := map[string]any{"alg": k.Alg, "typ": "at+jwt"}
	if k.KeyID != "" {
		h["kid"] = k.KeyID
	}
	return k.MintWithHeader(h, claims)
}

// MintWithHeader signs claims with k under exactly the given header (which
// may name any alg, kid, typ, crit, jku, ...). The signature is made with
// k.Alg, whatever the header says.
func (k *Key) MintWithHeader(header, claims map[string]any) string {
	input := Segment(header) + "." + Segment(claims)
	sig, err := Sign(k.Private, k.Alg, []byte(input))
	if err != nil {
		panic(fmt.Sprintf("authntest: sign: %v", err))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Segment JSON-encodes v and base64url-encodes the result (a JWS segment).
// A []byte or json.RawMessage is used as the JSON text as is.
func Segment(v any) string {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case json.RawMessage:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		b, err = json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("authntest: marshal segment: %v", err))
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Sign produces a JWS signature over input with the given algorithm.
func Sign(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	var h crypto.Hash
	switch alg {
	case "RS256", "PS256", "ES256":
		h = crypto.SHA256
	case "RS384", "PS384", "ES384":
		h = crypto.SHA384
	case "RS512", "PS512", "ES512":
		h = crypto.SHA512
	case "EdDSA", "Ed25519":
		pk, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("alg %s needs an Ed25519 key, have %T", alg, key)
		}
		return ed25519.Sign(pk, input), nil
	default:
		return nil, fmt.Errorf("unsupported alg %q", alg)
	}
	d := digest(h, input)
	switch pk := key.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			return rsa.SignPSS(rand.Reader, pk, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(nil, pk, h, d)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, pk, d)
		if err != nil {
			return nil, err
		}
		size := (pk.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	default:
		return nil, fmt.Errorf("alg %s: unsupported key type %T", alg, key)
	}
}

func digest(h crypto.Hash, input []byte) []byte {
	var hh hash.Hash
	switch h {
	case crypto.SHA256:
		hh = sha256.New()
	case crypto.SHA384:
		hh = sha512.New384()
	default:
		hh = sha512.New()
	}
	hh.Write(input)
	return hh.Sum(nil)
}

// Unsigned returns a token with "alg":"none" and an empty signature: the
// classic attack that verifiers must refuse.
func Unsigned(claims map[string]any) string {
	return Segment(map[string]any{"alg": "none", "typ": "JWT"}) + "." + Segment(claims) + "."
}

// HS256 returns a token MACed with HMAC-SHA256 under secret, with the given
// header fields added to {"alg":"HS256"}. Passing a public key's PEM as the
// secret builds the RS256/HS256 key-confusion attack.
func HS256(secret []byte, header, claims map[string]any) string {
	h := map[string]any{"alg": "HS256"}
	for k, v := range header {
		h[k] = v
	}
	input := Segment(h) + "." + Segment(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Tamper replaces the payload of a signed token with claims and keeps the
// original header and signature, which no longer match.
func Tamper(token string, claims map[string]any) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		panic("authntest: Tamper needs a three-part token")
	}
	return parts[0] + "." + Segment(claims) + "." + parts[2]
}

// JWE returns a syntactically plausible five-part compact JWE
// (RSA-OAEP/A256GCM header, random segments). Access-token verifiers of this
// project refuse encrypted tokens.
func JWE() string {
	seg := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	h := Segment(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM", "typ": "at+jwt"})
	return h + "." + seg(256) + "." + seg(12) + "." + seg(200) + "." + seg(16)
}
