package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/graphname"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// The end-to-end stack of these tests, as a deployment builds it:
//
//	mcp client --HTTP, Authorization: Bearer <RS256 JWT>--> authn.RequireBearer (keys from a JWKS server)
//	  --> mcp.NewStreamableHTTPHandler (or NewSSEHandler + tenancy.GuardSSE)
//	  --> mcp.Server + tenancy middleware --> falkor tools --> falkor.Client --> FalkorDB
//
// Every GRAPH.* command the stack's falkor.Client sends is counted by a
// go-redis hook, so that a test can assert that a refused request never
// reached the database.

const (
	// e2eAudience is the resource the tokens are issued for.
	e2eAudience = "https://mcp.tenantgraph.test/mcp"
	// e2eTenantClaim is the claim that holds the tenant (the subject is the user).
	e2eTenantClaim = "org"
	// e2eRequestID is the request id of every call, so that the random hex of
	// generated ids can never look like a port number in leak checks.
	e2eRequestID = "e2e-request-id"
)

// idp is an identity provider: an RS256 key published by a JWKS server.
type idp struct {
	key  *authntest.Key
	jwks *authntest.JWKSServer
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	key := authntest.CachedRSA(t, 2048, 0)
	return &idp{key: key, jwks: authntest.NewJWKSServer(t, key)}
}

// verifier returns an authn.Verifier that trusts p, reads the tenant from
// the "org" claim and validates it with graphname.Default().
func (p *idp) verifier(t testing.TB, cache bool) *authn.Verifier {
	t.Helper()
	cfg := authn.Config{Issuers: []authn.Issuer{{
		Issuer:       p.jwks.URL,
		Audiences:    []string{e2eAudience},
		JWKSURL:      p.jwks.JWKSURL(),
		Algorithms:   []string{"RS256"},
		RequiredType: "at+jwt",
		TenantClaim:  e2eTenantClaim,
	}}}
	if cache {
		cfg.Cache = &authn.CacheConfig{}
	}
	v, err := authn.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, v.WaitReady(ctx))
	return v
}

// claims returns the claims of an access token of user sub acting for
// tenant (no tenant claim when tenant is empty) with scopes.
func (p *idp) claims(tenant, sub string, scopes ...string) map[string]any {
	c := authntest.Claims(p.jwks.URL, e2eAudience, sub, time.Now(), time.Hour)
	if tenant != "" {
		c[e2eTenantClaim] = tenant
	}
	c["scope"] = strings.Join(scopes, " ")
	return c
}

// token mints a real signed access token.
func (p *idp) token(tenant, sub string, scopes ...string) string {
	return p.key.Mint(p.claims(tenant, sub, scopes...))
}

// graphCounter counts the GRAPH.* commands sent through a go-redis client.
type graphCounter struct {
	mu     sync.Mutex
	counts map[string]int // lower-case command name -> count
}

func (g *graphCounter) add(cmds ...redis.Cmder) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cmds {
		if name := strings.ToLower(c.Name()); strings.HasPrefix(name, "graph.") {
			g.counts[name]++
		}
	}
}

func (g *graphCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *graphCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		g.add(cmd)
		return next(ctx, cmd)
	}
}

func (g *graphCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		g.add(cmds...)
		return next(ctx, cmds)
	}
}

// snapshot returns a copy of the counts.
func (g *graphCounter) snapshot() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.counts))
	for k, v := range g.counts {
		out[k] = v
	}
	return out
}

// auditLog collects the middleware's audit events.
type auditLog struct {
	mu     sync.Mutex
	events []tenancy.Event
}

func (a *auditLog) Audit(_ context.Context, e *tenancy.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, *e)
}

func (a *auditLog) last(t *testing.T) tenancy.Event {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	require.NotEmpty(t, a.events, "no audit event")
	return a.events[len(a.events)-1]
}

// stackOptions choose the variant of the stack.
type stackOptions struct {
	// Stateless serves Streamable HTTP without sessions.
	Stateless bool
	// SSE serves the legacy SSE transport behind tenancy.GuardSSE.
	SSE bool
	// NoAuth leaves out the bearer layer: requests carry no token info.
	NoAuth bool
	// Verify replaces authn by a custom token verifier (behind
	// auth.RequireBearerToken), to hand the middleware token infos that
	// authn would never produce.
	Verify auth.TokenVerifier
	// Cache enables authn's verified-token cache.
	Cache bool
	// Limits and Limiter configure the middleware's rate limits; Limiter
	// gets the stack's client and the test's namespace.
	Limits  func(*tenancy.Identity) tenancy.Limit
	Limiter func(c *falkor.Client, namespace string) tenancy.Limiter
	// Tools adds tools of the test's own to the server (not in the policy),
	// working through the stack's (counted) client.
	Tools func(s *mcp.Server, c *falkor.Client)
	// Plans and ResultCache configure the middleware's plans (with the
	// stack's client as the GraphStore) and result cache.
	Plans       tenancy.PlanSource
	ResultCache *tenancy.ResultCache
}

// stack is a running end-to-end stack in front of a real FalkorDB.
type stack struct {
	t      *testing.T
	db     *falkortest.DB
	client *falkor.Client // the stack's client (counted)
	check  *falkor.Client // the test's own client for assertions (not counted)
	raw    *redis.Client  // admin access to the server
	graphs *graphCounter
	audit  *auditLog
	server *mcp.Server
	idp    *idp
	url    string
	// transport is the HTTP transport of the stack's clients, with room for
	// many idle connections so that concurrent tests reuse them.
	transport *http.Transport
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	db := falkortest.Start(t)
	ctx := context.Background()
	open := func() *falkor.Client {
		c, err := falkor.Open(ctx, db.URL, falkor.Options{MaxTimeout: 30 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	s := &stack{
		t:      t,
		db:     db,
		client: open(),
		check:  open(),
		raw:    db.Redis(t),
		graphs: &graphCounter{counts: map[string]int{}},
		audit:  &auditLog{},
		idp:    newIDP(t),
	}
	s.client.Redis().AddHook(s.graphs)

	server := mcp.NewServer(&mcp.Implementation{Name: "tenantgraph-e2e", Version: "v0"}, nil)
	falkor.AddTools(server, s.client, &falkor.ToolOptions{MaxRows: func(ctx context.Context) int {
		if pl := tenancy.PlanFromContext(ctx); pl != nil {
			return pl.MaxRows
		}
		return 0
	}})
	if o.Tools != nil {
		o.Tools(server, s.client)
	}
	s.server = server
	cfg := tenancy.Config{
		Resolver:  graphname.Default(),
		Tools:     tenancy.FalkorTools(),
		Auditor:   s.audit,
		Limits:    o.Limits,
		RequestID: func() string { return e2eRequestID },
		Plans:     o.Plans,
		Cache:     o.ResultCache,
	}
	if o.Plans != nil {
		cfg.Store = s.client
	}
	if o.Limiter != nil {
		cfg.Limiter = o.Limiter(s.client, db.Namespace())
	}
	mw, err := tenancy.New(cfg)
	require.NoError(t, err)
	server.AddReceivingMiddleware(mw)

	getServer := func(*http.Request) *mcp.Server { return server }
	var h http.Handler
	if o.SSE {
		h = tenancy.GuardSSE(mcp.NewSSEHandler(getServer, nil), nil)
	} else {
		h = mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Stateless: o.Stateless})
	}
	switch {
	case o.NoAuth:
	case o.Verify != nil:
		h = auth.RequireBearerToken(o.Verify, nil)(h)
	default:
		h = authn.RequireBearer(s.idp.verifier(t, o.Cache), nil)(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	s.url = ts.URL

	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.MaxIdleConns = 512
	s.transport.MaxIdleConnsPerHost = 512
	t.Cleanup(s.transport.CloseIdleConnections)
	return s
}

// tenant returns a tenant id unique to the test (in its falkortest
// namespace, so that a shared FALKORDB_URL server is fine and the test's
// keys are deleted when it ends).
func (s *stack) tenant(name string) string { return s.db.Namespace() + name }

// key is the physical key of a tenant's graph.
func (s *stack) key(tenant, graph string) string {
	k, err := graphname.Resolve(tenant, graph)
	if err != nil {
		panic(err) // the tests' own names are valid
	}
	return k
}

// bearerTransport adds "Authorization: Bearer <token>" to every request.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func (s *stack) httpClient(token string) *http.Client {
	if token == "" {
		return &http.Client{Transport: s.transport}
	}
	return &http.Client{Transport: bearerTransport{token: token, next: s.transport}}
}

// connect opens an MCP client session to the stack with token ("" for none).
func (s *stack) connect(t testing.TB, token string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "v0"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:             s.url,
		HTTPClient:           s.httpClient(token),
		MaxRetries:           -1,
		DisableStandaloneSSE: true,
	}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// session is connect that must succeed.
func (s *stack) session(t testing.TB, token string) *mcp.ClientSession {
	t.Helper()
	cs, err := s.connect(t, token)
	require.NoError(t, err)
	return cs
}

// call calls a tool; it fails the test on a transport or JSON-RPC error.
func call(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err)
	return res
}

// ok calls a tool that must succeed.
func ok(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res := call(t, cs, tool, args)
	require.False(t, res.IsError, "%s failed: %s", tool, textOf(res))
	return res
}

// textOf returns the text contents of res, joined by newlines.
func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// everything returns all a client sees of a result: text, structured
// content and meta, as one string.
func everything(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	b, err := json.Marshal(res)
	require.NoError(t, err)
	return textOf(res) + "\n" + string(b)
}

// rows decodes the rows of a falkor query result.
func rows(t testing.TB, res *mcp.CallToolResult) [][]any {
	t.Helper()
	var out falkor.Result
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	return out.Rows
}

// listGraphs returns what falkordb_list_graphs shows the session.
func listGraphs(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	res := ok(t, cs, falkor.ToolListGraphs, map[string]any{})
	var out struct {
		Graphs []string `json:"graphs"`
	}
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	var fromText struct {
		Graphs []string `json:"graphs"`
	}
	require.NoError(t, json.Unmarshal([]byte(textOf(res)), &fromText), "the text is the JSON of the list")
	require.ElementsMatch(t, out.Graphs, fromText.Graphs)
	return out.Graphs
}

// rpcError returns the JSON-RPC error of a client-side error.
func rpcError(t testing.TB, err error) *jsonrpc.Error {
	t.Helper()
	var we *jsonrpc.Error
	require.ErrorAs(t, err, &we)
	return we
}

// state is what a refused request must leave unchanged in FalkorDB.
type state struct {
	graphCmds map[string]int // GRAPH.* commands sent by the stack
	keys      []string       // the keys of the test's namespace
	graphs    []string       // GRAPH.LIST entries of the test's namespace
}

func (s *stack) state(t testing.TB) state {
	t.Helper()
	ctx := context.Background()
	ns := s.db.Namespace()
	var keys []string
	iter := s.raw.Scan(ctx, 0, ns+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	slices.Sort(keys)
	return state{graphCmds: s.graphs.snapshot(), keys: keys, graphs: s.rawGraphs(t)}
}

// rawGraphs is GRAPH.LIST on the server, restricted to the test's namespace.
func (s *stack) rawGraphs(t testing.TB) []string {
	t.Helper()
	all, err := s.raw.Do(context.Background(), "GRAPH.LIST").StringSlice()
	require.NoError(t, err)
	var mine []string
	for _, g := range all {
		if strings.HasPrefix(g, s.db.Namespace()) {
			mine = append(mine, g)
		}
	}
	slices.Sort(mine)
	return mine
}

// untouched runs f and asserts that the stack sent no GRAPH command and
// that the namespace's keys and graphs are the same afterwards.
func (s *stack) untouched(t testing.TB, f func()) {
	t.Helper()
	before := s.state(t)
	f()
	after := s.state(t)
	require.Equal(t, before.graphCmds, after.graphCmds, "no GRAPH command may reach FalkorDB")
	require.Equal(t, before.keys, after.keys, "the key space must be unchanged")
	require.Equal(t, before.graphs, after.graphs, "GRAPH.LIST must be unchanged")
}

// sent returns how many commands of each GRAPH.* name the stack sent
// since before.
func (s *stack) sent(before state) map[string]int {
	now := s.graphs.snapshot()
	d := map[string]int{}
	for k, v := range now {
		if n := v - before.graphCmds[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// count returns the number of nodes of label in a tenant's graph, read
// with the test's own client (0 when the graph does not exist).
func (s *stack) count(t testing.TB, tenant, graph, label string) int64 {
	t.Helper()
	res, err := s.check.ROQuery(context.Background(), s.key(tenant, graph), "MATCH (n:"+label+") RETURN count(n)", nil)
	if errors.Is(err, falkor.ErrGraphNotFound) {
		return 0
	}
	require.NoError(t, err)
	return res.Rows[0][0].(int64)
}

// noLeak asserts that a text shown to a tenant holds none of the internals.
func (s *stack) noLeak(t testing.TB, text string, tenants ...string) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.db.Addr)
	if err == nil {
		require.NotContains(t, text, host, "the FalkorDB host leaked")
		require.NotContains(t, text, port, "the FalkorDB port leaked")
	}
	require.NotContains(t, text, s.db.Addr)
	for _, tenant := range tenants {
		prefix, err := graphname.Prefix(tenant)
		require.NoError(t, err)
		require.NotContains(t, text, prefix, "a physical key prefix leaked")
	}
	for _, w := range []string{"goroutine ", ".go:", "panic", "redis://"} {
		require.NotContains(t, text, w)
	}
}

// openSSE opens an SSE session with token by a raw GET and returns the
// session's message endpoint and the stream.
func (s *stack) openSSE(token string) (string, <-chan tenancy.SSEEvent) {
	s.t.Helper()
	return tenancy.OpenSSE(s.t, s.httpClient(token), s.url)
}

// post POSTs one JSON-RPC message to path with token and returns the status.
func (s *stack) post(path, token, body string) int {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := s.httpClient(token).Do(req)
	require.NoError(s.t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// toolCall is the JSON-RPC text of a tools/call request.
func toolCall(id int, tool string, args map[string]any) string {
	b, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}
