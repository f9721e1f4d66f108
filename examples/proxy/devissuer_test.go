package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// TestDevIssuerTokens verifies the development issuer's tokens with an
// independent authn Verifier reading its JWKS over HTTP.
func TestDevIssuerTokens(t *testing.T) {
	d, err := startDevIssuer("http://127.0.0.1:1/mcp", "org")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })

	require.True(t, strings.HasPrefix(d.Issuer(), "http://127.0.0.1:"), "JWKS on loopback only")
	kid, err := authntest.Thumbprint(&d.key.PublicKey)
	require.NoError(t, err)
	require.Equal(t, kid, d.kid, "kid is the RFC 7638 thumbprint")

	resp, err := http.Get(d.JWKSURL())
	require.NoError(t, err)
	var set struct{ Keys []map[string]any }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	resp.Body.Close()
	require.Len(t, set.Keys, 1)
	require.NotContains(t, set.Keys[0], "d", "no private material published")

	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{
		Issuer: d.Issuer(), Audiences: []string{"http://127.0.0.1:1/mcp"}, JWKSURL: d.JWKSURL(),
		Algorithms: []string{"RS256"}, TenantClaim: "org", RequiredType: "at+jwt",
	}}})
	require.NoError(t, err)
	t.Cleanup(func() { v.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, v.WaitReady(ctx))

	tok, err := d.Mint(devTenantRW, []string{"read", "write"}, time.Hour)
	require.NoError(t, err)
	p, err := v.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, devTenantRW, p.Tenant, "tenant also in the configured TENANT_CLAIM")
	require.Equal(t, devTenantRW, p.Subject)
	require.ElementsMatch(t, []string{"read", "write"}, p.Scopes)
	require.NotEmpty(t, p.JTI)

	expired, err := d.Mint(devTenantRO, []string{"read"}, -time.Hour)
	require.NoError(t, err)
	_, err = v.Verify(ctx, expired)
	require.ErrorIs(t, err, authn.ErrExpired)
}

// TestDevIssuerNeverWithRealIssuer: with BEARER_* settings no development
// issuer runs, and tokens of a development issuer are refused.
func TestDevIssuerNeverWithRealIssuer(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	require.Nil(t, tp.dev, "no development issuer in production mode")
	require.Equal(t, []string{iss.jwks.URL}, tp.verifier.Issuers(), "only the configured issuer is trusted")

	// A development issuer elsewhere, minting for this proxy's audience.
	d, err := startDevIssuer(iss.aud, "sub")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	devTok, err := d.Mint(devTenantRW, []string{"read", "write"}, time.Hour)
	require.NoError(t, err)
	code, hdr, _ := postJSON(t, tp.url+"/mcp", devTok, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)

	// And in development mode the proxy trusts its own issuer only.
	dev := startProxy(t, db, nil)
	require.NotNil(t, dev.dev)
	require.Equal(t, []string{dev.dev.Issuer()}, dev.verifier.Issuers())
}
