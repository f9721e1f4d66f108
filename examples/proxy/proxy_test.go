package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// tenants returns two tenant ids in the test's namespace (so falkortest
// deletes their graphs when the test ends).
func tenants(db *falkortest.DB) (string, string) {
	return db.Namespace() + "-a", db.Namespace() + "-b"
}

// TestStreamableHTTP runs both tenants through /mcp, stateless and
// stateful: the tools each sees, a graph created by one and invisible to the
// other, physical names never shown, and (stateful) a session that refuses
// the other tenant's token.
func TestStreamableHTTP(t *testing.T) {
	for _, stateless := range []bool{true, false} {
		t.Run("stateless="+strconv.FormatBool(stateless), func(t *testing.T) {
			db := falkortest.Start(t)
			iss := newIssuer(t)
			tp := startProxy(t, db, merge(iss.env(), map[string]string{"STATELESS": strconv.FormatBool(stateless)}))
			ta, tb := tenants(db)
			tokA, tokB := iss.token(ta, "read write"), iss.token(tb, "read")
			a := connect(t, tp.url, "streamable", tokA)
			b := connect(t, tp.url, "streamable", tokB)

			require.ElementsMatch(t, []string{"falkordb_query", "falkordb_ro_query", "falkordb_list_graphs", "falkordb_graph_schema", "falkordb_explain"},
				toolNames(t, a), "read write: no delete (needs admin)")
			require.ElementsMatch(t, []string{"falkordb_ro_query", "falkordb_list_graphs", "falkordb_graph_schema", "falkordb_explain"},
				toolNames(t, b), "read only")

			res := mustCall(t, a, "falkordb_query", map[string]any{"graphName": "movies", "query": createQuery, "parameters": map[string]any{"name": "alien"}})
			require.Contains(t, text(res), "alien")
			require.NotContains(t, text(res), ta+"_", "physical names are never shown")
			require.Equal(t, []string{"movies"}, listGraphs(t, a))
			require.Empty(t, listGraphs(t, b), "tenant b sees none of a's graphs")
			n, err := db.Redis(t).Exists(context.Background(), ta+"_movies").Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, n, "stored under a's prefix")

			// b asking for "movies" reaches its own (missing) graph, not a's.
			res, err = call(t, b, "falkordb_ro_query", map[string]any{"graphName": "movies", "query": "MATCH (n) RETURN n.name"})
			require.NoError(t, err)
			require.True(t, res.IsError)
			require.NotContains(t, text(res), "alien")
			require.NotContains(t, text(res), ta)

			if stateless {
				return
			}
			// A stateful session belongs to the token's user: another
			// tenant's token is refused on it.
			code, hdr, body := postJSON(t, tp.url+"/mcp", tokA,
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
			require.Equal(t, http.StatusOK, code, body)
			sid := hdr.Get("Mcp-Session-Id")
			require.NotEmpty(t, sid)
			req, err := http.NewRequest(http.MethodPost, tp.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Authorization", "Bearer "+tokB)
			resp, err := httpClient(t, "").Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "session user mismatch")
		})
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// openSSE opens a legacy SSE session by a raw GET with token and returns
// the message endpoint and the events.
func openSSE(t *testing.T, base, token string) (string, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sse", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient(t, "").Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan sseEvent, 16)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	first := <-events
	require.Equal(t, "endpoint", first.name)
	return first.data, events
}

func nextMessage(t *testing.T, events <-chan sseEvent) string {
	t.Helper()
	select {
	case ev, ok := <-events:
		require.True(t, ok, "stream closed")
		require.Equal(t, "message", ev.name)
		return ev.data
	case <-time.After(30 * time.Second):
		t.Fatal("no message on the SSE stream")
		return ""
	}
}

// TestSSE uses the legacy SSE transport with the go-sdk client, and shows
// that a session is bound to the tenant that opened it: a POST with another
// tenant's token is refused and never reaches a tool.
func TestSSE(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	ta, tb := tenants(db)
	tokA, tokB := iss.token(ta, "read write"), iss.token(tb, "read write")

	a := connect(t, tp.url, "sse", tokA)
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "over-sse"}})
	require.Equal(t, []string{"g"}, listGraphs(t, a))
	b := connect(t, tp.url, "sse", tokB)
	require.Empty(t, listGraphs(t, b))

	// Hijack attempt: b's token on a's session.
	endpoint, events := openSSE(t, tp.url, tokA)
	require.True(t, strings.HasPrefix(endpoint, "/sse?sessionid="), endpoint)
	post := func(token, body string) int {
		code, _, _ := postJSON(t, tp.url+endpoint, token, body)
		return code
	}
	const (
		initialize  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
		initialized = `{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`
		list        = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"falkordb_list_graphs","arguments":{}}}`
		drop        = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"falkordb_query","arguments":{"graphName":"g","query":"MATCH (n) DETACH DELETE n"}}}`
	)
	require.Equal(t, http.StatusForbidden, post(tokB, initialize), "another tenant's token on the session")
	require.Equal(t, http.StatusAccepted, post(tokA, initialize))
	nextMessage(t, events)
	require.Equal(t, http.StatusAccepted, post(tokA, initialized))
	require.Equal(t, http.StatusForbidden, post(tokB, drop), "hijack refused")
	require.Equal(t, http.StatusAccepted, post(tokA, list))
	msg := nextMessage(t, events)
	require.Contains(t, msg, `"id":2`, "the next message answers a's call: b's never ran")
	require.Contains(t, msg, `\"graphs\":[\"g\"]`)
	res := mustCall(t, a, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "MATCH (n:Probe) RETURN count(n) AS c"})
	require.Contains(t, structured(t, res), `"rows":[[1]]`, "a's node is intact: b's delete never ran")
	code, _, _ := postJSON(t, tp.url+"/sse?sessionid=nosuchsession", tokA, initialize)
	require.Equal(t, http.StatusNotFound, code)
}

// TestMetadataAndProbes checks the RFC 9728 documents, /healthz and /readyz.
func TestMetadataAndProbes(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())

	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource":     tp.url,
		"/.well-known/oauth-protected-resource/mcp": tp.url + "/mcp",
		"/.well-known/oauth-protected-resource/sse": tp.url + "/sse",
	} {
		code, hdr, body := get(t, tp.url+path, "")
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, hdr.Get("Content-Type"), "application/json")
		var m struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			BearerMethods        []string `json:"bearer_methods_supported"`
			Scopes               []string `json:"scopes_supported"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &m), body)
		require.Equal(t, resource, m.Resource)
		require.Equal(t, []string{iss.jwks.URL}, m.AuthorizationServers)
		require.Equal(t, []string{"header"}, m.BearerMethods, "tokens only in the Authorization header")
		require.Equal(t, []string{"read", "write", "admin"}, m.Scopes)
	}

	code, _, body := get(t, tp.url+"/healthz", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, _, body = get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"ready","checks":{"falkordb":"ok","keys":"ok"}}`, body)
	code, _, _ = get(t, tp.url+"/nope", "")
	require.Equal(t, http.StatusNotFound, code)
}

// relay is a TCP relay to FalkorDB that a test can cut, making FalkorDB
// unreachable for the proxy without touching the shared server.
type relay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newRelay(t *testing.T, network, addr string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &relay{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial(network, addr)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); copyClose(up, c) }()
			go func() { defer r.wg.Done(); copyClose(c, up) }()
		}
	}()
	t.Cleanup(r.cut)
	return r
}

func copyClose(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cut closes the relay and every connection through it.
func (r *relay) cut() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// TestReadyzFalkorDBDown: /readyz fails when FalkorDB is unreachable (and
// calls fail with a clean error that names no address); /healthz still
// answers.
func TestReadyzFalkorDBDown(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	r := newRelay(t, db.Network, db.Addr)
	u := "redis://" + r.ln.Addr().String()
	if db.Password != "" {
		u = "redis://:" + db.Password + "@" + r.ln.Addr().String()
	}
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"FALKORDB_URL": u}))
	ta, _ := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read"))
	code, _, _ := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusOK, code)

	r.cut()
	code, _, body := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not ready","checks":{"falkordb":"unreachable","keys":"ok"}}`, body)
	code, _, _ = get(t, tp.url+"/healthz", "")
	require.Equal(t, http.StatusOK, code, "the process is up")

	res, err := call(t, a, "falkordb_list_graphs", map[string]any{})
	var msg string
	if err != nil {
		msg = err.Error()
	} else {
		require.True(t, res.IsError)
		msg = text(res)
	}
	require.NotContains(t, msg, r.ln.Addr().String(), "no internal address in errors")
	require.NotContains(t, msg, "127.0.0.1")
}

// TestReadyzKeysMissing: an issuer whose JWKS cannot be fetched leaves the
// proxy serving but not ready, and its tokens refused.
func TestReadyzKeysMissing(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	iss.jwks.SetFault(authntest.Fault{Status: http.StatusInternalServerError})
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"BEARER_KEYS_WAIT": "0s"}))
	code, _, body := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not ready","checks":{"falkordb":"ok","keys":"missing or stale"}}`, body)
	ta, _ := tenants(db)
	code, hdr, _ := postJSON(t, tp.url+"/mcp", iss.token(ta, "read"), `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)
}

// TestAuthRefusals: no token, bad tokens and tokens in the query string.
func TestAuthRefusals(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	ta, _ := tenants(db)
	good := iss.token(ta, "read write")
	const list = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	meta := `resource_metadata="` + tp.url + `/.well-known/oauth-protected-resource/mcp"`

	code, hdr, _ := postJSON(t, tp.url+"/mcp", "", list)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "Bearer "+meta, hdr.Get("WWW-Authenticate"), "no token: a challenge without error code (RFC 6750 3.1)")

	expired := iss.key.Mint(authntest.Claims(iss.jwks.URL, iss.aud, ta, time.Now().Add(-2*time.Hour), time.Hour))
	otherAud := iss.key.Mint(authntest.Claims(iss.jwks.URL, "https://elsewhere/mcp", ta, time.Now(), time.Hour))
	for name, tok := range map[string]string{
		"garbage":        "not-a-jwt",
		"tampered":       authntest.Tamper(good, authntest.Claims(iss.jwks.URL, iss.aud, "someone-else", time.Now(), time.Hour)),
		"expired":        expired,
		"wrong audience": otherAud,
		"alg none":       authntest.Unsigned(authntest.Claims(iss.jwks.URL, iss.aud, ta, time.Now(), time.Hour)),
	} {
		code, hdr, body := postJSON(t, tp.url+"/mcp", tok, list)
		require.Equal(t, http.StatusUnauthorized, code, name)
		require.Contains(t, hdr.Get("WWW-Authenticate"), `Bearer error="invalid_token"`, name)
		require.Contains(t, hdr.Get("WWW-Authenticate"), meta, name)
		require.NotContains(t, body, tok, name)
	}

	// Tokens in the query string are never read.
	for _, q := range []string{"?access_token=", "?token=", "?apiKey="} {
		code, _, _ := postJSON(t, tp.url+"/mcp"+q+good, "", list)
		require.Equal(t, http.StatusUnauthorized, code, q)
		code, _, _ = get(t, tp.url+"/sse"+q+good, "")
		require.Equal(t, http.StatusUnauthorized, code, q)
	}

	// The same token in the header works.
	code, _, body := postJSON(t, tp.url+"/mcp", good, list)
	require.Equal(t, http.StatusOK, code, body)
}

// TestBodyLimit: a request body over MAX_BODY_BYTES is refused with 413.
func TestBodyLimit(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"MAX_BODY_BYTES": "4096"}))
	ta, _ := tenants(db)
	tok := iss.token(ta, "read write")
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"falkordb_query","arguments":{"graphName":"g","query":"RETURN '` +
		strings.Repeat("x", 8192) + `'"}}}`
	code, _, _ := postJSON(t, tp.url+"/mcp", tok, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	small := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	code, _, _ = postJSON(t, tp.url+"/mcp", tok, small)
	require.Equal(t, http.StatusOK, code)
	n, err := db.Redis(t).Exists(context.Background(), ta+"_g").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the oversized call never ran")
}

// TestReadOnlyTenant: a token with scope "read" cannot write or delete,
// whatever tool it calls.
func TestReadOnlyTenant(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write admin"))
	b := connect(t, tp.url, "streamable", iss.token(tb, "read"))

	// A read-only tenant's graph, created by an administrator.
	rdb := db.Redis(t)
	ctx := context.Background()
	require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", tb+"_g", "CREATE (:Probe {name: 'admin'})").Err())
	require.Equal(t, []string{"g"}, listGraphs(t, b))

	res, err := call(t, b, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "x"}})
	require.NoError(t, err)
	require.True(t, res.IsError, "a write by a read-only tenant")
	require.Contains(t, text(res), "read-only")
	res = mustCall(t, b, "falkordb_query", map[string]any{"graphName": "g", "query": "MATCH (n:Probe) RETURN count(n) AS c"})
	require.Contains(t, structured(t, res), `"rows":[[1]]`, "reads work through the same tool; nothing was written")

	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "x"}})
	res, err = call(t, b, "falkordb_delete_graph", map[string]any{"graphName": "g", "confirm": true})
	if err == nil {
		require.True(t, res.IsError, "delete by a read-only tenant")
	}
	// a (read write admin) may delete its own graph.
	mustCall(t, a, "falkordb_delete_graph", map[string]any{"graphName": "g", "confirm": true})
	require.Empty(t, listGraphs(t, a))
}

// TestMetrics checks the Prometheus text: per-tool calls, errors and
// latency, per-tenant counters bounded by METRICS_TENANTS, auth failures by
// reason and JWKS fetches.
func TestMetrics(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"METRICS_TENANTS": "1"}))
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write"))
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "m"}})
	b := connect(t, tp.url, "streamable", iss.token(tb, "read"))
	listGraphs(t, b)
	res, err := call(t, b, "falkordb_delete_graph", map[string]any{"graphName": "g", "confirm": true})
	require.True(t, err != nil || res.IsError)
	_, err = call(t, a, "no_such_tool", map[string]any{})
	require.Error(t, err)
	postJSON(t, tp.url+"/mcp", "", `{}`)
	postJSON(t, tp.url+"/mcp", "garbage", `{}`)

	code, hdr, body := get(t, tp.url+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, hdr.Get("Content-Type"), "text/plain")
	for _, want := range []string{
		`tenantgraph_tool_calls_total{outcome="ok",tool="falkordb_query"} 1`,
		`tenantgraph_tool_calls_total{outcome="ok",tool="falkordb_list_graphs"} 1`,
		`tenantgraph_tool_calls_total{outcome="refused",tool="falkordb_delete_graph"} 1`,
		`tenantgraph_tool_errors_total{class="forbidden",tool="falkordb_delete_graph"} 1`,
		`tenantgraph_tool_errors_total{class="unknown_tool",tool="_unknown"} 1`,
		`tenantgraph_tool_call_duration_seconds_count{tool="falkordb_query"} 1`,
		`tenantgraph_tool_call_duration_seconds_bucket{tool="falkordb_query",le="+Inf"} 1`,
		`tenantgraph_tenant_calls_total{outcome="ok",tenant="` + ta + `"} 1`,
		`tenantgraph_tenant_calls_total{outcome="ok",tenant="_other"} 1`,
		`tenantgraph_auth_failures_total{reason="missing_token"} 1`,
		`tenantgraph_auth_failures_total{reason="malformed"} 1`,
		`tenantgraph_jwks_fetches_total{issuer="` + iss.jwks.URL + `",result="ok"} 1`,
		`go_goroutines `,
	} {
		if !strings.HasSuffix(want, " ") {
			want += "\n"
		}
		require.True(t, strings.Contains(body, want), "metrics lack %q", want)
	}
	require.NotContains(t, body, `tenant="`+tb+`"`, "beyond METRICS_TENANTS: counted as _other")
}

// TestMetricsAddr serves /metrics on its own listener.
func TestMetricsAddr(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"METRICS_ADDR": "127.0.0.1:0"}))
	code, _, _ := get(t, tp.url+"/metrics", "")
	require.Equal(t, http.StatusNotFound, code, "not on the public listener")
	code, _, body := get(t, "http://"+tp.metricsLn.Addr().String()+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.Contains(body, "tenantgraph_jwks_fetches_total{"), "no tenantgraph metrics")
}

func TestTenantLabels(t *testing.T) {
	l := tenantLabels{max: 2, seen: map[string]bool{}}
	require.Equal(t, "a", l.label("a"))
	require.Equal(t, "b", l.label("b"))
	require.Equal(t, "_other", l.label("c"))
	require.Equal(t, "a", l.label("a"), "known tenants keep their label")
	require.Equal(t, "_none", l.label(""))
	require.Len(t, l.seen, 2)
}

// TestSingleTenant: every verified caller shares one namespace, which is
// still a prefix: nothing is served unprefixed.
func TestSingleTenant(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	only := db.Namespace() + "-s"
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"TENANT_GRAPH_PREFIX": "false", "SINGLE_TENANT": only}))
	// Subjects that are not tenant ids at all: in single-tenant mode the
	// claim need only be present.
	alice := connect(t, tp.url, "streamable", iss.token("auth0|alice", "read write"))
	bob := connect(t, tp.url, "sse", iss.token("auth0|bob", "read"))
	mustCall(t, alice, "falkordb_query", map[string]any{"graphName": "shared", "query": createQuery, "parameters": map[string]any{"name": "s"}})
	require.Equal(t, []string{"shared"}, listGraphs(t, bob))
	rdb := db.Redis(t)
	n, err := rdb.Exists(context.Background(), only+"_shared").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "stored under the single tenant's prefix")
	n, err = rdb.Exists(context.Background(), "shared").Result()
	require.NoError(t, err)
	require.Zero(t, n, "never unprefixed")
}

// TestTLS serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE.
func TestTLS(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	certFile, keyFile, pool := selfSigned(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}))
	require.True(t, strings.HasPrefix(tp.url, "https://127.0.0.1:"), tp.url)
	ta, _ := tenants(db)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "tls", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   tp.url + "/mcp",
		HTTPClient: &http.Client{Transport: &bearerTransport{token: iss.token(ta, "read"), base: tr}},
	}, nil)
	require.NoError(t, err)
	defer cs.Close()
	require.Empty(t, listGraphs(t, cs))

	// Plain HTTP to the TLS port is refused.
	code, _, _ := get(t, strings.Replace(tp.url, "https", "http", 1)+"/healthz", "")
	require.Equal(t, http.StatusBadRequest, code)
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "proxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestPublicURL: behind a reverse proxy, metadata names PUBLIC_URL, and a
// loopback listener accepts its host (and loopback) but no other.
func TestPublicURL(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"PUBLIC_URL": "https://mcp.example.test"}))
	require.Equal(t, "https://mcp.example.test", tp.url)
	base := "http://" + tp.Addr().String()
	code, _, body := get(t, base+"/.well-known/oauth-protected-resource/mcp", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"resource":"https://mcp.example.test/mcp"`)

	host := func(h string) int {
		req, err := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Host = h
		resp, err := httpClient(t, "").Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, host("mcp.example.test"), "the public host passes (to authentication)")
	require.Equal(t, http.StatusUnauthorized, host("127.0.0.1"))
	require.Equal(t, http.StatusForbidden, host("evil.example"), "DNS rebinding protection")
}

// TestShutdownDrainsCalls: a call in flight when shutdown begins completes
// successfully; shutdown returns only after it, and no new connection is
// accepted meanwhile.
func TestShutdownDrainsCalls(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	var armed atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hook := func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/call" && armed.Load() {
				entered <- struct{}{}
				<-release
			}
			return next(ctx, method, req)
		}
	}
	tp := startProxy(t, db, iss.env(), hook)
	ta, _ := tenants(db)
	tok := iss.token(ta, "read write")
	a := connect(t, tp.url, "streamable", tok)
	listGraphs(t, a)                     // the connection is up
	_, events := openSSE(t, tp.url, tok) // a stream that never ends by itself

	armed.Store(true)
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "falkordb_query",
			Arguments: map[string]any{"graphName": "slow", "query": createQuery, "parameters": map[string]any{"name": "late"}}})
		done <- outcome{res, err}
	}()
	<-entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- tp.Shutdown(ctx)
	}()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", tp.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the listener closes at once")
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned (%v) while a call was in flight", err)
	case o := <-done:
		t.Fatalf("the call ended (%v) before it was released", o.err)
	default:
	}

	close(release)
	o := <-done
	require.NoError(t, o.err)
	require.False(t, o.res.IsError, text(o.res))
	require.Contains(t, text(o.res), "late")
	require.NoError(t, <-shut, "shutdown completes: event streams are ended, not waited for")
	for range events {
	} // the SSE stream was closed by the server
	n, err := db.Redis(t).Exists(context.Background(), ta+"_slow").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the write ran")
}

// TestSSEOutlivesTimeouts: an SSE stream stays open beyond the read and
// write timeouts (which still bound ordinary requests).
func TestSSEOutlivesTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the timeouts to pass")
	}
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{
		"READ_TIMEOUT": "500ms", "WRITE_TIMEOUT": "600ms", "QUERY_TIMEOUT": "500ms",
	}))
	ta, _ := tenants(db)
	a := connect(t, tp.url, "sse", iss.token(ta, "read write"))
	require.Empty(t, listGraphs(t, a))
	time.Sleep(1500 * time.Millisecond) // past both timeouts
	require.Empty(t, listGraphs(t, a), "the stream survived the timeouts")
}

// tokenPattern matches anything that looks like a JWT (base64url JSON
// header "eyJ...").
var tokenPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}`)

// TestLogsHaveNoTokens drives good and bad requests and checks that the
// logs are JSON lines and hold no token, good or bad.
func TestLogsHaveNoTokens(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	ta, tb := tenants(db)
	tokA, tokB := iss.token(ta, "read write"), iss.token(tb, "read")
	a := connect(t, tp.url, "streamable", tokA)
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "secret-value"}})
	s := connect(t, tp.url, "sse", tokB)
	listGraphs(t, s)
	res, err := call(t, s, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "x"}})
	require.NoError(t, err)
	require.True(t, res.IsError)
	bad := authntest.Tamper(tokA, authntest.Claims(iss.jwks.URL, iss.aud, tb, time.Now(), time.Hour))
	postJSON(t, tp.url+"/mcp", bad, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	postJSON(t, tp.url+"/mcp?access_token="+tokA, "", `{}`)
	get(t, tp.url+"/sse?token="+tokB, "")

	logs := tp.logs.String()
	require.Contains(t, logs, `"msg":"tenancy.call"`, "the audit is there")
	require.Contains(t, logs, `"path":"/mcp"`)
	for _, tok := range []string{tokA, tokB, bad} {
		for _, part := range strings.Split(tok, ".") {
			require.NotContains(t, logs, part)
		}
	}
	require.Empty(t, tokenPattern.FindAllString(logs, -1))
	require.NotContains(t, logs, "secret-value", "no query parameters in logs")
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		require.True(t, json.Valid([]byte(line)), "not JSON: %s", line)
	}
}

// recordingTransport keeps the bodies of the responses it passes on.
type recordingTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	bodies []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (r *recordingTransport) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[len(r.bodies)-1]
}

// TestResultTypeComplete: on protocol 2026-07-28 (stateless), every tool
// result carries "resultType":"complete", including those the tenancy
// middleware builds itself (filtered graph lists, refusals), which clients
// such as the Python SDK otherwise reject.
func TestResultTypeComplete(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, iss.env())
	ta, _ := tenants(db)
	rec := &recordingTransport{base: &bearerTransport{token: iss.token(ta, "read"), base: http.DefaultTransport}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "rec", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: tp.url + "/mcp", HTTPClient: &http.Client{Transport: rec}}, nil)
	require.NoError(t, err)
	defer cs.Close()
	require.Equal(t, "2026-07-28", cs.InitializeResult().ProtocolVersion)

	listGraphs(t, cs)
	require.Contains(t, rec.last(), `"resultType":"complete"`, "filtered list")
	res, err := call(t, cs, "falkordb_delete_graph", map[string]any{"graphName": "g", "confirm": true})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, rec.last(), `"resultType":"complete"`, "refusal")
}

// TestUpstreamModeWiring: with UPSTREAM_URL, newProxy serves the upstream
// server's tools (here a plain go-sdk server with the falkor tools, no
// tenancy of its own) behind authn and tenancy: graph names are mapped on
// the way up and lists filtered on the way back.
func TestUpstreamModeWiring(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fc, err := falkor.Open(ctx, db.URL, falkor.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { fc.Close() })
	up := mcp.NewServer(&mcp.Implementation{Name: "plain", Version: "1"}, nil)
	falkor.AddTools(up, fc, nil)
	upstream := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upstream.Close)

	tp := startProxy(t, db, merge(iss.env(), map[string]string{"UPSTREAM_URL": upstream.URL}))
	require.NotNil(t, tp.upstream)
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write"))
	b := connect(t, tp.url, "streamable", iss.token(tb, "read write"))
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "up", "query": createQuery, "parameters": map[string]any{"name": "via-upstream"}})
	require.Equal(t, []string{"up"}, listGraphs(t, a))
	require.Empty(t, listGraphs(t, b))
	n, err := db.Redis(t).Exists(ctx, ta+"_up").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the upstream received the mapped name")
	code, _, body := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusOK, code, body)
}

// TestTokenCache: with TOKEN_CACHE on (the default) a token used again is
// served from the verifier's cache; with it off every request is verified
// in full.
func TestTokenCache(t *testing.T) {
	db := falkortest.Start(t)
	for _, tc := range []struct {
		setting    string
		wantCached bool
	}{{"true", true}, {"false", false}} {
		t.Run("TOKEN_CACHE="+tc.setting, func(t *testing.T) {
			iss := newIssuer(t)
			tp := startProxy(t, db, merge(iss.env(), map[string]string{"TOKEN_CACHE": tc.setting}))
			ta, _ := tenants(db)
			cs := connect(t, tp.url, "streamable", iss.token(ta, "read"))
			for range 3 {
				listGraphs(t, cs)
			}
			_, _, body := get(t, tp.url+"/metrics", "")
			require.Contains(t, body, `tenantgraph_auth_verified_total{cached="false"}`)
			require.Equal(t, tc.wantCached, strings.Contains(body, `tenantgraph_auth_verified_total{cached="true"}`), body)
		})
	}
}
