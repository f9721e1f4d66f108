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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
