package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// recorder records the calls that reached the server's tools.
type recorder struct {
	mu    sync.Mutex
	calls []record
}

type record struct {
	tool string
	args map[string]any
	id   *Identity
}

func (r *recorder) add(ctx context.Context, tool string, raw json.RawMessage) map[string]any {
	var args map[string]any
	_ = json.Unmarshal(raw, &args)
	id, _ := FromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{tool: tool, args: args, id: id})
	return args
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) last() record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return record{}
	}
	return r.calls[len(r.calls)-1]
}

// allKeys is what the fake list tools return: keys of several tenants.
var allKeys = []string{"acme_users", "bob_users", "acme_orders", "legacy", "acme__x", "acme-corp_users", "acme_"}

type echoIn struct {
	GraphName string `json:"graphName"`
}

// testTools adds fake falkor tools, the official server's tools and user
// tools to s, recording calls in rec. It returns the server's own tool
// objects.
func testTools(s *mcp.Server, rec *recorder, block chan struct{}, started chan<- struct{}) []*mcp.Tool {
	obj := map[string]any{"type": "object"}
	var tools []*mcp.Tool
	add := func(name string, h mcp.ToolHandler) {
		t := &mcp.Tool{Name: name, Description: "tool " + name, InputSchema: obj}
		tools = append(tools, t)
		s.AddTool(t, h)
	}
	// Query-like tools: report the graph they got, as text and structured.
	for _, name := range []string{
		"falkordb_query", "falkordb_ro_query", "falkordb_explain", "falkordb_graph_schema", "falkordb_delete_graph",
		"query_graph", "query_graph_readonly", "delete_graph", "get_graph_schema", "list_keys",
	} {
		add(name, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := rec.add(ctx, name, req.Params.Arguments)
			g, _ := args["graphName"].(string)
			sc, _ := json.Marshal(map[string]any{"graph": g, "rows": [][]int{{1}, {2}, {3}}})
			return &mcp.CallToolResult{
				Content:           []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s ran on %s", name, g)}},
				StructuredContent: json.RawMessage(sc),
			}, nil
		})
	}
	add("falkordb_list_graphs", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rec.add(ctx, "falkordb_list_graphs", req.Params.Arguments)
		sc, _ := json.Marshal(map[string]any{"graphs": allKeys, "server": "10.0.0.7:6379"})
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: strings.Join(allKeys, ", ")}},
			StructuredContent: json.RawMessage(sc),
		}, nil
	})
	add("list_graphs", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rec.add(ctx, "list_graphs", req.Params.Arguments)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(allKeys, "\n")}}}, nil
	})
	// fail returns what its arguments ask for: a tool error with the text
	// "text", or a Go error with it when "goerr" is set.
	add("fail", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := rec.add(ctx, "fail", req.Params.Arguments)
		text, _ := args["text"].(string)
		g, _ := args["graphName"].(string)
		text = strings.ReplaceAll(text, "$GRAPH", g)
		text = strings.ReplaceAll(text, "$OTHER", "bob_users")
		if goErr, _ := args["goerr"].(bool); goErr {
			return nil, errors.New(text)
		}
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
	})
	// raw returns the structured content and text it is given, with $GRAPH
	// replaced by its graph argument.
	add("raw", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := rec.add(ctx, "raw", req.Params.Arguments)
		g, _ := args["graphName"].(string)
		text, _ := args["text"].(string)
		sc, _ := args["structured"].(string)
		res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.ReplaceAll(text, "$GRAPH", g)}}}
		if sc != "" {
			res.StructuredContent = json.RawMessage(strings.ReplaceAll(sc, "$GRAPH", g))
		}
		return res, nil
	})
	add("block", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rec.add(ctx, "block", req.Params.Arguments)
		if started != nil {
			started <- struct{}{}
		}
		if block != nil {
			select {
			case <-block:
			case <-ctx.Done():
			}
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
	})
	// A user tool written with the typed API: it echoes the graph it got.
	echo := &mcp.Tool{Name: "echo_graph", Description: "echo"}
	mcp.AddTool(s, echo, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		rec.add(ctx, "echo_graph", req.Params.Arguments)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "physical graph is " + in.GraphName}}}, nil, nil
	})
	add("whoami", func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rec.add(ctx, "whoami", req.Params.Arguments)
		id, ok := FromContext(ctx)
		if !ok {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no identity"}}}, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: id.Tenant + "/" + id.Subject}}}, nil
	})
	return tools
}

// userTools is a policy for the test's user tools.
func userTools() map[string]ToolPolicy {
	return map[string]ToolPolicy{
		"fail":       {Scopes: []string{ScopeRead}},
		"raw":        {Scopes: []string{ScopeRead}},
		"block":      {Scopes: []string{ScopeRead}},
		"echo_graph": {Scopes: []string{ScopeRead}},
		"whoami":     {},
	}
}

// allTools is the policy of the test servers.
func allTools() map[string]ToolPolicy {
	return MergeTools(FalkorTools(), OfficialFalkorTools(), userTools())
}

type ctxIdentityKey struct{}

// ctxIdentify is a test Identify: the identity stored in the session's
// context by connect.
func ctxIdentify(ctx context.Context, _ mcp.Request) (*Identity, error) {
	id, _ := ctx.Value(ctxIdentityKey{}).(*Identity)
	if id == nil {
		return nil, ErrNoIdentity
	}
	return id, nil
}

type env struct {
	t       *testing.T
	srv     *mcp.Server
	rec     *recorder
	tools   []*mcp.Tool
	block   chan struct{}
	started chan struct{}
}

// newEnv returns a server with the test tools behind the middleware of cfg.
// Unless cfg sets Identify, identities come from connect's context.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, rec: &recorder{}, block: make(chan struct{}), started: make(chan struct{}, 16)}
	e.srv = mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	e.tools = testTools(e.srv, e.rec, e.block, e.started)
	if cfg.Tools == nil {
		cfg.Tools = allTools()
	}
	if cfg.Identify == nil {
		cfg.Identify = ctxIdentify
	}
	mw, err := New(cfg)
	require.NoError(t, err)
	e.srv.AddReceivingMiddleware(mw)
	return e
}

// connect opens an in-memory session whose requests carry id (nil: none).
func (e *env) connect(id *Identity) *mcp.ClientSession {
	e.t.Helper()
	ctx := context.Background()
	if id != nil {
		ctx = context.WithValue(ctx, ctxIdentityKey{}, id)
	}
	ct, st := mcp.NewInMemoryTransports()
	ss, err := e.srv.Connect(ctx, st, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = ss.Close() })
	c := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), ct, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func ident(tenant string, scopes ...string) *Identity {
	return &Identity{Tenant: tenant, Subject: tenant + "-user", Scopes: scopes}
}

var (
	acmeRW    = ident("acme", ScopeRead, ScopeWrite)
	acmeRO    = ident("acme", ScopeRead)
	acmeAdmin = ident("acme", ScopeRead, ScopeWrite, ScopeAdmin)
	bobRW     = ident("bob", ScopeRead, ScopeWrite)
)

// call calls a tool with arguments args (any JSON-marshalable value).
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, error) {
	t.Helper()
	return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
}

// text returns the concatenated text contents of res.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structured returns the structured content of a client-side result as JSON.
func structured(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if res.StructuredContent == nil {
		return ""
	}
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	return string(b)
}

// Tokens of the HTTP tests.
var testTokens = map[string]*auth.TokenInfo{
	"acme-rw":    tokenInfo("acme", "alice", ScopeRead, ScopeWrite),
	"acme-ro":    tokenInfo("acme", "carol", ScopeRead),
	"acme-rw2":   tokenInfo("acme", "dave", ScopeRead, ScopeWrite),
	"bob-rw":     tokenInfo("bob", "bert", ScopeRead, ScopeWrite),
	"no-tenant":  tokenInfo("", "eve", ScopeRead, ScopeWrite),
	"caps":       tokenInfo("Acme", "alice", ScopeRead, ScopeWrite),
	"separator":  tokenInfo("ac_me", "alice", ScopeRead, ScopeWrite),
	"dash-edge":  tokenInfo("acme-", "alice", ScopeRead, ScopeWrite),
	"not-string": {Scopes: []string{ScopeRead}, Expiration: time.Now().Add(time.Hour), UserID: "x", Extra: map[string]any{ExtraTenant: 42}},
}

func tokenInfo(tenant, subject string, scopes ...string) *auth.TokenInfo {
	extra := map[string]any{ExtraSubject: subject, ExtraIssuer: "https://issuer.test"}
	if tenant != "" {
		extra[ExtraTenant] = tenant
	}
	return &auth.TokenInfo{
		Scopes:     scopes,
		Expiration: time.Now().Add(time.Hour),
		UserID:     "https://issuer.test " + subject,
		Extra:      extra,
	}
}

func verify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	ti, ok := testTokens[token]
	if !ok {
		return nil, fmt.Errorf("%w: unknown test token", auth.ErrInvalidToken)
	}
	cp := *ti
	cp.Scopes = slices.Clone(ti.Scopes)
	return &cp, nil
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

func httpClient(token string) *http.Client {
	return &http.Client{Transport: bearer{token: token, next: http.DefaultTransport}}
}

// streamable serves e's server over Streamable HTTP behind
// auth.RequireBearerToken (or without it, when noAuth is set).
func (e *env) streamable(noAuth bool) *httptest.Server {
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return e.srv }, nil)
	if !noAuth {
		h = auth.RequireBearerToken(verify, nil)(h)
	}
	ts := httptest.NewServer(h)
	e.t.Cleanup(ts.Close)
	return ts
}

// connectHTTP opens a Streamable HTTP session to url with token.
func (e *env) connectHTTP(url, token string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: httpClient(token), MaxRetries: -1}, nil)
	if err == nil {
		e.t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func mcpParams(name string) *mcp.CallToolParams {
	return &mcp.CallToolParams{Name: name, Arguments: map[string]any{}}
}
