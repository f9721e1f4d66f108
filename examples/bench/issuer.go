package main

import (
	"context"
	"crypto"
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
	"runtime"
	"sync"
	"time"
)

// issuer is the benchmark's token issuer: an RS256 key generated at start,
// its key set served on a loopback port, and tokens minted for the tenant
// the benchmark uses. The proxy (b, d) and the FastMCP proxy (e) fetch the
// key set like they would from a real identity provider.
type issuer struct {
	key      *rsa.PrivateKey
	kid      string
	url      string // base URL and "iss" of the tokens, "http://127.0.0.1:PORT"
	audience string
	srv      *http.Server
}

// Token settings shared by every system.
const (
	benchAudience = "tenantgraph-bench"
	benchScopes   = "read write"
	jwksPath      = "/jwks.json"
	tokenTTL      = 2 * time.Hour
)

// startIssuer generates the key and serves its key set on 127.0.0.1.
func startIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating the RSA key: %w", err)
	}
	sum := sha256.Sum256(key.N.Bytes())
	is := &issuer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), audience: benchAudience}
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": is.kid,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the key set: %w", err)
	}
	is.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(jwks)
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go is.srv.Serve(ln)
	return is, nil
}

// JWKSURL is the address of the key set.
func (is *issuer) JWKSURL() string { return is.url + jwksPath }

// Close stops the key server.
func (is *issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return is.srv.Shutdown(ctx)
}

// mint signs an RS256 access token for tenant (the sub claim) with scopes
// "read write" and a unique jti.
func (is *issuer) mint(tenant string) (string, error) {
	now := time.Now()
	jti := make([]byte, 12)
	rand.Read(jti)
	header, err := json.Marshal(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": is.kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": is.url, "aud": is.audience, "sub": tenant, "scope": benchScopes,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(tokenTTL).Unix(),
		"jti": b64(jti),
	})
	if err != nil {
		return "", err
	}
	input := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// mintMany mints n distinct tokens on every core (RSA signing takes about
// a millisecond each), stopping early when ctx ends.
func (is *issuer) mintMany(ctx context.Context, tenant string, n int) ([]string, error) {
	out := make([]string, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					return
				}
				tok, err := is.mint(tenant)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return nil, err
	}
	return out, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
