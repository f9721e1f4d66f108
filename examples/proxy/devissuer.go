package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The development issuer's tenants, printed at start.
const (
	devTenantRW = "tenant-alpha" // scopes "read write"
	devTenantRO = "tenant-beta"  // scope "read"
	devTokenTTL = 12 * time.Hour
	devJWKSPath = "/jwks.json"
)

// devIssuer is a DEVELOPMENT-ONLY token issuer: an RS256 key generated at
// start (and lost at exit), its JWKS served on a loopback listener, and a
// Mint method. It exists so that `go run ./examples/proxy` works with no
// identity provider; it never runs when BEARER_* settings are given.
type devIssuer struct {
	key         *rsa.PrivateKey
	kid         string
	issuer      string // "http://127.0.0.1:PORT"
	audience    string
	tenantClaim string
	srv         *http.Server
	done        chan struct{}
}

// startDevIssuer generates a key and serves its JWKS on 127.0.0.1 (a free
// port). Tokens it mints carry audience and the tenant in "sub" (and in
// tenantClaim when that is another top-level claim).
func startDevIssuer(audience, tenantClaim string) (*devIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("development issuer: generating a key: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("development issuer: listening on loopback: %w", err)
	}
	d := &devIssuer{
		key:         key,
		kid:         thumbprint(&key.PublicKey),
		issuer:      "http://" + ln.Addr().String(),
		audience:    audience,
		tenantClaim: tenantClaim,
		done:        make(chan struct{}),
	}
	jwks, err := json.Marshal(map[string]any{"keys": []any{d.jwk()}})
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+devJWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(jwks)
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(d.done)
		d.srv.Serve(ln)
	}()
	return d, nil
}

// JWKSURL is the URL of the key set.
func (d *devIssuer) JWKSURL() string { return d.issuer + devJWKSPath }

// Issuer is the "iss" of the tokens.
func (d *devIssuer) Issuer() string { return d.issuer }

// Mint returns a signed access token for tenant with the given scopes.
func (d *devIssuer) Mint(tenant string, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := jwt.MapClaims{
		"iss":   d.issuer,
		"sub":   tenant,
		"aud":   d.audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(ttl).Unix(),
		"jti":   base64.RawURLEncoding.EncodeToString(jti),
		"scope": strings.Join(scopes, " "),
	}
	if d.tenantClaim != "" && d.tenantClaim != "sub" && !strings.Contains(d.tenantClaim, ".") {
		claims[d.tenantClaim] = tenant
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = d.kid
	t.Header["typ"] = "at+jwt"
	return t.SignedString(d.key)
}

// Close stops the JWKS listener.
func (d *devIssuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := d.srv.Shutdown(ctx)
	<-d.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (d *devIssuer) jwk() map[string]any {
	return map[string]any{
		"kty": "RSA",
		"kid": d.kid,
		"alg": "RS256",
		"use": "sig",
		"n":   b64(d.key.N),
		"e":   b64(big.NewInt(int64(d.key.E))),
	}
}

func b64(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }

// thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key.
func thumbprint(pub *rsa.PublicKey) string {
	// Members in lexicographic order, no white space.
	s := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(big.NewInt(int64(pub.E))), b64(pub.N))
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
