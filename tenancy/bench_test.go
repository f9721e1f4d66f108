package tenancy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchResult is what the benchmark tool returns: a text and structured rows
// naming the physical graph, as a query tool would.
func benchHandler(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: `{"rows":[[1],[2],[3]]}`}},
		StructuredContent: json.RawMessage(`{"rows":[[1],[2],[3]]}`),
	}, nil
}

var benchArgs = json.RawMessage(`{"graphName":"users","query":"MATCH (n:Person) WHERE n.age > $age RETURN n.name LIMIT 10","parameters":{"age":30}}`)

var benchIdentity = &Identity{Tenant: "acme", Subject: "alice", Scopes: []string{ScopeRead, ScopeWrite}}

func benchIdentify(context.Context, mcp.Request) (*Identity, error) { return benchIdentity, nil }

var benchConfigs = []struct {
	name string
	cfg  *Config
}{
	{"bare", nil},
	{"tenancy", &Config{Identify: benchIdentify}},
	{"tenancy+limits", &Config{Identify: benchIdentify, Limits: func(*Identity) Limit { return Limit{Rate: 1e9, Burst: 1e9, Concurrent: 1e6} }}},
	{"tenancy+audit", &Config{Identify: benchIdentify, Auditor: NewSlogAuditor(slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)}},
	// A plan with an allow-list, scopes and a rate limit (no quotas, which
	// ask the database).
	{"tenancy+plan", &Config{Identify: benchIdentify, Plans: &Policy{DefaultPlan: "p", Plans: map[string]*Plan{"p": {
		Name: "p", Graphs: []string{"orders-*", "users"}, Scopes: []string{ScopeRead, ScopeWrite}, Rate: 1e9, Burst: 1e9, Concurrent: 1e6}}}}},
	// Every call after the first is a cache hit.
	{"tenancy+cache-hit", &Config{Identify: benchIdentify, Cache: NewResultCache(&CacheOptions{TTL: time.Hour}),
		Tools: map[string]ToolPolicy{"falkordb_query": {Cacheable: true}}}},
}

// BenchmarkCallTool measures a whole tools/call over an in-memory transport,
// with and without the middleware (identity injected by Config.Identify for
// the benchmark only).
func BenchmarkCallTool(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			s := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			s.AddTool(&mcp.Tool{Name: "falkordb_query", InputSchema: map[string]any{"type": "object"}}, benchHandler)
			if bc.cfg != nil {
				mw, err := New(*bc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				s.AddReceivingMiddleware(mw)
			}
			ct, st := mcp.NewInMemoryTransports()
			ctx := context.Background()
			ss, err := s.Connect(ctx, st, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ss.Close()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "falkordb_query", Arguments: benchArgs}
			b.ReportAllocs()
			for b.Loop() {
				res, err := cs.CallTool(ctx, params)
				if err != nil || res.IsError {
					b.Fatal(err, res)
				}
			}
		})
	}
}

// BenchmarkMiddleware measures the middleware alone: one tools/call through
// the method handler chain, against calling the handler directly.
func BenchmarkMiddleware(b *testing.B) {
	next := func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		return benchHandler(ctx, req.(*mcp.CallToolRequest))
	}
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			h := mcp.MethodHandler(next)
			if bc.cfg != nil {
				mw, err := New(*bc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				h = mw(h)
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "falkordb_query", Arguments: benchArgs}}
				res, err := h(ctx, "tools/call", req)
				if err != nil || res.(*mcp.CallToolResult).IsError {
					b.Fatal(err, res)
				}
			}
			// CPU time per call (all threads, GC included) is less disturbed
			// than wall time when the machine is busy.
			if cpu0 > 0 {
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
