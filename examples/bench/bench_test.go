package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// BenchmarkPath measures the proxy's request path in process, one layer at
// a time, with the same pre-encoded point-lookup request the load generator
// sends (stateless Streamable HTTP, protocol 2026-07-28), through
// handler.ServeHTTP with no network. The differences between the layers
// show where the CPU and the allocations of a call go:
//
//	sdk                     go-sdk stateless handler, a stub tool with the falkor tools' input schema
//	sdk-2025-11-25          the same, the client speaking the previous protocol (no per-request header checks)
//	sdk+authn               ... behind authn.RequireBearer (RS256, token cache on)
//	sdk+authn+tenancy       ... and the tenancy middleware (the stub answers like falkor_ro_query)
//	full                    ... with the real falkor tools on FalkorDB (skipped without one)
//	falkor-client           falkor.Client.ROQuery alone, the database floor of "full"
//
//	go test -run '^$' -bench Path -benchmem ./examples/bench
func BenchmarkPath(b *testing.B) {
	key := authntest.CachedRSA(b, 2048, 0)
	jwks := authntest.NewJWKSServer(b, key)
	const aud = "https://mcp.bench.test/mcp"
	claims := authntest.Claims(jwks.URL, aud, "bench", time.Now(), time.Hour)
	claims["scope"] = "read write"
	token := key.Mint(claims)
	verifier, err := authn.New(authn.Config{
		Issuers: []authn.Issuer{{Issuer: jwks.URL, Audiences: []string{aud}, JWKSURL: jwks.JWKSURL(), Algorithms: []string{"RS256"}}},
		Cache:   &authn.CacheConfig{},
	})
	require.NoError(b, err)
	b.Cleanup(func() { verifier.Close() })
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(b, verifier.WaitReady(wctx))
	ctx := context.Background()

	stub := func(s *mcp.Server) {
		type in struct {
			GraphName  string         `json:"graphName"`
			Query      string         `json:"query"`
			Parameters map[string]any `json:"parameters,omitempty"`
		}
		mcp.AddTool(s, &mcp.Tool{Name: falkor.ToolROQuery, Description: "stub"},
			func(context.Context, *mcp.CallToolRequest, in) (*mcp.CallToolResult, *falkor.Result, error) {
				res := &falkor.Result{Columns: []string{"id", "name"}, Rows: [][]any{{int64(7), "n7"}}}
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "1 row. Columns: [\"id\",\"name\"]\n[7,\"n7\"]"}}}, res, nil
			})
	}
	build := func(b *testing.B, tools func(*mcp.Server), withAuth, withTenancy bool) http.Handler {
		s := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "0"}, nil)
		tools(s)
		if withTenancy {
			mw, err := tenancy.New(tenancy.Config{})
			require.NoError(b, err)
			s.AddReceivingMiddleware(mw)
		}
		var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
			&mcp.StreamableHTTPOptions{Stateless: true})
		if withAuth {
			h = authn.RequireBearer(verifier, nil)(h)
		}
		return h
	}

	run := func(b *testing.B, h http.Handler, graph string, legacy ...bool) {
		t, err := newMCPTarget("http://127.0.0.1/mcp", mcpFlavor{ReadTool: falkor.ToolROQuery, WriteTool: falkor.ToolQuery,
			Graph: graph, ParamsKey: "parameters", Stateless: len(legacy) == 0}, "Bearer "+token, 1)
		require.NoError(b, err)
		bodies, _, err := t.bodies(workloads[0])
		require.NoError(b, err)
		hdr := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"},
			"Authorization": {"Bearer " + token}, "Mcp-Protocol-Version": {protoStateful}}
		if len(legacy) == 0 {
			// What the load generator sends (see mcpTarget.newWorker).
			hdr["Mcp-Protocol-Version"] = []string{protoStateless}
			hdr["Mcp-Method"] = []string{"tools/call"}
			hdr["Mcp-Name"] = []string{falkor.ToolROQuery}
		}
		call := func(k int) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", bytes.NewReader(bodies[k%bodyPool]))
			req.Header = hdr
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		rec := call(0)
		require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
		rows, err := countRows(rec.Body.Bytes())
		require.NoError(b, err, rec.Body.String())
		require.Equal(b, 1, rows)
		b.ReportAllocs()
		b.ResetTimer()
		for k := 0; b.Loop(); k++ {
			if rec := call(k); rec.Code != http.StatusOK {
				b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
		}
	}

	b.Run("sdk", func(b *testing.B) { run(b, build(b, stub, false, false), "bench_g") })
	b.Run("sdk-2025-11-25", func(b *testing.B) { run(b, build(b, stub, false, false), "bench_g", true) })
	b.Run("sdk+authn", func(b *testing.B) { run(b, build(b, stub, true, false), "bench_g") })
	b.Run("sdk+authn+tenancy", func(b *testing.B) { run(b, build(b, stub, true, true), "g") })

	db := falkortest.Start(b)
	client, err := falkor.Open(ctx, db.URL, falkor.Options{MaxRows: 1000, DenyLoadCSV: true})
	require.NoError(b, err)
	b.Cleanup(func() { client.Close() })
	graph := db.Graph("g") // namespace + "_g": the tenant is the namespace
	for _, q := range []string{
		"CREATE INDEX FOR (n:N) ON (n.id)",
		"UNWIND range(0, 999) AS i CREATE (:N {id: i, name: 'n' + toString(i)})",
	} {
		_, err := client.Query(ctx, graph, q, nil)
		require.NoError(b, err)
	}
	claims["sub"] = db.Namespace()
	token = key.Mint(claims)
	b.Run("full", func(b *testing.B) {
		run(b, build(b, func(s *mcp.Server) { falkor.AddTools(s, client, nil) }, true, true), "g")
	})
	b.Run("falkor-client", func(b *testing.B) {
		b.ReportAllocs()
		for k := 0; b.Loop(); k++ {
			if _, err := client.ROQuery(context.Background(), graph, workloads[0].Query, callParams(workloads[0], k)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
