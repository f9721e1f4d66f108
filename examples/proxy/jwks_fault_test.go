package main

import (
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

// TestParseConfigJWKS: the key-set settings, their defaults (authn's) and
// their checks.
func TestParseConfigJWKS(t *testing.T) {
	prod := map[string]string{
		"BEARER_ISSUER":   "https://issuer.example",
		"BEARER_AUDIENCE": "https://mcp.example/mcp",
		"BEARER_JWKS_URI": "https://issuer.example/jwks.json",
	}
	tests := []struct {
		name                        string
		env                         map[string]string
		refresh, staleness, timeout time.Duration
		err                         string // "" for success
	}{
		{name: "defaults", env: prod,
			refresh: authn.DefaultMaxRefresh, staleness: authn.DefaultMaxStaleness, timeout: authn.DefaultFetchTimeout},
		{name: "small bounds", env: merge(prod, map[string]string{"BEARER_JWKS_REFRESH": "1s", "BEARER_JWKS_MAX_STALENESS": "2s", "BEARER_JWKS_TIMEOUT": "250ms"}),
			refresh: time.Second, staleness: 2 * time.Second, timeout: 250 * time.Millisecond},
		{name: "staleness equal to refresh", env: merge(prod, map[string]string{"BEARER_JWKS_REFRESH": "5m", "BEARER_JWKS_MAX_STALENESS": "5m"}),
			refresh: 5 * time.Minute, staleness: 5 * time.Minute, timeout: authn.DefaultFetchTimeout},
		{name: "staleness below the default refresh", env: merge(prod, map[string]string{"BEARER_JWKS_MAX_STALENESS": "30m"}),
			err: `BEARER_JWKS_MAX_STALENESS="30m": must be at least BEARER_JWKS_REFRESH (1h0m0s)`},
		{name: "staleness below refresh", env: merge(prod, map[string]string{"BEARER_JWKS_REFRESH": "10m", "BEARER_JWKS_MAX_STALENESS": "5m"}),
			err: "BEARER_JWKS_MAX_STALENESS"},
		{name: "refresh below a second", env: merge(prod, map[string]string{"BEARER_JWKS_REFRESH": "500ms"}),
			err: `BEARER_JWKS_REFRESH="500ms": want a duration of at least 1s`},
		{name: "timeout not a duration", env: merge(prod, map[string]string{"BEARER_JWKS_TIMEOUT": "10"}),
			err: "BEARER_JWKS_TIMEOUT"},
		{name: "alone it is a production setting", env: map[string]string{"BEARER_JWKS_MAX_STALENESS": "12h"},
			err: "BEARER_ISSUER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(nil, envFunc(tt.env), nil)
			if tt.err != "" {
				require.ErrorIs(t, err, errConfig)
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.refresh, c.JWKSRefresh)
			require.Equal(t, tt.staleness, c.JWKSMaxStaleness)
			require.Equal(t, tt.timeout, c.JWKSTimeout)
		})
	}
}

// Bounds of TestJWKSFaults: a key-set fetch every second, keys stale 4 s
// after the last good fetch, fetches cut off after 500 ms. A fault is set
// just after a good fetch; the first failed fetch ends at most refresh +
// timeout later, which leaves about 2.5 s of the staleness bound for the
// checks (a tool call and a probe take milliseconds).
const (
	jwksRefresh   = time.Second
	jwksStaleness = 4 * time.Second
	jwksTimeout   = 500 * time.Millisecond
)

// TestJWKSFaults: the issuer's JWKS endpoint fails after the keys are
// loaded. While it is down (500), slow (longer than the fetch timeout),
// answering garbage or an oversized body, tokens signed by the known key
// keep working and /readyz stays 200 but says the last fetch failed and
// when the keys go stale. Beyond the staleness bound, tokens (fresh and
// previously verified ones alike) are refused with 401 and /readyz answers
// 503; when the endpoint heals, the proxy recovers by itself.
func TestJWKSFaults(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{
		"RATE_LIMIT":                "off",
		"BEARER_JWKS_REFRESH":       jwksRefresh.String(),
		"BEARER_JWKS_MAX_STALENESS": jwksStaleness.String(),
		"BEARER_JWKS_TIMEOUT":       jwksTimeout.String(),
	}))
	tenant, _ := tenants(db)
	code, checks := readyz(t, tp)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", checks["keys"])
	used := iss.token(tenant, "read") // verified now, cached by the proxy
	mustCall(t, connect(t, tp.url, "streamable", used), "falkordb_list_graphs", map[string]any{})
	start := time.Now()

	faults := []struct {
		name  string
		fault authntest.Fault
	}{
		{"down", authntest.Fault{Status: http.StatusInternalServerError}},
		{"slow", authntest.Fault{Delay: time.Minute}}, // cut off by BEARER_JWKS_TIMEOUT
		{"garbage", authntest.Fault{Garbage: true}},
		{"oversized", authntest.Fault{Oversize: authn.MaxJWKSSize + 1}},
	}
	for _, f := range faults {
		// Healthy first, and a good fetch just made: the whole staleness
		// bound lies ahead.
		iss.jwks.SetFault(authntest.Fault{})
		since := time.Now()
		waitKeys(t, tp, "a good fetch", func(h authn.IssuerHealth) bool { return h.LastSuccess.After(since) && h.LastError == "" })
		code, checks := readyz(t, tp)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ok", checks["keys"], "healthy again before %s", f.name)

		iss.jwks.SetFault(f.fault)
		set := time.Now()
		h := waitKeys(t, tp, f.name+": a failed fetch", func(h authn.IssuerHealth) bool { return h.LastError != "" && h.LastFetch.After(set) })
		require.False(t, h.Stale)

		// A fresh token (not in the verified-token cache) signed by the
		// known key: verified with the last good keys.
		mustCall(t, connect(t, tp.url, "streamable", iss.token(tenant, "read")), "falkordb_list_graphs", map[string]any{})
		code, checks = readyz(t, tp)
		require.Equal(t, http.StatusOK, code, "%s: known keys still serve: ready", f.name)
		require.Regexp(t, `^stale in [0-9.]+s: last fetch failed$`, checks["keys"], "%s: readiness reports the failing key fetches", f.name)
		left, err := time.ParseDuration(strings.TrimSuffix(strings.TrimPrefix(checks["keys"], "stale in "), ": last fetch failed"))
		require.NoError(t, err)
		require.LessOrEqual(t, left, jwksStaleness)
		h = keysHealth(tp)
		require.False(t, h.Stale, "%s: the checks ran within the staleness bound (%v after the last good fetch)", f.name, time.Since(h.LastSuccess))
		t.Logf("%s: call ok, /readyz 200 %q; fetch error: %s", f.name, checks["keys"], h.LastError)
	}

	// The endpoint stays down beyond the staleness bound: fail closed.
	iss.jwks.SetFault(authntest.Fault{Status: http.StatusInternalServerError})
	h := waitKeys(t, tp, "stale keys", func(h authn.IssuerHealth) bool { return h.Stale })
	t.Logf("keys stale %v after the last good fetch", time.Since(h.LastSuccess).Round(time.Millisecond))
	for name, tok := range map[string]string{"fresh token": iss.token(tenant, "read"), "previously verified token": used} {
		code, hdr, body := postJSON(t, tp.url+"/mcp", tok, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		require.Equal(t, http.StatusUnauthorized, code, name)
		require.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`, name)
		require.NotContains(t, hdr.Get("WWW-Authenticate")+body, iss.jwks.Listener.Addr().String(), "no key-server address")
	}
	code, checks = readyz(t, tp)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "missing or stale", checks["keys"])

	// Healed: keys load again by themselves, tokens work, ready.
	iss.jwks.SetFault(authntest.Fault{})
	waitKeys(t, tp, "recovery", func(h authn.IssuerHealth) bool { return !h.Stale && h.LastError == "" })
	mustCall(t, connect(t, tp.url, "streamable", iss.token(tenant, "read")), "falkordb_list_graphs", map[string]any{})
	code, checks = readyz(t, tp)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", checks["keys"])
	t.Logf("%d key-set fetches in %v", iss.jwks.Fetches(), time.Since(start).Round(time.Millisecond))
}

// readyz fetches /readyz and returns its status and checks; the body never
// names an address.
func readyz(t *testing.T, tp *testProxy) (int, map[string]string) {
	t.Helper()
	code, _, body := get(t, tp.url+"/readyz", "")
	require.NotContains(t, body, "127.0.0.1", "no address in /readyz")
	var out struct {
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	return code, out.Checks
}

// keysHealth is the state of the proxy's (single) issuer's keys.
func keysHealth(tp *testProxy) authn.IssuerHealth { return tp.verifier.Health()[0] }

// waitKeys polls the issuer's key state until cond holds (the key-set
// fetches run in the background, once per second here). The deadline only
// guards against a hang.
func waitKeys(t *testing.T, tp *testProxy, what string, cond func(authn.IssuerHealth) bool) authn.IssuerHealth {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if h := keysHealth(tp); cond(h) {
			return h
		}
	}
	t.Fatalf("waiting for %s: key state %+v", what, keysHealth(tp))
	return authn.IssuerHealth{}
}
