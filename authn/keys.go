package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// Key size bounds for RSA public keys.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// PublicKey is a signature verification key of an issuer: an
// *rsa.PublicKey (at least 2048 bits), an *ecdsa.PublicKey on P-256 or P-384,
// or an ed25519.PublicKey.
type PublicKey struct {
	// KeyID is the key's "kid". Tokens naming a kid are matched against it;
	// a key without KeyID matches any kid only when it is its issuer's
	// single key.
	KeyID string
	// Algorithm, when set (the JWK "alg"), restricts the key to that JWS
	// algorithm.
	Algorithm string
	// Key is the public key.
	Key crypto.PublicKey
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY"
// (PKCS #1) or "CERTIFICATE" block and returns its public key, checked as
// New checks keys (errors wrap ErrUnsupportedKey).
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrUnsupportedKey)
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		c, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("%w: PEM block type %q is not a public key", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if _, err := newVerifyKey(PublicKey{Key: pub}); err != nil {
		return nil, err
	}
	return pub, nil
}

// jwk holds the JWK members this package reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
	P      string   `json:"p"`
	K      string   `json:"k"`
}

// ParseJWK parses one JSON Web Key. Keys with private material, a "use"
// other than "sig", "key_ops" without "verify", an "alg" this package does
// not accept or that does not fit the key, or an unsupported type or size
// are refused with an error wrapping ErrUnsupportedKey.
func ParseJWK(data []byte) (PublicKey, error) {
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		return PublicKey{}, fmt.Errorf("%w: not a JSON object: %v", ErrUnsupportedKey, err)
	}
	return j.publicKey()
}

func (j *jwk) publicKey() (PublicKey, error) {
	bad := func(format string, args ...any) (PublicKey, error) {
		return PublicKey{}, fmt.Errorf("%w: kid %.64q: %s", ErrUnsupportedKey, j.Kid, fmt.Sprintf(format, args...))
	}
	if j.D != "" || j.P != "" || j.K != "" {
		return bad("contains private or symmetric key material")
	}
	if j.Use != "" && j.Use != "sig" {
		return bad("use %.16q is not sig", j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return bad("key_ops does not include verify")
	}
	dec := base64.RawURLEncoding.Strict().DecodeString
	var pub crypto.PublicKey
	switch j.Kty {
	case "RSA":
		n, err1 := dec(j.N)
		e, err2 := dec(j.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return bad("invalid RSA modulus or exponent")
		}
		ev := new(big.Int).SetBytes(e)
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return bad("curve %.16q not supported (P-256, P-384)", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := dec(j.X)
		y, err2 := dec(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return bad("invalid EC coordinates")
		}
		raw := make([]byte, 0, 1+2*size)
		raw = append(append(append(raw, 4), x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return bad("invalid EC point")
		}
		pub = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return bad("OKP curve %.16q not supported (Ed25519)", j.Crv)
		}
		x, err := dec(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return bad("invalid Ed25519 key")
		}
		pub = ed25519.PublicKey(x)
	default:
		return bad("key type %.16q not supported (RSA, EC, OKP)", j.Kty)
	}
	pk := PublicKey{KeyID: j.Kid, Algorithm: j.Alg, Key: pub}
	if _, err := newVerifyKey(pk); err != nil {
		return PublicKey{}, err
	}
	return pk, nil
}

// ParseJWKS parses a JSON Web Key Set ({"keys": [...]}). Keys that cannot be
// used are skipped and reported in skipped; err is non-nil only when the
// document itself is not a key set.
func ParseJWKS(data []byte) (keys []PublicKey, skipped []error, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`not a JSON Web Key Set: no "keys" array`)
	}
	for _, raw := range set.Keys {
		k, err := ParseJWK(raw)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// keyKind is the family a key belongs to, which binds it to algorithms.
type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindP256
	kindP384
	kindEd25519
)

// verifyKey is a checked PublicKey ready for verification.
type verifyKey struct {
	kid  string
	alg  string // "" or the only algorithm allowed
	kind keyKind
	rsa  *rsa.PublicKey
	ec   *ecdsa.PublicKey
	ed   ed25519.PublicKey
}

func newVerifyKey(pk PublicKey) (*verifyKey, error) {
	k := &verifyKey{kid: pk.KeyID, alg: pk.Algorithm}
	switch p := pk.Key.(type) {
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return nil, fmt.Errorf("%w: nil RSA key", ErrUnsupportedKey)
		}
		if bits := p.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("%w: kid %.64q: RSA key of %d bits (need %d to %d)", ErrUnsupportedKey, pk.KeyID, bits, minRSABits, maxRSABits)
		}
		if p.E < 3 || p.E%2 == 0 || p.E > 1<<31-1 {
			return nil, fmt.Errorf("%w: kid %.64q: invalid RSA exponent", ErrUnsupportedKey, pk.KeyID)
		}
		k.kind, k.rsa = kindRSA, p
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return nil, fmt.Errorf("%w: nil EC key", ErrUnsupportedKey)
		}
		switch p.Curve {
		case elliptic.P256():
			k.kind = kindP256
		case elliptic.P384():
			k.kind = kindP384
		default:
			return nil, fmt.Errorf("%w: kid %.64q: EC curve %s not supported (P-256, P-384)", ErrUnsupportedKey, pk.KeyID, p.Curve.Params().Name)
		}
		k.ec = p
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: kid %.64q: Ed25519 key of %d bytes", ErrUnsupportedKey, pk.KeyID, len(p))
		}
		k.kind, k.ed = kindEd25519, p
	default:
		return nil, fmt.Errorf("%w: kid %.64q: key type %T not supported", ErrUnsupportedKey, pk.KeyID, pk.Key)
	}
	if k.alg != "" {
		a := algorithms[k.alg]
		if a == nil {
			return nil, fmt.Errorf("%w: kid %.64q: alg %.16q not accepted", ErrUnsupportedKey, pk.KeyID, k.alg)
		}
		if a.kind != k.kind {
			return nil, fmt.Errorf("%w: kid %.64q: alg %s does not fit the key type", ErrUnsupportedKey, pk.KeyID, k.alg)
		}
	}
	return k, nil
}

// algorithm is a JWS signature algorithm this package verifies.
type algorithm struct {
	name string
	kind keyKind
	hash crypto.Hash // 0 for EdDSA
	pss  bool
}

// algorithms are all algorithms an issuer may allow. HMAC and "none" are
// deliberately absent.
var algorithms = map[string]*algorithm{
	"RS256":   {name: "RS256", kind: kindRSA, hash: crypto.SHA256},
	"RS384":   {name: "RS384", kind: kindRSA, hash: crypto.SHA384},
	"RS512":   {name: "RS512", kind: kindRSA, hash: crypto.SHA512},
	"PS256":   {name: "PS256", kind: kindRSA, hash: crypto.SHA256, pss: true},
	"PS384":   {name: "PS384", kind: kindRSA, hash: crypto.SHA384, pss: true},
	"PS512":   {name: "PS512", kind: kindRSA, hash: crypto.SHA512, pss: true},
	"ES256":   {name: "ES256", kind: kindP256, hash: crypto.SHA256},
	"ES384":   {name: "ES384", kind: kindP384, hash: crypto.SHA384},
	"EdDSA":   {name: "EdDSA", kind: kindEd25519},
	"Ed25519": {name: "Ed25519", kind: kindEd25519},
}

// DefaultAlgorithms is the allow-list of an issuer that sets none.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// fits reports whether the key may verify signatures made with a.
func (k *verifyKey) fits(a *algorithm) bool {
	return k.kind == a.kind && (k.alg == "" || k.alg == a.name)
}

// verify checks sig over input (the JWS signing input) with k under a.
func (a *algorithm) verify(k *verifyKey, input, sig []byte) bool {
	if a.kind == kindEd25519 {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
	}
	var buf [64]byte
	var digest []byte
	switch a.hash {
	case crypto.SHA256:
		s := sha256.Sum256(input)
		digest = append(buf[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(input)
		digest = append(buf[:0], s[:]...)
	case crypto.SHA512:
		s := sha512.Sum512(input)
		digest = append(buf[:0], s[:]...)
	default:
		return false
	}
	switch a.kind {
	case kindRSA:
		if a.pss {
			return rsa.VerifyPSS(k.rsa, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, a.hash, digest, sig) == nil
	case kindP256, kindP384:
		size := 32
		if a.kind == kindP384 {
			size = 48
		}
		if len(sig) != 2*size {
			return false
		}
		var der [128]byte
		return ecdsa.VerifyASN1(k.ec, digest, ecdsaDER(der[:0], sig[:size], sig[size:]))
	}
	return false
}

// ecdsaDER encodes the JWS r||s signature as the ASN.1 DER
// SEQUENCE { INTEGER r, INTEGER s } that ecdsa.VerifyASN1 expects.
func ecdsaDER(dst, r, s []byte) []byte {
	integer := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		return b
	}
	r, s = integer(r), integer(s)
	rl, sl := len(r), len(s)
	if r[0]&0x80 != 0 {
		rl++
	}
	if s[0]&0x80 != 0 {
		sl++
	}
	body := 2 + rl + 2 + sl
	dst = append(dst, 0x30)
	if body >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body), 0x02, byte(rl))
	if rl > len(r) {
		dst = append(dst, 0)
	}
	dst = append(dst, r...)
	dst = append(dst, 0x02, byte(sl))
	if sl > len(s) {
		dst = append(dst, 0)
	}
	return append(dst, s...)
}
