package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/graphname"
)

// rpcCode returns the JSON-RPC code of a client-side error.
func rpcCode(t *testing.T, err error) int64 {
	t.Helper()
	var we *jsonrpc.Error
	require.ErrorAs(t, err, &we)
	return we.Code
}

func TestIdentityInMemory(t *testing.T) {
	tests := []struct {
		name string
		id   *Identity
		msg  string
	}{
		{"no identity", nil, "no verified bearer token"},
		{"no tenant", ident(""), "names no tenant"},
		{"capitals", ident("Acme", ScopeRead), "tenant is not valid"},
		{"separator", ident("ac_me", ScopeRead), "tenant is not valid"},
		{"dot", ident("ac.me", ScopeRead), "tenant is not valid"},
		{"dash at edge", ident("-acme", ScopeRead), "tenant is not valid"},
		{"space", ident("ac me", ScopeRead), "tenant is not valid"},
		{"NUL", ident("ac\x00me", ScopeRead), "tenant is not valid"},
		{"look-alike", ident("аcme", ScopeRead), "tenant is not valid"}, // Cyrillic а
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			cs := e.connect(tt.id)
			_, err := callTool(t, cs, "whoami", map[string]any{})
			require.Error(t, err)
			require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
			require.ErrorContains(t, err, tt.msg)
			_, err = cs.ListTools(context.Background(), nil)
			require.Error(t, err)
			require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
			require.Zero(t, e.rec.count(), "nothing may reach a tool")
		})
	}
}

func TestIdentityDefaultInMemoryHasNone(t *testing.T) {
	// With the default Identify, in-memory transports carry no token: refused.
	e := &env{t: t, rec: &recorder{}}
	e.srv = mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	testTools(e.srv, e.rec, nil, nil)
	mw, err := New(Config{Tools: allTools()})
	require.NoError(t, err)
	e.srv.AddReceivingMiddleware(mw)
	cs := e.connect(acmeRW) // the context value is ignored by DefaultIdentify
	_, err = callTool(t, cs, "whoami", map[string]any{})
	require.Error(t, err)
	require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
	require.Zero(t, e.rec.count())
	require.NoError(t, cs.Ping(context.Background(), nil), "ping passes without identity")
}

func TestIdentityHTTP(t *testing.T) {
	tests := []struct {
		token string
		ok    bool
		msg   string
	}{
		{"acme-rw", true, ""},
		{"no-tenant", false, "names no tenant"},
		{"caps", false, "tenant is not valid"},
		{"separator", false, "tenant is not valid"},
		{"dash-edge", false, "tenant is not valid"},
		{"not-string", false, "names no tenant"},
	}
	e := newEnv(t, Config{Identify: DefaultIdentify})
	ts := e.streamable(false)
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			before := e.rec.count()
			cs, err := e.connectHTTP(ts.URL, tt.token)
			require.NoError(t, err)
			res, err := callTool(t, cs, "whoami", map[string]any{})
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, "acme/alice", text(res))
				require.Equal(t, before+1, e.rec.count())
				return
			}
			require.Error(t, err)
			require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
			require.ErrorContains(t, err, tt.msg)
			require.Equal(t, before, e.rec.count(), "nothing may reach a tool")
		})
	}
	t.Run("no token info", func(t *testing.T) {
		// A Streamable HTTP server without RequireBearerToken: the request
		// has per-request information but no token.
		ts := e.streamable(true)
		before := e.rec.count()
		cs, err := e.connectHTTP(ts.URL, "acme-rw")
		require.NoError(t, err)
		_, err = callTool(t, cs, "whoami", map[string]any{})
		require.Error(t, err)
		require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
		require.Equal(t, before, e.rec.count())
	})
	t.Run("no token", func(t *testing.T) {
		_, err := e.connectHTTP(ts.URL, "")
		require.Error(t, err, "RequireBearerToken answers 401")
	})
}

func TestGraphNames(t *testing.T) {
	e := newEnv(t, Config{})
	cs := e.connect(acmeRW)
	bad := []struct {
		name, graph string
	}{
		{"empty", ""},
		{"separator at start", "_users"},
		{"separator at end", "users_"},
		{"dot at start", ".users"},
		{"dot at end", "users."},
		{"dash at start", "-users"},
		{"dash at end", "users-"},
		{"leading space", " users"},
		{"trailing space", "users "},
		{"inner space", "my users"},
		{"tab", "us\ters"},
		{"newline", "us\ners"},
		{"NUL", "us\x00ers"},
		{"Cyrillic e", "usеrs"},
		{"fullwidth", "ｕsers"},
		{"zero-width space", "us\u200bers"},
		{"200 chars", strings.Repeat("a", 200)},
		{"129 chars", strings.Repeat("a", 129)},
		{"slash", "a/b"},
		{"glob", "users*"},
		{"hash tag", "{users}"},
		{"colon", "a:b"},
		{"another tenant's key", "bob_users"[:0] + "bob:users"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := e.rec.count()
			res, err := callTool(t, cs, "falkordb_query", map[string]any{"graphName": tt.graph, "query": "RETURN 1"})
			require.NoError(t, err)
			require.True(t, res.IsError)
			msg := text(res)
			require.Contains(t, msg, "invalid graph name")
			require.Contains(t, msg, "graph names are", "the message says which names are allowed")
			require.NotContains(t, msg, "acme_", "the physical name never appears")
			require.Equal(t, before, e.rec.count(), "nothing may reach the tool")
		})
	}
	good := []string{"users", "Users", "a_b", "a.b", "a-b", "a__b", "x1", strings.Repeat("g", 128)}
	for _, g := range good {
		t.Run("valid "+g[:min(len(g), 10)], func(t *testing.T) {
			res, err := callTool(t, cs, "falkordb_query", map[string]any{"graphName": g, "query": "RETURN 1"})
			require.NoError(t, err)
			require.False(t, res.IsError, text(res))
			require.Equal(t, "acme_"+g, e.rec.last().args["graphName"], "the tool gets the physical key")
			require.Equal(t, "falkordb_query ran on "+g, text(res), "the result names the logical graph")
			require.NotContains(t, structured(t, res), "acme_")
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	e := newEnv(t, Config{})
	cs := e.connect(acmeRW)
	tests := []struct {
		name    string
		args    string
		rpc     bool // JSON-RPC error rather than tool error
		message string
	}{
		{"array", `[]`, true, "must be a JSON object"},
		{"string", `"acme_users"`, true, "must be a JSON object"},
		{"number graph", `{"graphName": 5}`, true, "must be a string"},
		{"null graph", `{"graphName": null}`, true, "must be a string"},
		{"object graph", `{"graphName": {"a": "b"}}`, true, "must be a string"},
		{"bool graph", `{"graphName": true}`, true, "must be a string"},
		{"array of numbers", `{"graphName": [1]}`, true, "must be a string"},
		{"duplicate", `{"graphName": "users", "graphName": "bob_users"}`, true, "more than once"},
		{"escaped duplicate", `{"graphName": "users", "graph\u004eame": "x"}`, true, "more than once"},
		{"other case", `{"GraphName": "x", "query": "RETURN 1"}`, true, "spelled exactly"},
		{"upper case", `{"GRAPHNAME": "x", "query": "RETURN 1"}`, true, "spelled exactly"},
		{"kelvin sign fold", `{"graphName": "users", "graphNaMe": "x"}`, true, "spelled exactly"},
		{"escaped other case", `{"graph\u006Eame": "x"}`, true, "spelled exactly"},
		{"array with bad name", `{"graphName": ["users", "bob users"]}`, false, "invalid graph name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.rec.count()
			res, err := callTool(t, cs, "falkordb_query", json.RawMessage(tt.args))
			if tt.rpc {
				require.Error(t, err)
				require.Equal(t, int64(jsonrpc.CodeInvalidParams), rpcCode(t, err))
				require.ErrorContains(t, err, tt.message)
			} else {
				require.NoError(t, err)
				require.True(t, res.IsError)
				require.Contains(t, text(res), tt.message)
			}
			require.Equal(t, before, e.rec.count(), "nothing may reach the tool")
		})
	}
	t.Run("array of names", func(t *testing.T) {
		res, err := callTool(t, cs, "falkordb_query", json.RawMessage(`{"graphName": ["users", "orders"], "query": "RETURN 1"}`))
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		require.Equal(t, []any{"acme_users", "acme_orders"}, e.rec.last().args["graphName"])
	})
	t.Run("null arguments", func(t *testing.T) {
		// A Go client passing a typed nil map sends "arguments": null.
		before := e.rec.count()
		res, err := callTool(t, cs, "falkordb_list_graphs", json.RawMessage(`null`))
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		require.Equal(t, before+1, e.rec.count())
	})
	t.Run("no graph argument", func(t *testing.T) {
		res, err := callTool(t, cs, "falkordb_query", map[string]any{"query": "RETURN 1"})
		require.NoError(t, err)
		require.False(t, res.IsError)
		require.NotContains(t, e.rec.last().args, "graphName")
	})
}

func TestUserToolEchoIsCleaned(t *testing.T) {
	// A tool written with the typed API echoes its graph argument: the
	// middleware maps it and strips the physical name from the answer.
	e := newEnv(t, Config{})
	cs := e.connect(acmeRW)
	res, err := callTool(t, cs, "echo_graph", map[string]any{"graphName": "users"})
	require.NoError(t, err)
	require.False(t, res.IsError, text(res))
	require.Equal(t, "physical graph is users", text(res))
	require.Equal(t, "acme_users", e.rec.last().args["graphName"])

	// The case-insensitive decoder of a typed tool never sees an unmapped name.
	before := e.rec.count()
	_, err = callTool(t, cs, "echo_graph", map[string]any{"GRAPHNAME": "bob_users"})
	require.Error(t, err)
	require.Equal(t, before, e.rec.count())
}

func TestFromContextInTool(t *testing.T) {
	e := newEnv(t, Config{})
	res, err := callTool(t, e.connect(bobRW), "whoami", map[string]any{})
	require.NoError(t, err)
	require.Equal(t, "bob/bob-user", text(res))
	_, ok := FromContext(context.Background())
	require.False(t, ok)
}

func TestReadOnlyRouting(t *testing.T) {
	tests := []struct {
		name      string
		id        *Identity
		noRouting bool
		tool      string
		ran       string // "" when refused
	}{
		{"writer runs query", acmeRW, false, "falkordb_query", "falkordb_query"},
		{"reader is routed", acmeRO, false, "falkordb_query", "falkordb_ro_query"},
		{"reader refused without routing", acmeRO, true, "falkordb_query", ""},
		{"reader runs ro query", acmeRO, true, "falkordb_ro_query", "falkordb_ro_query"},
		{"official: reader is routed", acmeRO, false, "query_graph", "query_graph_readonly"},
		{"official: writer runs query_graph", acmeRW, false, "query_graph", "query_graph"},
		{"no scopes: refused", ident("acme"), false, "falkordb_query", ""},
		{"write without read: refused when routed tool needs read", ident("acme", ScopeWrite), false, "falkordb_ro_query", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{NoReadOnlyRouting: tt.noRouting})
			res, err := callTool(t, e.connect(tt.id), tt.tool, map[string]any{"graphName": "users", "query": "CREATE (n)"})
			require.NoError(t, err)
			if tt.ran == "" {
				require.True(t, res.IsError)
				require.Contains(t, text(res), "permission denied")
				require.Zero(t, e.rec.count())
				return
			}
			require.False(t, res.IsError, text(res))
			require.Equal(t, tt.ran, e.rec.last().tool)
			require.Equal(t, "acme_users", e.rec.last().args["graphName"])
		})
	}
}

func TestDeleteNeedsWriteAndAdmin(t *testing.T) {
	tests := []struct {
		id *Identity
		ok bool
	}{
		{acmeRW, false},
		{ident("acme", ScopeAdmin), false},
		{ident("acme", ScopeRead, ScopeAdmin), false},
		{acmeAdmin, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.id.Scopes, "+"), func(t *testing.T) {
			e := newEnv(t, Config{})
			cs := e.connect(tt.id)
			for _, tool := range []string{"falkordb_delete_graph", "delete_graph"} {
				res, err := callTool(t, cs, tool, map[string]any{"graphName": "users", "confirm": true})
				require.NoError(t, err)
				require.Equal(t, !tt.ok, res.IsError, text(res))
				if !tt.ok {
					require.Contains(t, text(res), "admin")
				}
			}
			if tt.ok {
				require.Equal(t, 2, e.rec.count())
			} else {
				require.Zero(t, e.rec.count())
			}
		})
	}
}

func TestUnknownTool(t *testing.T) {
	e := newEnv(t, Config{})
	cs := e.connect(acmeAdmin)
	for _, tool := range []string{"list_keys", "no_such_tool"} {
		_, err := callTool(t, cs, tool, map[string]any{})
		require.Error(t, err)
		require.Equal(t, int64(jsonrpc.CodeInvalidParams), rpcCode(t, err))
		require.ErrorContains(t, err, "unknown tool")
	}
	require.Zero(t, e.rec.count())

	t.Run("unlisted allowed", func(t *testing.T) {
		e := newEnv(t, Config{UnlistedTools: &ToolPolicy{Scopes: []string{ScopeAdmin}}})
		res, err := callTool(t, e.connect(acmeAdmin), "list_keys", map[string]any{"graphName": "users"})
		require.NoError(t, err)
		require.False(t, res.IsError)
		require.Equal(t, "acme_users", e.rec.last().args["graphName"])
		res, err = callTool(t, e.connect(acmeRW), "list_keys", map[string]any{})
		require.NoError(t, err)
		require.True(t, res.IsError, "the unlisted policy's scopes apply")
		require.Equal(t, 1, e.rec.count())
	})
}

func TestToolsListFiltersAndCopies(t *testing.T) {
	e := newEnv(t, Config{})
	before, err := json.Marshal(e.tools)
	require.NoError(t, err)
	// A middleware outside tenancy that scribbles on what it returns: if
	// tenancy passed the server's own tool objects, this would change them.
	e.srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if lr, ok := res.(*mcp.ListToolsResult); ok {
				for _, tool := range lr.Tools {
					tool.Description = "scribbled"
					tool.Name += "!"
				}
			}
			return res, err
		}
	})
	names := func(id *Identity) []string {
		res, err := e.connect(id).ListTools(context.Background(), nil)
		require.NoError(t, err)
		var out []string
		for _, tool := range res.Tools {
			out = append(out, strings.TrimSuffix(tool.Name, "!"))
		}
		return out
	}
	ro := names(acmeRO)
	require.ElementsMatch(t, []string{
		"falkordb_ro_query", "falkordb_explain", "falkordb_graph_schema", "falkordb_list_graphs",
		"query_graph_readonly", "get_graph_schema", "list_graphs",
		"fail", "raw", "block", "echo_graph", "whoami",
	}, ro)
	admin := names(acmeAdmin)
	require.Contains(t, admin, "falkordb_delete_graph")
	require.Contains(t, admin, "falkordb_query")
	require.NotContains(t, admin, "list_keys", "tools outside the policy are hidden")
	require.ElementsMatch(t, []string{"whoami"}, names(ident("acme")))

	after, err := json.Marshal(e.tools)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "the server's tool objects are unchanged")
}

func TestListGraphsFiltered(t *testing.T) {
	e := newEnv(t, Config{})
	for _, id := range []*Identity{acmeRO, bobRW} {
		cs := e.connect(id)
		// "acme__x" is acme's graph "_x", which StrictGraphNames refuses: hidden.
		want := map[string][]string{"acme": {"users", "orders"}, "bob": {"users"}}[id.Tenant]

		res, err := callTool(t, cs, "falkordb_list_graphs", map[string]any{})
		require.NoError(t, err)
		require.False(t, res.IsError)
		var sc struct {
			Graphs []string `json:"graphs"`
		}
		require.NoError(t, json.Unmarshal([]byte(structured(t, res)), &sc))
		require.Equal(t, want, sc.Graphs)
		require.JSONEq(t, structured(t, res), text(res), "the text holds the same list")
		require.NotContains(t, text(res)+structured(t, res), "10.0.0.7", "other fields are dropped")

		res, err = callTool(t, cs, "list_graphs", map[string]any{})
		require.NoError(t, err)
		require.Equal(t, strings.Join(want, "\n"), text(res))
	}
}

func TestResultCleaning(t *testing.T) {
	e := newEnv(t, Config{})
	cs := e.connect(acmeRW)
	tests := []struct {
		name, text, structured string
		wantText, wantSC       string
	}{
		{"text", "graph $GRAPH has 3 nodes; see $GRAPH.", "", "graph users has 3 nodes; see users.", ""},
		{"structured", "ok", `{"graph":"$GRAPH","list":["acme_orders","x acme_a.b y"],"acme_k":1}`, "ok", `{"graph":"users","list":["orders","x a.b y"],"k":1}`},
		{"escaped structured", "ok", `{"g":"acme\u005fusers","h":"\u0061cme_orders"}`, "ok", `{"g":"users","h":"orders"}`},
		{"other tenant left alone in data", "bob_users", "", "bob_users", ""},
		{"not at a boundary", "megaacme_users", "", "megaacme_users", ""},
		{"numbers untouched", "ok", `{"n":1.5,"acme":2}`, "ok", `{"n":1.5,"acme":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := callTool(t, cs, "raw", map[string]any{"graphName": "users", "text": tt.text, "structured": tt.structured})
			require.NoError(t, err)
			require.False(t, res.IsError, text(res))
			require.Equal(t, tt.wantText, text(res))
			if tt.wantSC != "" {
				require.JSONEq(t, tt.wantSC, structured(t, res))
			}
		})
	}
}

func TestErrorCleaning(t *testing.T) {
	var events []*Event
	e := newEnv(t, Config{
		Auditor:   AuditFunc(func(_ context.Context, ev *Event) { cp := *ev; events = append(events, &cp) }),
		RequestID: func() string { return "rid-1234" },
	})
	cs := e.connect(acmeRW)
	tests := []struct {
		name    string
		text    string
		query   string
		want    string // exact cleaned text; "" means generic
		generic bool
	}{
		{"own key", "graph $GRAPH not found", "", "graph users not found", false},
		{"bare prefix", "key acme_ is empty", "", "key  is empty", false},
		{"FalkorDB error", "ERR Invalid graph operation on empty key", "", "ERR Invalid graph operation on empty key", false},
		{"query identifiers are the caller's own", "Unknown label my_label in MATCH", "MATCH (n:my_label) RETURN n", "Unknown label my_label in MATCH", false},
		{"IPv4 address", "dial tcp 10.0.0.5:6379: connection refused", "", "", true},
		{"host and port", "cannot reach falkordb:6379", "", "", true},
		{"localhost", "connect to localhost:6399 failed", "", "", true},
		{"IPv6", "connect [fe80::1]:6379 failed", "", "", true},
		{"Go stack trace", "panic: boom\n\ngoroutine 12 [running]:\nmain.main()", "", "", true},
		{"source position", "failed at client.go:123", "", "", true},
		{"another tenant's key", "key $OTHER is locked", "", "", true},
		{"another tenant's key after own", "graph $GRAPH was copied to $OTHER", "", "", true},
		{"redis URL", "redis://:secret@cache:6379", "", "", true},
		{"unix socket", "dial unix /tmp/x/redis.sock: no such file", "", "", true},
		{"python traceback", "Traceback (most recent call last):\n  File \"x.py\", line 3", "", "", true},
	}
	for _, tt := range tests {
		for _, goErr := range []bool{false, true} {
			name := tt.name
			if goErr {
				name += "/go error"
			}
			t.Run(name, func(t *testing.T) {
				events = nil
				args := map[string]any{"graphName": "users", "text": tt.text, "goerr": goErr}
				if tt.query != "" {
					args["query"] = tt.query
				}
				res, err := callTool(t, cs, "fail", args)
				var got string
				if goErr {
					require.Error(t, err)
					var we *jsonrpc.Error
					require.ErrorAs(t, err, &we)
					got = we.Message
				} else {
					require.NoError(t, err)
					require.True(t, res.IsError)
					got = text(res)
				}
				require.NotContains(t, got, "acme_")
				if tt.generic {
					require.Equal(t, "internal error; request id rid-1234", got)
					require.Len(t, events, 1)
					require.Equal(t, "rid-1234", events[0].RequestID)
					require.Equal(t, "internal", events[0].Class)
					require.ErrorIs(t, events[0].Err, ErrInternal)
				} else {
					require.Equal(t, tt.want, got)
				}
			})
		}
	}
}

func TestResourcesAndPromptsRefused(t *testing.T) {
	build := func(t *testing.T, allow []string) *env {
		e := newEnv(t, Config{AllowMethods: allow})
		e.srv.AddResource(&mcp.Resource{URI: "graph://acme_users", Name: "acme_users"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			e.rec.add(ctx, "resource", nil)
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "data of acme_users"}}}, nil
		})
		e.srv.AddPrompt(&mcp.Prompt{Name: "p"}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			e.rec.add(ctx, "prompt", nil)
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "use acme_users"}}}}, nil
		})
		return e
	}
	t.Run("refused", func(t *testing.T) {
		e := build(t, nil)
		cs := e.connect(acmeAdmin)
		ctx := context.Background()
		_, err := cs.ListResources(ctx, nil)
		requireMethodNotFound(t, err)
		_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "graph://acme_users"})
		requireMethodNotFound(t, err)
		_, err = cs.ListResourceTemplates(ctx, nil)
		requireMethodNotFound(t, err)
		_, err = cs.ListPrompts(ctx, nil)
		requireMethodNotFound(t, err)
		_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "p"})
		requireMethodNotFound(t, err)
		require.Zero(t, e.rec.count())
		require.NoError(t, cs.Ping(ctx, nil))
		caps := cs.InitializeResult().Capabilities
		require.NotNil(t, caps.Tools)
		require.Nil(t, caps.Resources, "refused methods are not announced")
		require.Nil(t, caps.Prompts)
	})
	t.Run("refused without identity too", func(t *testing.T) {
		e := build(t, []string{"resources/list"})
		_, err := e.connect(nil).ListResources(context.Background(), nil)
		require.Error(t, err)
		require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
	})
	t.Run("allowed and cleaned", func(t *testing.T) {
		e := build(t, []string{"resources/list", "resources/read", "prompts/get"})
		cs := e.connect(acmeAdmin)
		ctx := context.Background()
		lr, err := cs.ListResources(ctx, nil)
		require.NoError(t, err)
		require.Len(t, lr.Resources, 1)
		require.Equal(t, "users", lr.Resources[0].Name)
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "graph://acme_users"})
		require.NoError(t, err)
		require.Equal(t, "data of users", rr.Contents[0].Text)
		pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "p"})
		require.NoError(t, err)
		require.Equal(t, "use users", pr.Messages[0].Content.(*mcp.TextContent).Text)
		_, err = cs.ListPrompts(ctx, nil)
		requireMethodNotFound(t, err)
		caps := cs.InitializeResult().Capabilities
		require.NotNil(t, caps.Resources)
		require.NotNil(t, caps.Prompts)
	})
	t.Run("allowed, but not to a tenant without a plan", func(t *testing.T) {
		e := newEnv(t, Config{AllowMethods: []string{"resources/list"},
			Plans: &Policy{Plans: map[string]*Plan{"p": {Name: "p"}}, Tenants: map[string]string{"bob": "p"}}})
		e.srv.AddResource(&mcp.Resource{URI: "graph://x", Name: "x"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return nil, errors.New("unreachable")
		})
		_, err := e.connect(acmeAdmin).ListResources(context.Background(), nil)
		require.Error(t, err)
		require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
		require.Contains(t, err.Error(), "no plan of this server admits the tenant")
		lr, err := e.connect(ident("bob", ScopeRead)).ListResources(context.Background(), nil)
		require.NoError(t, err)
		require.Len(t, lr.Resources, 1)
	})
}

func TestOpaqueSubjects(t *testing.T) {
	r, err := graphname.New(graphname.Options{Scheme: graphname.OpaqueSubject})
	require.NoError(t, err)
	e := newEnv(t, Config{Resolver: r})
	sub := "auth0|5f7c8ec7c33c6c004bbafe82"
	phys, err := r.Resolve(sub, "users")
	require.NoError(t, err)
	cs := e.connect(ident(sub, ScopeRead, ScopeWrite))
	res, err := callTool(t, cs, "raw", map[string]any{"graphName": "users", "text": "graph $GRAPH"})
	require.NoError(t, err)
	require.Equal(t, phys, e.rec.last().args["graphName"])
	require.Equal(t, "graph users", text(res))
}

func TestConfigErrors(t *testing.T) {
	tests := []Config{
		{GraphArguments: []string{""}},
		{GraphArguments: []string{"g", "G"}},
		{Tools: map[string]ToolPolicy{"a": {ReadOnlyVariant: "missing"}}},
		{Tools: map[string]ToolPolicy{"": {}}},
		{AllowMethods: []string{"tools/call"}},
		{UnlistedTools: &ToolPolicy{ReadOnlyVariant: "x"}},
	}
	for i, cfg := range tests {
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, "config %d", i)
	}
	_, err := New(Config{})
	require.NoError(t, err)
}

func TestIdentifyErrorsAreRefusals(t *testing.T) {
	e := newEnv(t, Config{Identify: func(context.Context, mcp.Request) (*Identity, error) {
		return nil, errors.New("verifier exploded at 10.1.2.3:443")
	}})
	_, err := callTool(t, e.connect(acmeRW), "whoami", map[string]any{})
	require.Error(t, err)
	require.Equal(t, int64(CodeUnauthenticated), rpcCode(t, err))
	require.NotContains(t, err.Error(), "10.1.2.3", "identify errors are not shown")
	require.Zero(t, e.rec.count())
}

func requireMethodNotFound(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, int64(jsonrpc.CodeMethodNotFound), rpcCode(t, err))
}
