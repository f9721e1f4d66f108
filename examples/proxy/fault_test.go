package main

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// TestFaultFalkorDBKilled: FalkorDB killed while tenants work. Calls fail
// fast (well within QUERY_TIMEOUT) with a clear, retriable error that names
// no address; /readyz reports it; when FalkorDB is back (empty: it keeps no
// data), the proxy recovers by itself, per-tenant database users included,
// and a write runs once.
func TestFaultFalkorDBKilled(t *testing.T) {
	db := falkortest.Start(t) // for the issuer-independent helpers only
	ctx := context.Background()
	srv, err := lite.Start(ctx, lite.Options{Password: "pw-" + db.Namespace()})
	if err != nil {
		t.Skipf("no local FalkorDB: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{
		"FALKORDB_URL": srv.URL(), "RATE_LIMIT": "off", "QUERY_TIMEOUT": "20s",
	}))
	require.True(t, tp.dbACL)
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write"))
	b := connect(t, tp.url, "streamable", iss.token(tb, "read write"))
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "before"}})
	mustCall(t, b, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "before"}})

	require.NoError(t, srv.Kill())
	var slowest time.Duration
	for i := range 6 {
		cs := a
		if i%2 == 1 {
			cs = b
		}
		start := time.Now()
		res, err := call(t, cs, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "down"}})
		slowest = max(slowest, time.Since(start))
		require.NoError(t, err)
		require.True(t, res.IsError)
		msg := text(res)
		require.Contains(t, msg, "FalkorDB unavailable", "a clear, retriable error")
		require.NotContains(t, msg, srv.Addr())
		require.NotContains(t, msg, "127.0.0.1")
	}
	require.Less(t, slowest, 20*time.Second, "calls fail before QUERY_TIMEOUT")
	t.Logf("FalkorDB down: slowest failing call %v", slowest)
	code, _, body := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"falkordb":"unreachable"`)

	require.NoError(t, srv.Restart(ctx))
	recovered := 0
	for attempt := 1; attempt <= 3 && recovered == 0; attempt++ {
		res, err := call(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "after"}})
		require.NoError(t, err)
		if !res.IsError {
			recovered = attempt
		} else {
			require.Contains(t, text(res), "FalkorDB unavailable", "only retriable errors while recovering")
		}
	}
	require.NotZero(t, recovered, "the proxy recovers once FalkorDB is back")
	t.Logf("recovered on call %d after the restart", recovered)
	for attempt := 1; attempt <= 3; attempt++ {
		res, err := call(t, b, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "RETURN 1"})
		require.NoError(t, err)
		if !res.IsError || !strings.Contains(text(res), "unavailable") {
			break
		}
	}
	res := mustCall(t, a, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "MATCH (n:Probe) RETURN collect(n.name) AS names"})
	require.Contains(t, structured(t, res), `"rows":[[["after"]]]`, "the write after the restart ran once; the failed ones never ran")
	code, _, _ = get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusOK, code)
}

// TestClientDisconnectNoLeak: clients that hang up in the middle of slow
// calls leave no goroutine behind once the calls end.
func TestClientDisconnectNoLeak(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"RATE_LIMIT": "off"}))
	ta, _ := tenants(db)
	tok := iss.token(ta, "read write")
	mustCall(t, connect(t, tp.url, "streamable", tok), "falkordb_query", map[string]any{"graphName": "g", "query": "RETURN 1"})
	httpClient(t, "").CloseIdleConnections()
	settle := func() int {
		var n int
		for range 50 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(20 * time.Millisecond)
			if n == runtime.NumGoroutine() {
				break
			}
		}
		return n
	}
	before := settle()
	slow := rawToolCall("falkordb_ro_query", map[string]any{"graphName": "g", "query": "UNWIND range(1, 3000000) AS i WITH i WHERE i % 7 = 0 RETURN count(i)"})
	for range 5 {
		cctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, tp.url+"/mcp", strings.NewReader(slow))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		tr := &http.Transport{}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		tr.CloseIdleConnections()
	}
	require.NoError(t, tp.calls.wait(context.Background()), "the calls end")
	after := settle()
	for deadline := time.Now().Add(30 * time.Second); after > before && time.Now().Before(deadline); after = settle() {
		time.Sleep(100 * time.Millisecond)
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
	require.LessOrEqual(t, after, before, "goroutines: %d before, %d after", before, after)
	t.Logf("goroutines: %d before, %d after 5 abandoned calls", before, after)
}
