package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

func TestMain(m *testing.M) { falkortest.Main(m) }

// syncBuffer is a bytes.Buffer safe for concurrent writers (the logger).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testProxy is a proxy serving on a loopback port for one test.
type testProxy struct {
	*proxy
	url    string // base URL
	logs   *syncBuffer
	db     *falkortest.DB
	served chan error // Serve's result
}

// envFunc turns a map into a getenv function.
func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// startProxy builds the proxy from env (as the environment of the process)
// on top of these defaults: a free loopback port, the test's FalkorDB, a
// rate-limit key prefix in the test's namespace and debug logs captured. It
// is shut down when the test ends, and the test's database users dropped.
func startProxy(t *testing.T, db *falkortest.DB, env map[string]string, hook ...mcp.Middleware) *testProxy {
	t.Helper()
	t.Cleanup(func() { dropACLUsers(t, db) }) // runs after the proxy's shutdown
	tp := startProxyEnv(t, merge(map[string]string{
		"FALKORDB_URL":      db.URL,
		"RATE_LIMIT_PREFIX": db.Namespace() + ":ratelimit:",
	}, env), hook...)
	tp.db = db
	return tp
}

// startProxyEnv is startProxy without the test's FalkorDB: env is the whole
// environment on top of a free loopback port and debug logs captured. The
// proxy is shut down when the test ends.
func startProxyEnv(t *testing.T, env map[string]string, hook ...mcp.Middleware) *testProxy {
	t.Helper()
	full := merge(map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "LOG_LEVEL": "debug"}, env)
	cfg, err := parseConfig(nil, envFunc(full), nil)
	require.NoError(t, err)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := newProxy(ctx, cfg, log, hook...)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, p.Shutdown(ctx))
		require.NoError(t, <-served)
		require.NoError(t, p.Close())
		if t.Failed() {
			t.Logf("proxy logs:\n%s", logs.String())
		}
	})
	return &testProxy{proxy: p, url: p.URL(), logs: logs, served: served}
}

// issuer is a real token issuer for production-mode tests: an RSA key and
// its JWKS served over HTTP on loopback.
type issuer struct {
	key  *authntest.Key
	jwks *authntest.JWKSServer
	aud  string
}

func newIssuer(t testing.TB) *issuer {
	key := authntest.CachedRSA(t, 2048, 0)
	return &issuer{key: key, jwks: authntest.NewJWKSServer(t, key), aud: "https://proxy.test/mcp"}
}

// env is the production configuration naming this issuer.
func (i *issuer) env() map[string]string {
	return map[string]string{
		"BEARER_ISSUER":    i.jwks.URL,
		"BEARER_AUDIENCE":  i.aud,
		"BEARER_JWKS_URI":  i.jwks.JWKSURL(),
		"BEARER_ALGORITHM": "RS256,ES256",
	}
}

// token mints an access token for tenant (the "sub" claim) with scopes.
func (i *issuer) token(tenant, scopes string) string {
	c := authntest.Claims(i.jwks.URL, i.aud, tenant, time.Now(), time.Hour)
	if scopes != "" {
		c["scope"] = scopes
	}
	return i.key.Mint(c)
}

// merge returns the union of maps; later ones win.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// bearerTransport adds "Authorization: Bearer <token>" to every request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// httpClient is an HTTP client that sends token (none when empty), with
// its own connections, closed when the test ends.
func httpClient(t *testing.T, token string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	if token == "" {
		return &http.Client{Transport: tr}
	}
	return &http.Client{Transport: &bearerTransport{token: token, base: tr}}
}

// connect opens an MCP client session to the proxy at base over transport
// "streamable" (/mcp) or "sse" (/sse) with token. It is closed when the
// test ends.
func connect(t *testing.T, base, kind, token string) *mcp.ClientSession {
	t.Helper()
	var tr mcp.Transport
	switch kind {
	case "streamable":
		tr = &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: httpClient(t, token), MaxRetries: -1}
	case "sse":
		tr = &mcp.SSEClientTransport{Endpoint: base + "/sse", HTTPClient: httpClient(t, token)}
	default:
		t.Fatalf("unknown transport %q", kind)
	}
	// The SSE client's stream lives in the connect context: it must last
	// as long as the session.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "proxy-test", Version: "1"}, nil).Connect(ctx, tr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool with a timeout.
func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
}

// mustCall calls a tool and requires a successful result.
func mustCall(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := call(t, cs, name, args)
	require.NoError(t, err)
	require.False(t, res.IsError, "tool error: %s", text(res))
	return res
}

// text joins the text contents of a result.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// listGraphs returns the caller's graphs.
func listGraphs(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res := mustCall(t, cs, "falkordb_list_graphs", map[string]any{})
	raw, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var out struct {
		Graphs []string `json:"graphs"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	require.NotNil(t, out.Graphs, "no graphs array in %s", raw)
	return out.Graphs
}

// toolNames lists the tools the session sees.
func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// get fetches base+path with an optional token and returns status, headers
// and body.
func get(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	resp, err := httpClient(t, token).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// createQuery creates one node in a graph.
const createQuery = "CREATE (n:Probe {name: $name}) RETURN n.name AS name"

// postJSON posts a JSON-RPC message to url with token (none when empty) as
// a Streamable HTTP client would, and returns status, headers and body.
func postJSON(t *testing.T, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient(t, "").Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// structured returns the structured content of a result as JSON text.
func structured(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	return string(b)
}

// dropACLUsers deletes the per-tenant FalkorDB users of the test's tenants
// (named "tg-" + namespace ...), which the proxy leaves for other replicas.
func dropACLUsers(t testing.TB, db *falkortest.DB) {
	ctx := context.Background()
	rdb := db.Redis(t)
	users, err := rdb.Do(ctx, "ACL", "USERS").StringSlice()
	if err != nil {
		return // a test that stopped the server
	}
	for _, u := range users {
		if strings.HasPrefix(u, aclUserPrefix+db.Namespace()) {
			rdb.Do(ctx, "ACL", "DELUSER", u)
		}
	}
}
