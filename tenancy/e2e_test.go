package tenancy_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// End-to-end acceptance tests of issue 5: a real FalkorDB (falkortest),
// the falkor tools behind the tenancy middleware, real RS256 tokens verified
// by authn against a JWKS server, over real HTTP.

var rw = []string{tenancy.ScopeRead, tenancy.ScopeWrite}

// transports are the Streamable HTTP variants the isolation tests run on.
var transports = []struct {
	name      string
	stateless bool
}{
	{"stateful", false},
	{"stateless", true},
}

// The seed's first integration test: tenant B querying "test_graph" sees
// none of tenant A's nodes.
func TestE2ETenantBSeesNoneOfTenantANodes(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := newStack(t, stackOptions{Stateless: tr.stateless})
			a, b := s.tenant("a"), s.tenant("b")
			csA := s.session(t, s.idp.token(a, "alice", rw...))
			csB := s.session(t, s.idp.token(b, "bob", rw...))

			res := ok(t, csA, falkor.ToolQuery, map[string]any{
				"graphName":  "test_graph",
				"query":      "UNWIND range(1, 3) AS i CREATE (:Person {owner: $owner, i: i})",
				"parameters": map[string]any{"owner": "marker-of-a"},
			})
			require.Contains(t, textOf(res), "nodes created: 3")
			require.EqualValues(t, 3, s.count(t, a, "test_graph", "Person"), "A's nodes are in A's physical graph")

			// B's MATCH on its own "test_graph" finds nothing of A's.
			res = ok(t, csB, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "MATCH (n) RETURN n.owner"})
			require.Empty(t, rows(t, res))
			require.NotContains(t, everything(t, res), "marker-of-a")

			// Once B has nodes of its own, it sees exactly those.
			ok(t, csB, falkor.ToolQuery, map[string]any{
				"graphName":  "test_graph",
				"query":      "CREATE (:Person {owner: $owner})",
				"parameters": map[string]any{"owner": "marker-of-b"},
			})
			for _, tool := range []string{falkor.ToolQuery, falkor.ToolROQuery} {
				res = ok(t, csB, tool, map[string]any{"graphName": "test_graph", "query": "MATCH (n) RETURN n.owner"})
				require.Equal(t, [][]any{{"marker-of-b"}}, rows(t, res), tool)
				require.NotContains(t, everything(t, res), "marker-of-a", tool)
				res = ok(t, csA, tool, map[string]any{"graphName": "test_graph", "query": "MATCH (n) RETURN DISTINCT n.owner"})
				require.Equal(t, [][]any{{"marker-of-a"}}, rows(t, res), tool)
			}
			require.EqualValues(t, 3, s.count(t, a, "test_graph", "Person"))
			require.EqualValues(t, 1, s.count(t, b, "test_graph", "Person"))
			require.Equal(t, []string{s.key(a, "test_graph"), s.key(b, "test_graph")}, s.rawGraphs(t),
				"two physical graphs behind one logical name")
		})
	}
}

// The seed's second integration test: each tenant's graph list shows only
// its own graphs, by logical name, while the server holds prefixed keys.
func TestE2EListGraphsShowsOnlyOwnGraphs(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := newStack(t, stackOptions{Stateless: tr.stateless})
			a, b, c := s.tenant("a"), s.tenant("b"), s.tenant("c")
			csA := s.session(t, s.idp.token(a, "alice", rw...))
			csB := s.session(t, s.idp.token(b, "bob", rw...))
			csC := s.session(t, s.idp.token(c, "carol", tenancy.ScopeRead))

			for _, g := range []string{"test_graph", "a_only", "A.Mixed-Case_1"} {
				ok(t, csA, falkor.ToolQuery, map[string]any{"graphName": g, "query": "CREATE (:N)"})
			}
			for _, g := range []string{"test_graph", "b_only"} {
				ok(t, csB, falkor.ToolQuery, map[string]any{"graphName": g, "query": "CREATE (:N)"})
			}

			require.ElementsMatch(t, []string{"test_graph", "a_only", "A.Mixed-Case_1"}, listGraphs(t, csA))
			require.ElementsMatch(t, []string{"test_graph", "b_only"}, listGraphs(t, csB))
			require.Empty(t, listGraphs(t, csC), "a tenant without graphs sees none")
			for _, cs := range []*mcp.ClientSession{csA, csB, csC} {
				s.noLeak(t, everything(t, ok(t, cs, falkor.ToolListGraphs, map[string]any{})), a, b, c)
			}

			// The raw server lists the physical, prefixed keys.
			require.ElementsMatch(t, []string{
				a + "_test_graph", a + "_a_only", a + "_A.Mixed-Case_1",
				b + "_test_graph", b + "_b_only",
			}, s.rawGraphs(t))
		})
	}
}

// TestE2ENoIdentity: requests without a verified identity, or whose identity
// names no valid tenant, are refused before anything reaches FalkorDB.
func TestE2ENoIdentity(t *testing.T) {
	query := map[string]any{"graphName": "test_graph", "query": "CREATE (:Intruder)"}

	t.Run("in-memory transport", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		ctx := context.Background()
		ct, st := mcp.NewInMemoryTransports()
		ss, err := s.server.Connect(ctx, st, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = ss.Close() })
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "in-memory", Version: "v0"}, nil).Connect(ctx, ct, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		s.untouched(t, func() {
			for _, tool := range []string{falkor.ToolQuery, falkor.ToolListGraphs} {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: query})
				we := rpcError(t, err)
				require.EqualValues(t, tenancy.CodeUnauthenticated, we.Code)
				require.Contains(t, we.Message, "no verified bearer token")
			}
			_, err := cs.ListTools(ctx, nil)
			require.EqualValues(t, tenancy.CodeUnauthenticated, rpcError(t, err).Code)
		})
	})

	t.Run("HTTP without the bearer layer", func(t *testing.T) {
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) {
				s := newStack(t, stackOptions{NoAuth: true, Stateless: tr.stateless})
				// A real token is sent, but nothing verifies it: it must not count.
				cs := s.session(t, s.idp.token(s.tenant("a"), "alice", rw...))
				s.untouched(t, func() {
					_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: falkor.ToolQuery, Arguments: query})
					we := rpcError(t, err)
					require.EqualValues(t, tenancy.CodeUnauthenticated, we.Code)
					require.Contains(t, we.Message, "no verified bearer token")
				})
				ev := s.audit.last(t)
				require.Equal(t, tenancy.OutcomeRefused, ev.Outcome)
				require.ErrorIs(t, ev.Err, tenancy.ErrNoIdentity)
				require.Empty(t, ev.Tenant)
			})
		}
	})

	// Token infos that authn never produces, from a custom verifier: the
	// middleware must refuse them on its own.
	t.Run("token info without a valid tenant", func(t *testing.T) {
		tokens := map[string]*auth.TokenInfo{}
		s := newStack(t, stackOptions{Verify: func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
			ti, ok := tokens[token]
			if !ok {
				return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
			}
			return ti, nil
		}})
		info := func(tenant any) *auth.TokenInfo {
			extra := map[string]any{tenancy.ExtraSubject: "mallory", tenancy.ExtraIssuer: "https://issuer.test"}
			if tenant != nil {
				extra[tenancy.ExtraTenant] = tenant
			}
			return &auth.TokenInfo{Scopes: rw, Expiration: time.Now().Add(time.Hour), UserID: "https://issuer.test mallory", Extra: extra}
		}
		a := s.tenant("a")
		tokens["valid"] = info(a)
		tests := []struct {
			name   string
			tenant any
			msg    string
		}{
			{"no tenant", nil, "names no tenant"},
			{"empty tenant", "", "names no tenant"},
			{"tenant not a string", 42, "names no tenant"},
			{"separator", s.tenant("_a"), "tenant is not valid"},
			{"separator at the end", a + "_", "tenant is not valid"},
			{"dot separator", s.tenant(".a"), "tenant is not valid"},
			{"capitals", strings.ToUpper(a), "tenant is not valid"},
			{"look-alike", s.tenant("а"), "tenant is not valid"}, // Cyrillic а
			{"whitespace", a + " ", "tenant is not valid"},
			{"NUL", a + "\x00", "tenant is not valid"},
			{"glob", a + "*", "tenant is not valid"},
			{"too long", s.tenant(strings.Repeat("a", 60)), "tenant is not valid"},
		}
		tokenOf := func(name string) string { return strings.ReplaceAll(name, " ", "-") }
		for _, tt := range tests {
			tokens[tokenOf(tt.name)] = info(tt.tenant)
		}
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) {
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						cs := s.session(t, tokenOf(tt.name))
						s.untouched(t, func() {
							_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: falkor.ToolQuery, Arguments: query})
							we := rpcError(t, err)
							require.EqualValues(t, tenancy.CodeUnauthenticated, we.Code)
							require.Contains(t, we.Message, tt.msg)
							_, err = cs.ListTools(context.Background(), nil)
							require.EqualValues(t, tenancy.CodeUnauthenticated, rpcError(t, err).Code)
						})
					})
				}
			})
		}
		// The same stack serves a valid token: the refusals were the tenant's.
		cs := s.session(t, "valid")
		ok(t, cs, falkor.ToolQuery, query)
		require.EqualValues(t, 1, s.count(t, a, "test_graph", "Intruder"))
	})

	// authn itself refuses tokens without a valid tenant claim: 401.
	t.Run("authn refuses", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		a := s.tenant("a")
		noTenant := s.idp.token("", "alice", rw...)
		withSub := s.idp.claims("", a, rw...) // the subject looks like a tenant, but the tenant claim is "org"
		tests := []struct {
			name, token string
		}{
			{"no tenant claim", noTenant},
			{"tenant only in sub", s.idp.key.Mint(withSub)},
			{"separator", s.idp.token(s.tenant("_a"), "alice", rw...)},
			{"capitals", s.idp.token(strings.ToUpper(a), "alice", rw...)},
			{"look-alike", s.idp.token(s.tenant("а"), "alice", rw...)},
			{"empty tenant", s.idp.key.Mint(func() map[string]any { c := s.idp.claims("", "alice", rw...); c["org"] = ""; return c }())},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s.untouched(t, func() {
					req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(toolCall(1, falkor.ToolQuery, query)))
					require.NoError(t, err)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					resp, err := s.httpClient(tt.token).Do(req)
					require.NoError(t, err)
					_ = resp.Body.Close()
					require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
					require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)

					_, err = s.connect(t, tt.token)
					require.Error(t, err, "the SDK client cannot connect")
				})
			})
		}
		// The same stack accepts a good token.
		ok(t, s.session(t, s.idp.token(a, "alice", rw...)), falkor.ToolQuery, query)
	})
}

// TestE2EInvalidGraphNames: graph names outside the allowed set are refused
// with a tool error that says what is allowed, and nothing reaches FalkorDB.
func TestE2EInvalidGraphNames(t *testing.T) {
	s := newStack(t, stackOptions{})
	a := s.tenant("a")
	cs := s.session(t, s.idp.token(a, "alice", tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin))
	ok(t, cs, falkor.ToolQuery, map[string]any{"graphName": "users", "query": "CREATE (:N)"})

	bad := []struct{ name, graph string }{
		{"empty", ""},
		{"separator at the start", "_x"},
		{"separator at the end", "x_"},
		{"dot at the start", ".x"},
		{"dot at the end", "x."},
		{"dash at the start", "-x"},
		{"only a separator", "_"},
		{"leading space", " users"},
		{"trailing space", "users "},
		{"inner space", "us ers"},
		{"tab", "us\ters"},
		{"newline", "users\n"},
		{"NUL", "us\x00ers"},
		{"NUL at the end", "users\x00"},
		{"Cyrillic look-alike", "usеrs"}, // Cyrillic е
		{"fullwidth", "ｕsers"},
		{"zero-width space", "us\u200bers"},
		{"200 characters", strings.Repeat("x", 200)},
		{"129 characters", strings.Repeat("x", 129)},
		{"glob", "user*"},
		{"hash tag", "{users}"},
		{"colon", "users:1"},
		{"slash", "../users"},
	}
	tools := []struct {
		name string
		args map[string]any
	}{
		{falkor.ToolQuery, map[string]any{"query": "CREATE (:Intruder)"}},
		{falkor.ToolROQuery, map[string]any{"query": "MATCH (n) RETURN n"}},
		{falkor.ToolExplain, map[string]any{"query": "MATCH (n) RETURN n"}},
		{falkor.ToolGraphSchema, map[string]any{}},
		{falkor.ToolDeleteGraph, map[string]any{"confirm": true}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			for _, tool := range tools {
				args := map[string]any{"graphName": tt.graph}
				for k, v := range tool.args {
					args[k] = v
				}
				s.untouched(t, func() {
					res := call(t, cs, tool.name, args)
					require.True(t, res.IsError, "%s accepted graph %q", tool.name, tt.graph)
					msg := textOf(res)
					require.Contains(t, msg, "graph names are 1-128 ASCII letters, digits", "the message says what is allowed")
					s.noLeak(t, everything(t, res), a)
				})
				ev := s.audit.last(t)
				require.Equal(t, tenancy.OutcomeRefused, ev.Outcome)
				require.ErrorIs(t, ev.Err, tenancy.ErrInvalidGraph)
			}
		})
	}
	require.EqualValues(t, 1, s.count(t, a, "users", "N"))
	require.Equal(t, []string{s.key(a, "users")}, s.rawGraphs(t))
}

// TestE2EReadOnlyTenantCannotWrite: a tenant with only the read scope that
// sends CREATE through falkordb_query is routed to falkordb_ro_query, where
// FalkorDB itself refuses the write.
func TestE2EReadOnlyTenantCannotWrite(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := newStack(t, stackOptions{Stateless: tr.stateless})
			a := s.tenant("a")
			writer := s.session(t, s.idp.token(a, "alice", rw...))
			reader := s.session(t, s.idp.token(a, "rita", tenancy.ScopeRead))
			ok(t, writer, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "UNWIND range(1, 5) AS i CREATE (:Marker {i: i})"})
			require.EqualValues(t, 5, s.count(t, a, "test_graph", "Marker"))

			keys := s.state(t).keys
			for _, q := range []string{
				"CREATE (:Marker {i: 99})",
				"MATCH (n:Marker) DETACH DELETE n",
				"MATCH (n:Marker) SET n.i = 0",
				"MERGE (:Marker {i: 100})",
				"CREATE INDEX FOR (n:Marker) ON (n.i)",
			} {
				before := s.state(t)
				res := call(t, reader, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": q})
				require.True(t, res.IsError, "a read-only tenant wrote with %q", q)
				require.Contains(t, textOf(res), "read-only")
				s.noLeak(t, everything(t, res), a)
				sent := s.sent(before)
				require.Zero(t, sent["graph.query"], "GRAPH.QUERY must never be sent for a read-only tenant")
				require.Positive(t, sent["graph.ro_query"], "the server's read-only path refused it")
				ev := s.audit.last(t)
				require.Equal(t, falkor.ToolQuery, ev.Tool)
				require.Equal(t, falkor.ToolROQuery, ev.RoutedTo)
				require.Equal(t, tenancy.OutcomeToolError, ev.Outcome)
				require.Equal(t, "test_graph", ev.Graph)
			}
			require.EqualValues(t, 5, s.count(t, a, "test_graph", "Marker"), "nothing was written")
			res, err := s.check.ROQuery(context.Background(), s.key(a, "test_graph"), "MATCH (n:Marker) RETURN min(n.i), max(n.i)", nil)
			require.NoError(t, err)
			require.Equal(t, [][]any{{int64(1), int64(5)}}, res.Rows)

			// Writing to a graph that does not exist does not create it.
			res2 := call(t, reader, falkor.ToolQuery, map[string]any{"graphName": "fresh", "query": "CREATE (:Marker)"})
			require.True(t, res2.IsError)
			require.Equal(t, keys, s.state(t).keys, "no key was created")

			// Reads work, and the reader sees falkordb_query only as routed:
			// tools/list does not offer it.
			res3 := ok(t, reader, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "MATCH (n:Marker) RETURN count(n)"})
			require.Equal(t, [][]any{{float64(5)}}, rows(t, res3))
			lt, err := reader.ListTools(context.Background(), nil)
			require.NoError(t, err)
			var names []string
			for _, tool := range lt.Tools {
				names = append(names, tool.Name)
			}
			require.ElementsMatch(t, []string{falkor.ToolROQuery, falkor.ToolExplain, falkor.ToolGraphSchema, falkor.ToolListGraphs}, names)
		})
	}
}

// TestE2EDeleteNeedsAdminScope: falkordb_delete_graph needs write and admin.
func TestE2EDeleteNeedsAdminScope(t *testing.T) {
	s := newStack(t, stackOptions{})
	a := s.tenant("a")
	owner := s.session(t, s.idp.token(a, "alice", rw...))
	ok(t, owner, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "UNWIND range(1, 4) AS i CREATE (:Marker)"})

	del := map[string]any{"graphName": "test_graph", "confirm": true}
	for _, scopes := range [][]string{
		{tenancy.ScopeRead},
		rw,
		{tenancy.ScopeRead, tenancy.ScopeAdmin},
		{tenancy.ScopeAdmin},
		{},
	} {
		name := strings.Join(scopes, "+")
		if name == "" {
			name = "no scopes"
		}
		t.Run(name, func(t *testing.T) {
			cs := s.session(t, s.idp.token(a, "mallory", scopes...))
			s.untouched(t, func() {
				res := call(t, cs, falkor.ToolDeleteGraph, del)
				require.True(t, res.IsError)
				require.Contains(t, textOf(res), "permission denied")
				require.Contains(t, textOf(res), "admin")
			})
			require.Equal(t, []string{s.key(a, "test_graph")}, s.rawGraphs(t), "the graph still exists")
			require.EqualValues(t, 4, s.count(t, a, "test_graph", "Marker"))
			ev := s.audit.last(t)
			require.ErrorIs(t, ev.Err, tenancy.ErrForbidden)
		})
	}

	// With write and admin, the tenant deletes its own graph.
	admin := s.session(t, s.idp.token(a, "alice", tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin))
	res := ok(t, admin, falkor.ToolDeleteGraph, del)
	require.Contains(t, textOf(res), `"test_graph"`)
	s.noLeak(t, everything(t, res), a)
	require.Empty(t, s.rawGraphs(t))
}

// TestE2EUnknownTool: tools outside the policy, whether the server has them
// or not, are refused and hidden.
func TestE2EUnknownTool(t *testing.T) {
	var ran atomic.Int32
	s := newStack(t, stackOptions{Tools: func(srv *mcp.Server, c *falkor.Client) {
		// A tool the server has but the policy does not name: it would list
		// every tenant's graphs.
		srv.AddTool(&mcp.Tool{Name: "all_graphs", InputSchema: map[string]any{"type": "object"}},
			func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				ran.Add(1)
				g, err := c.ListGraphs(ctx)
				if err != nil {
					return nil, err
				}
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(g, ",")}}}, nil
			})
	}})
	a := s.tenant("a")
	cs := s.session(t, s.idp.token(a, "alice", tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin))
	ok(t, cs, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "CREATE (:N)"})

	for _, name := range []string{"all_graphs", "falkordb_nope", "FALKORDB_QUERY", "falkordb_query ", "GRAPH.QUERY", ""} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			s.untouched(t, func() {
				_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"graphName": "test_graph", "query": "MATCH (n) DETACH DELETE n"}})
				we := rpcError(t, err)
				require.EqualValues(t, jsonrpc.CodeInvalidParams, we.Code)
				require.Contains(t, we.Message, "unknown tool")
			})
			ev := s.audit.last(t)
			require.ErrorIs(t, ev.Err, tenancy.ErrUnknownTool)
			require.Equal(t, a, ev.Tenant)
		})
	}
	require.Zero(t, ran.Load(), "the tool outside the policy never ran")
	require.EqualValues(t, 1, s.count(t, a, "test_graph", "N"))

	lt, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range lt.Tools {
		names = append(names, tool.Name)
	}
	require.ElementsMatch(t, []string{
		falkor.ToolQuery, falkor.ToolROQuery, falkor.ToolExplain, falkor.ToolGraphSchema, falkor.ToolListGraphs, falkor.ToolDeleteGraph,
	}, names, "tools outside the policy are hidden")
}

// TestE2ERateLimit: a tenant's rate limit (a RedisLimiter on the FalkorDB
// server's Redis, shared by replicas) refuses calls beyond the burst with a
// retry time, whatever token the tenant uses; other tenants are unaffected.
func TestE2ERateLimit(t *testing.T) {
	const burst = 3
	s := newStack(t, stackOptions{
		Limits: func(*tenancy.Identity) tenancy.Limit { return tenancy.Limit{Rate: 0.001, Burst: burst} },
		Limiter: func(c *falkor.Client, ns string) tenancy.Limiter {
			return tenancy.NewRedisLimiter(c.Redis(), &tenancy.RedisLimiterOptions{Prefix: ns + ":ratelimit:"})
		},
	})
	a, b := s.tenant("a"), s.tenant("b")
	csA := s.session(t, s.idp.token(a, "alice", rw...))
	for i := range burst {
		before := s.state(t)
		ok(t, csA, falkor.ToolListGraphs, map[string]any{})
		require.Equal(t, map[string]int{"graph.list": 1}, s.sent(before), "call %d reached FalkorDB", i+1)
	}

	refused := func(t *testing.T, cs *mcp.ClientSession) {
		t.Helper()
		s.untouched(t, func() {
			res := call(t, cs, falkor.ToolListGraphs, map[string]any{})
			require.True(t, res.IsError, "call beyond the burst accepted")
			require.Contains(t, textOf(res), "rate limit exceeded")
			require.Regexp(t, `retry after [1-9][0-9]* s`, textOf(res))
			ms, isNum := res.Meta["retryAfterMs"].(float64)
			require.True(t, isNum, "meta: %v", res.Meta)
			require.Positive(t, ms)
		})
		ev := s.audit.last(t)
		require.ErrorIs(t, ev.Err, tenancy.ErrRateLimited)
		require.Equal(t, a, ev.Tenant)
	}
	refused(t, csA)
	// A new token (another user of the tenant, a fresh jti) does not escape
	// the limit: it is keyed on the tenant.
	refused(t, s.session(t, s.idp.token(a, "alfred", rw...)))

	// The other tenant has its own budget.
	csB := s.session(t, s.idp.token(b, "bob", rw...))
	for range burst {
		ok(t, csB, falkor.ToolListGraphs, map[string]any{})
	}
	require.True(t, call(t, csB, falkor.ToolListGraphs, map[string]any{}).IsError)

	// The buckets live in the server, one per tenant prefix.
	for _, tenant := range []string{a, b} {
		n, err := s.raw.Exists(context.Background(), s.db.Namespace()+":ratelimit:"+tenant+"_").Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
}

// TestE2ESSESessionOfAnotherTenant: on the legacy SSE transport, a POST
// carrying another tenant's token to an open session is refused (403) and
// nothing reaches FalkorDB; the session's owner still works.
func TestE2ESSESessionOfAnotherTenant(t *testing.T) {
	s := newStack(t, stackOptions{SSE: true})
	a, b := s.tenant("a"), s.tenant("b")
	tokA := s.idp.token(a, "alice", rw...)
	tokB := s.idp.token(b, "bob", rw...)
	endpoint, events := s.openSSE(tokA)

	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	const initialized = `{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`
	require.Equal(t, http.StatusAccepted, s.post(endpoint, tokA, initialize))
	ev := tenancy.NextSSEEvent(t, events)
	require.Equal(t, "message", ev.Name)
	require.Contains(t, ev.Data, `"protocolVersion"`)
	require.Equal(t, http.StatusAccepted, s.post(endpoint, tokA, initialized))

	create := toolCall(2, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "CREATE (:Intruder)"})
	s.untouched(t, func() {
		require.Equal(t, http.StatusForbidden, s.post(endpoint, tokB, create), "another tenant's token")
		require.Equal(t, http.StatusForbidden, s.post(endpoint, s.idp.token(a, "alfred", rw...), create), "another user of the same tenant")
		require.Equal(t, http.StatusForbidden, s.post(endpoint, s.idp.token(a, "alice", tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin), create), "the owner with other scopes")
		require.Equal(t, http.StatusUnauthorized, s.post(endpoint, "", create), "no token")
		require.Equal(t, http.StatusUnauthorized, s.post(endpoint, s.idp.token("", "bob", rw...), create), "a token without tenant")
		require.Equal(t, http.StatusNotFound, s.post("/?sessionid=nosuchsession", tokB, create), "unknown session")
	})
	select {
	case ev := <-events:
		t.Fatalf("the refused POSTs produced an event on A's stream: %+v", ev)
	default:
	}
	require.Zero(t, s.count(t, a, "test_graph", "Intruder"))
	require.Zero(t, s.count(t, b, "test_graph", "Intruder"))

	// The owner's own POST runs, in the owner's graph.
	mine := toolCall(3, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "CREATE (:Owner) RETURN 1"})
	require.Equal(t, http.StatusAccepted, s.post(endpoint, tokA, mine))
	ev = tenancy.NextSSEEvent(t, events)
	require.Equal(t, "message", ev.Name)
	require.Contains(t, ev.Data, `"id":3`)
	require.NotContains(t, ev.Data, `"isError":true`)
	s.noLeak(t, ev.Data, a)
	require.EqualValues(t, 1, s.count(t, a, "test_graph", "Owner"))
	require.Equal(t, []string{s.key(a, "test_graph")}, s.rawGraphs(t))
}

// TestE2EErrorsAreCleaned: FalkorDB errors on a tenant's graph reach the
// client with the logical graph name, never the physical prefix, the
// server's host or its port.
func TestE2EErrorsAreCleaned(t *testing.T) {
	s := newStack(t, stackOptions{})
	a, b := s.tenant("a"), s.tenant("b")
	cs := s.session(t, s.idp.token(a, "alice", tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin))
	csB := s.session(t, s.idp.token(b, "bob", rw...))
	ok(t, cs, falkor.ToolQuery, map[string]any{"graphName": "test_graph", "query": "CREATE (:N {v: 1})"})
	ok(t, csB, falkor.ToolQuery, map[string]any{"graphName": "missing_graph", "query": "CREATE (:N)"}) // B has one

	tests := []struct {
		name, tool string
		args       map[string]any
		graph      string // the logical name the message must hold
		want       string // and a hint of the cause
	}{
		{"read-only query on a missing graph", falkor.ToolROQuery,
			map[string]any{"graphName": "missing_graph", "query": "MATCH (n) RETURN n"}, "missing_graph", "not found"},
		{"explain on a missing graph", falkor.ToolExplain,
			map[string]any{"graphName": "missing_graph", "query": "MATCH (n) RETURN n"}, "missing_graph", "not found"},
		{"delete of a missing graph", falkor.ToolDeleteGraph,
			map[string]any{"graphName": "missing_graph", "confirm": true}, "missing_graph", "not found"},
		{"syntax error", falkor.ToolQuery,
			map[string]any{"graphName": "test_graph", "query": "MATCH (n RETURN n"}, "test_graph", ""},
		{"syntax error, read-only", falkor.ToolROQuery,
			map[string]any{"graphName": "test_graph", "query": "RETURN $"}, "test_graph", ""},
		{"runtime error", falkor.ToolQuery,
			map[string]any{"graphName": "test_graph", "query": "MATCH (n:N) RETURN n.v + {}"}, "test_graph", ""},
		{"invalid parameter", falkor.ToolQuery,
			map[string]any{"graphName": "test_graph", "query": "RETURN $x", "parameters": map[string]any{"bad name": 1}}, "test_graph", "parameter"},
		{"delete without confirm", falkor.ToolDeleteGraph,
			map[string]any{"graphName": "test_graph", "confirm": false}, "test_graph", "confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, cs, tt.tool, tt.args)
			require.True(t, res.IsError, textOf(res))
			msg := textOf(res)
			t.Logf("%s: %s", tt.tool, msg)
			require.Contains(t, msg, `"`+tt.graph+`"`, "the message names the logical graph")
			require.Contains(t, msg, tt.want)
			require.NotContains(t, msg, "internal error", "a cleanable message is passed on, not replaced")
			s.noLeak(t, everything(t, res), a, b)
			ev := s.audit.last(t)
			require.Equal(t, a, ev.Tenant)
			require.Equal(t, tt.graph, ev.Graph)
			require.Equal(t, tenancy.OutcomeToolError, ev.Outcome)
		})
	}
	// A's failed calls left B's graph of the same name alone.
	require.EqualValues(t, 1, s.count(t, b, "missing_graph", "N"))

	// Errors the SDK raises (schema validation, after the middleware mapped
	// the graph argument) are cleaned too.
	t.Run("schema validation", func(t *testing.T) {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: falkor.ToolQuery, Arguments: map[string]any{"graphName": "test_graph", "query": 42}})
		require.NoError(t, err)
		require.True(t, res.IsError)
		require.Contains(t, textOf(res), "validating")
		s.noLeak(t, everything(t, res), a, b)
	})
}

// TestE2EConcurrentTenants: 20 tenants × 10 goroutines × 100 calls, writes
// and reads of graphs of the same logical name ("shared") at once, over real
// HTTP with real tokens. Every read returns only the caller's own marker;
// no call fails.
func TestE2EConcurrentTenants(t *testing.T) {
	tenants, workers, calls := 20, 10, 100
	if testing.Short() {
		tenants, workers, calls = 20, 2, 10
	}
	s := newStack(t, stackOptions{Stateless: false})
	type tenantRun struct {
		id, marker string
		token      string
	}
	runs := make([]tenantRun, tenants)
	for i := range runs {
		id := s.tenant(fmt.Sprintf("c%02d", i))
		runs[i] = tenantRun{id: id, marker: "marker-" + id, token: s.idp.token(id, "user", rw...)}
	}

	var failures atomic.Int64
	var firstMu sync.Mutex
	var first []string
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstMu.Lock()
		if len(first) < 10 {
			first = append(first, fmt.Sprintf(format, args...))
		}
		firstMu.Unlock()
	}
	var writes, reads, lists atomic.Int64

	start := time.Now()
	var wg sync.WaitGroup
	for _, run := range runs {
		for w := range workers {
			cs, err := s.connect(t, run.token) // one session per goroutine
			require.NoError(t, err)
			wg.Go(func() {
				ctx := context.Background()
				for i := range calls {
					var p *mcp.CallToolParams
					switch {
					case i%2 == 0: // the first call of every goroutine is a write
						p = &mcp.CallToolParams{Name: falkor.ToolQuery, Arguments: map[string]any{
							"graphName":  "shared",
							"query":      "CREATE (:Marker {tenant: $marker, worker: $w, seq: $i})",
							"parameters": map[string]any{"marker": run.marker, "w": w, "i": i},
						}}
					case i%10 == 9:
						p = &mcp.CallToolParams{Name: falkor.ToolListGraphs, Arguments: map[string]any{}}
					default:
						p = &mcp.CallToolParams{Name: falkor.ToolROQuery, Arguments: map[string]any{
							"graphName": "shared",
							"query":     "MATCH (n:Marker) RETURN DISTINCT n.tenant",
						}}
					}
					res, err := cs.CallTool(ctx, p)
					if err != nil {
						fail("%s call %d (%s): %v", run.id, i, p.Name, err)
						continue
					}
					if res.IsError {
						fail("%s call %d (%s): %s", run.id, i, p.Name, textOf(res))
						continue
					}
					switch p.Name {
					case falkor.ToolQuery:
						writes.Add(1)
						if !strings.Contains(textOf(res), "nodes created: 1") {
							fail("%s write %d: %s", run.id, i, textOf(res))
						}
					case falkor.ToolListGraphs:
						lists.Add(1)
						if got := structuredGraphs(res); !slices.Equal(got, []string{"shared"}) {
							fail("%s list %d: %v", run.id, i, got)
						}
					default:
						reads.Add(1)
						if got := readMarkers(res); !slices.Equal(got, []string{run.marker}) {
							fail("%s read %d: %v", run.id, i, got)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := tenants * workers * calls
	t.Logf("%d tenants × %d goroutines × %d calls = %d calls in %v (%.0f calls/s): %d writes, %d reads, %d lists",
		tenants, workers, calls, total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), writes.Load(), reads.Load(), lists.Load())
	require.Zero(t, failures.Load(), "failures (first ones): %s", strings.Join(first, "\n"))
	require.EqualValues(t, total, writes.Load()+reads.Load()+lists.Load())

	// Each tenant's physical graph holds exactly its own writes.
	perTenant := int64(workers * ((calls + 1) / 2))
	var keys []string
	for _, run := range runs {
		keys = append(keys, s.key(run.id, "shared"))
		res, err := s.check.ROQuery(context.Background(), s.key(run.id, "shared"),
			"MATCH (n:Marker) RETURN n.tenant, count(n)", nil)
		require.NoError(t, err)
		require.Equal(t, [][]any{{run.marker, perTenant}}, res.Rows, run.id)
	}
	require.ElementsMatch(t, keys, s.rawGraphs(t), "one physical graph per tenant")
}

// structuredGraphs returns the graphs of a falkordb_list_graphs result.
func structuredGraphs(res *mcp.CallToolResult) []string {
	m, _ := res.StructuredContent.(map[string]any)
	list, _ := m["graphs"].([]any)
	out := []string{}
	for _, g := range list {
		s, _ := g.(string)
		out = append(out, s)
	}
	return out
}

// readMarkers returns the single-column rows of a query result, sorted.
func readMarkers(res *mcp.CallToolResult) []string {
	m, _ := res.StructuredContent.(map[string]any)
	rs, _ := m["rows"].([]any)
	out := []string{}
	for _, r := range rs {
		row, _ := r.([]any)
		for _, v := range row {
			s, _ := v.(string)
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
