package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// TestTuneGC: GOGC set by the operator wins; otherwise 400.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	require.Equal(t, defaultGCPercent, tuneGC(func(string) string { return "" }))
	require.Equal(t, defaultGCPercent, debug.SetGCPercent(100))
	require.Equal(t, 100, tuneGC(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}))
	require.Equal(t, 100, debug.SetGCPercent(100), "left as it was")
}

// BenchmarkWrappers measures the proxy's HTTP wrappers (access log to a
// discarding JSON logger, stream tracking, body cap, missing-token count)
// around a handler that writes one SSE event and flushes, as the MCP
// handler does.
func BenchmarkWrappers(b *testing.B) {
	m := newMetrics(map[string]bool{"falkordb_ro_query": true}, 10)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("event: message\ndata: {}\n\n"))
		http.NewResponseController(w).Flush()
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", m.countMissingTokens(inner))
	var open atomic.Int64
	h := accessLog(log, streams(context.Background(), &open, http.MaxBytesHandler(mux, 1<<20)))
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer a.b.c")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkAudit measures the metrics of one successful call.
func BenchmarkAudit(b *testing.B) {
	m := newMetrics(map[string]bool{"falkordb_ro_query": true}, 10)
	e := &tenancy.Event{Method: "tools/call", Tool: "falkordb_ro_query", Tenant: "acme", Outcome: tenancy.OutcomeOK, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.Audit(context.Background(), e)
	}
}

// TestFastPathSDKVersion: the build names the go-sdk version the fast path
// reproduces (a go.mod upgrade turns the fast path off until it is checked
// again: update fastPathSDKVersion after running the differential tests).
func TestFastPathSDKVersion(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	require.True(t, ok)
	var version string
	for _, m := range bi.Deps {
		if m.Path == "github.com/modelcontextprotocol/go-sdk" {
			version = m.Version
		}
	}
	require.Equal(t, fastPathSDKVersion, version)
	require.Empty(t, sdkVersionMismatch())
}

// BenchmarkProxyCall measures calls through the proxy's whole HTTP handler
// as deployed (bearer check with the token cache, the fast path, tenancy,
// an audit and an access line to a JSON log, the falkor tools with
// per-tenant database users) against a real FalkorDB, from 16 concurrent
// clients, without a network in front: a point lookup, a read of 50 rows
// and a one-property write on a 1,000-node graph. Besides ns/op it reports cpu-µs/op:
// this process's CPU per call (getrusage), which is the proxy's own work
// plus its go-redis round trip, without FalkorDB's and without the HTTP
// server's connection handling (compare examples/bench, system b).
//
//	go test -run '^$' -bench ProxyCall -benchmem ./examples/proxy
func BenchmarkProxyCall(b *testing.B) {
	db := falkortest.Start(b)
	b.Cleanup(func() { dropACLUsers(b, db) })
	iss := newIssuer(b)
	cfg, err := parseConfig(nil, envFunc(merge(iss.env(), map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "FALKORDB_URL": db.URL, "RATE_LIMIT": "off", "CONCURRENCY_LIMIT": "0",
	})), nil)
	require.NoError(b, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := newProxy(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(b, err)
	b.Cleanup(func() { p.Close() })
	h := p.handler
	tenant, _ := tenants(db)
	token := iss.token(tenant, "read write")
	call := func(tool, args string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", strings.NewReader(rpc("1", tool, args, stdMeta)))
		req.Header = headers(token, tool)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, q := range []string{"CREATE INDEX FOR (n:N) ON (n.id)", "UNWIND range(0, 999) AS i CREATE (:N {id: i, name: 'n' + toString(i)})"} {
		rec := call("falkordb_query", `{"graphName":"g","query":"`+q+`"}`)
		require.NotContains(b, rec.Body.String(), `"isError":true`, rec.Body.String())
	}
	for _, wl := range []struct{ name, tool, args string }{
		{"lookup", "falkordb_ro_query", `{"graphName":"g","query":"MATCH (n:N {id: $id}) RETURN n.id AS id, n.name AS name","parameters":{"id":389}}`},
		{"rows50", "falkordb_ro_query", `{"graphName":"g","query":"MATCH (b:N) WHERE b.id < $n RETURN b.id AS id, b.name AS name","parameters":{"n":50}}`},
		{"write", "falkordb_query", `{"graphName":"g","query":"MATCH (n:N {id: $id}) SET n.v = $v RETURN n.v AS v","parameters":{"id":389,"v":1}}`},
	} {
		b.Run(wl.name, func(b *testing.B) {
			rec := call(wl.tool, wl.args)
			require.Equal(b, http.StatusOK, rec.Code)
			require.Contains(b, rec.Body.String(), `"structuredContent"`, rec.Body.String())
			require.NotEmpty(b, rec.Header().Get("Content-Length"), "served by the fast path (the SDK's replies are chunked)")
			b.ReportAllocs()
			b.SetParallelism(8)
			start := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if rec := call(wl.tool, wl.args); rec.Code != http.StatusOK {
						b.Errorf("HTTP %d: %s", rec.Code, rec.Body)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-start)/float64(b.N)/1e3, "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
