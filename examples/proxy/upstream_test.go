package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// Helpers of the upstream tests are prefixed "up" so that they cannot clash
// with the other tests of package main.

// upStdioFlag, as the first argument of the test binary, makes it a small
// go-sdk MCP server on stdin/stdout (see init), for the -upstream-cmd tests.
const upStdioFlag = "-tenantgraph-upstream-stdio"

func init() {
	if len(os.Args) > 1 && os.Args[1] == upStdioFlag {
		upServeStdio()
		os.Exit(0)
	}
}

// upServeStdio serves two tools on stdio: echo (reports its process id and
// the arguments it got, the graph name hex-encoded so that result cleaning
// leaves it alone) and crash (exits in the middle of the call).
func upServeStdio() {
	s := mcp.NewServer(&mcp.Implementation{Name: "stdio-upstream", Version: "0"}, nil)
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"graphName": map[string]any{"type": "string"},
		"params":    map[string]any{"type": "object"},
	}}
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: schema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args map[string]any
			_ = json.Unmarshal(req.Params.Arguments, &args)
			g, _ := args["graphName"].(string)
			delete(args, "graphName")
			out, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "graph_hex": hex.EncodeToString([]byte(g)), "args": args})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(out)}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "crash", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			os.Exit(3)
			return nil, nil
		})
	_ = s.Run(context.Background(), &mcp.StdioTransport{})
}

// upFront is the proxy's server in upstream mode, in process: the mirrored
// tools, the tenancy middleware and authn over httptest, as newProxy builds
// them.
type upFront struct {
	URL      string
	conn     *upstreamConn
	key      *authntest.Key
	iss, aud string

	mu     sync.Mutex
	tokens []string // every client token minted
}

func startUpFront(t *testing.T, cfg *config, policy tenancy.Config) *upFront {
	t.Helper()
	f := &upFront{key: authntest.NewEd25519(t), iss: "https://issuer.test", aud: "https://proxy.test/mcp"}
	jwks := authntest.NewJWKSServer(t, f.key)
	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{Issuer: f.iss, Audiences: []string{f.aud}, JWKSURL: jwks.JWKSURL()}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := mcp.NewServer(&mcp.Implementation{Name: "proxy", Version: "0"}, nil)
	closer, err := addUpstreamTools(ctx, s, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closer.Close()) })
	f.conn = closer.(*upstreamConn)

	mw, err := tenancy.New(policy)
	require.NoError(t, err)
	s.AddReceivingMiddleware(mw)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	ts := httptest.NewServer(auth.RequireBearerToken(v.TokenVerifier(), nil)(h))
	t.Cleanup(ts.Close)
	f.URL = ts.URL + "/mcp"
	return f
}

// token mints a client token for tenant with the given scopes.
func (f *upFront) token(tenant, scope string) string {
	claims := authntest.Claims(f.iss, f.aud, tenant, time.Now(), time.Hour)
	claims["scope"] = scope
	tok := f.key.Mint(claims)
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	f.mu.Unlock()
	return tok
}

// connect opens a client session of tenant on the front.
func (f *upFront) connect(t *testing.T, tenant, scope string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: &upBearer{token: f.token(tenant, scope)}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "0"}, opts).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.URL, HTTPClient: hc, MaxRetries: -1}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type upBearer struct{ token string }

func (b *upBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// upCall calls a tool and fails the test on a protocol error.
func upCall(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err, "calling %s", tool)
	return res
}

// upText joins the text contents of a result.
func upText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// upOK calls a tool and requires success; it returns the text.
func upOK(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res := upCall(t, cs, tool, args)
	require.False(t, res.IsError, "%s: %s", tool, upText(res))
	return upText(res)
}

// upToolNames lists the tools a session sees.
func upToolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// upRequired reports FALKORDB_REQUIRED=1: missing parts fail instead of skip.
func upRequired() bool { return os.Getenv(falkortest.EnvRequired) == "1" }

func upSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if upRequired() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func upRandom(t *testing.T) string {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// The official FalkorDB MCP server (npm @falkordb/mcpserver), started by the
// tests from the interop install (testdata/interop/install.sh).

// upOfficialInstall returns node and the official server's entry point, or
// skips the test.
func upOfficialInstall(t *testing.T) (node, index string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		upSkip(t, "upstream interop tests run on Unix only")
	}
	dir := os.Getenv("TENANTGRAPH_INTEROP_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			upSkip(t, "no user cache dir (%v) and TENANTGRAPH_INTEROP_DIR unset: run examples/proxy/testdata/interop/install.sh", err)
		}
		dir = filepath.Join(cache, "tenantgraph", "interop")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		upSkip(t, "node not found (%v): the official FalkorDB MCP server needs Node.js >= 20", err)
	}
	index = filepath.Join(dir, "node", "node_modules", "@falkordb", "mcpserver", "dist", "index.js")
	if _, err := os.Stat(index); err != nil {
		upSkip(t, "official FalkorDB MCP server not installed in %s: run examples/proxy/testdata/interop/install.sh (or set TENANTGRAPH_INTEROP_DIR)", dir)
	}
	return node, index
}

// upFalkorTCP returns FalkorDB's host and port; the official server reaches
// FalkorDB over TCP only.
func upFalkorTCP(t *testing.T, db *falkortest.DB) (host, port string) {
	t.Helper()
	if db.Network != "tcp" {
		upSkip(t, "the official FalkorDB MCP server needs FalkorDB on TCP, not %s", db.Network)
	}
	host, port, err := net.SplitHostPort(db.Addr)
	require.NoError(t, err)
	return host, port
}

// upOfficial is a running official server in HTTP mode.
type upOfficial struct {
	t          *testing.T
	node, idx  string
	host, port string // FalkorDB
	password   string
	dir        string
	key        string // MCP_API_KEY
	listenPort string

	cmd    *exec.Cmd
	exited chan struct{}
	stderr *upLines
}

// upLines collects a child's stderr lines and announces its listen address.
type upLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *upLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var upListening = regexp.MustCompile(`^INTEROP_LISTENING 127\.0\.0\.1:(\d+)$`)

func startUpOfficial(t *testing.T, db *falkortest.DB) *upOfficial {
	t.Helper()
	node, index := upOfficialInstall(t)
	host, port := upFalkorTCP(t, db)
	o := &upOfficial{t: t, node: node, idx: index, host: host, port: port, password: db.Password,
		dir: t.TempDir(), key: upRandom(t), listenPort: "0"}
	o.start()
	t.Cleanup(o.stop)
	return o
}

// URL is the server's MCP endpoint.
func (o *upOfficial) URL() string { return "http://127.0.0.1:" + o.listenPort + "/mcp" }

// start starts the server on o.listenPort (0: a free port, then remembered).
func (o *upOfficial) start() {
	t := o.t
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	loopback := filepath.Join(filepath.Dir(file), "testdata", "interop", "loopback.cjs")
	cmd := exec.Command(o.node, "--require", loopback, o.idx)
	cmd.Dir = o.dir // it loads ./.env: run it where there is none
	cmd.Env = upChildEnv(
		"NODE_ENV=production", "MCP_TRANSPORT=http", "MCP_PORT="+o.listenPort, "MCP_API_KEY="+o.key,
		"FALKORDB_HOST="+o.host, "FALKORDB_PORT="+o.port, "FALKORDB_PASSWORD="+o.password)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	o.cmd, o.exited, o.stderr = cmd, make(chan struct{}), &upLines{}
	addr := make(chan string, 1)
	go func(lines *upLines, exited chan struct{}) {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := upListening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
				continue
			}
			lines.mu.Lock()
			lines.lines = append(lines.lines, line)
			lines.mu.Unlock()
		}
		_ = cmd.Wait()
		close(exited)
	}(o.stderr, o.exited)
	select {
	case p := <-addr:
		o.listenPort = p
	case <-o.exited:
		t.Fatalf("official FalkorDB MCP server exited before listening: %s", o.stderr)
	case <-time.After(30 * time.Second):
		o.stop()
		t.Fatalf("official FalkorDB MCP server did not listen within 30s: %s", o.stderr)
	}
}

// stop ends the server: SIGTERM, then SIGKILL after a grace period (it
// waits for open connections before exiting).
func (o *upOfficial) stop() {
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(3 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.exited
	}
	o.cmd = nil
}

// upChildEnv is the test's environment without the variables the official
// server reads, plus set.
func upChildEnv(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PORT" || name == "NODE_ENV" || name == "ENABLE_FILE_LOGGING" || name == "DOTENV_CONFIG_PATH" ||
			strings.HasPrefix(name, "MCP_") || strings.HasPrefix(name, "FALKORDB_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

// upGraphList runs GRAPH.LIST directly in FalkorDB.
func upGraphList(t *testing.T, db *falkortest.DB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := db.Redis(t).Do(ctx, "GRAPH.LIST").StringSlice()
	require.NoError(t, err)
	return keys
}

func upLinesOf(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestUpstreamOfficialHTTP puts the proxy in front of the real official
// server over Streamable HTTP: two tenants, read-only routing, listing,
// restarts and outages.
func TestUpstreamOfficialHTTP(t *testing.T) {
	upOfficialInstall(t) // skip before starting FalkorDB
	db := falkortest.Start(t)
	off := startUpOfficial(t, db)
	front := startUpFront(t, &config{UpstreamURL: off.URL(), UpstreamAuthHeader: "Bearer " + off.key},
		tenancy.Config{Tools: tenancy.OfficialFalkorTools()})

	tenantA, tenantB := db.Namespace()+"a", db.Namespace()+"b"
	a := front.connect(t, tenantA, "read write admin", nil)
	b := front.connect(t, tenantB, "read write", nil)
	ro := front.connect(t, tenantA, "read", nil)
	create := "CREATE (p:Person {name: $name}) RETURN p.name AS name"
	read := "MATCH (p:Person) RETURN p.name AS name ORDER BY name"

	t.Run("tools", func(t *testing.T) {
		require.Equal(t, []string{"delete_graph", "get_graph_schema", "get_node_schema", "get_relationship_schema",
			"list_graphs", "query_graph", "query_graph_readonly"}, upToolNames(t, a),
			"the official server's tools, mirrored; anything outside the tenancy policy hidden")
		require.NotContains(t, upToolNames(t, b), "delete_graph", "needs admin")
		require.NotContains(t, upToolNames(t, ro), "delete_graph")
	})

	t.Run("writes go to each tenant's own graph", func(t *testing.T) {
		// The seed's argument name "parameters" reaches the upstream as "params".
		require.Contains(t, upOK(t, a, "query_graph", map[string]any{"graphName": "people", "query": create, "parameters": map[string]any{"name": "alice"}}), `"alice"`)
		require.Contains(t, upOK(t, b, "query_graph", map[string]any{"graphName": "people", "query": create, "params": map[string]any{"name": "bob"}}), `"bob"`)
		upOK(t, a, "query_graph", map[string]any{"graphName": "extra", "query": "CREATE (:X)"})

		keys := upGraphList(t, db)
		require.Contains(t, keys, tenantA+"_people")
		require.Contains(t, keys, tenantA+"_extra")
		require.Contains(t, keys, tenantB+"_people")
		require.NotContains(t, keys, "people", "no unprefixed key")
		require.NotContains(t, keys, "extra", "no unprefixed key")

		outA := upOK(t, a, "query_graph", map[string]any{"graphName": "people", "query": read})
		require.Contains(t, outA, `"alice"`)
		require.NotContains(t, outA, `"bob"`)
		outB := upOK(t, b, "query_graph_readonly", map[string]any{"graphName": "people", "query": read})
		require.Contains(t, outB, `"bob"`)
		require.NotContains(t, outB, `"alice"`)
	})

	t.Run("list_graphs shows only the tenant's graphs, without prefix", func(t *testing.T) {
		require.Equal(t, []string{"extra", "people"}, upLinesOf(upOK(t, a, "list_graphs", map[string]any{})))
		require.Equal(t, []string{"people"}, upLinesOf(upOK(t, b, "list_graphs", map[string]any{})))
	})

	t.Run("read-only tenant", func(t *testing.T) {
		// query_graph is routed to query_graph_readonly, where FalkorDB refuses writes.
		res := upCall(t, ro, "query_graph", map[string]any{"graphName": "people", "query": "CREATE (:Person {name: 'mallory'})"})
		require.True(t, res.IsError)
		require.Contains(t, upText(res), "graph.RO_QUERY is to be executed only on read-only queries")
		require.NotContains(t, upText(res), db.Namespace(), "no physical name in the error")
		out := upOK(t, ro, "query_graph", map[string]any{"graphName": "people", "query": read})
		require.Contains(t, out, `"alice"`)
		require.NotContains(t, out, "mallory")
	})

	t.Run("params given twice", func(t *testing.T) {
		res := upCall(t, a, "query_graph", map[string]any{"graphName": "people", "query": read,
			"params": map[string]any{}, "parameters": map[string]any{}})
		require.True(t, res.IsError)
		require.Contains(t, upText(res), `"params"`)
	})

	t.Run("upstream restart: the session is re-established, a write runs once", func(t *testing.T) {
		off.stop()
		off.start() // same port: the proxy's session id is unknown there (400)
		upOK(t, a, "query_graph", map[string]any{"graphName": "people", "query": create, "params": map[string]any{"name": "carol"}})
		out := upOK(t, a, "query_graph_readonly", map[string]any{"graphName": "people", "query": "MATCH (p:Person {name: 'carol'}) RETURN count(p) AS n"})
		require.Regexp(t, `"n": 1\b`, out, "the write was sent once")
	})

	t.Run("upstream down: a clear, retriable error", func(t *testing.T) {
		off.stop()
		res := upCall(t, a, "list_graphs", map[string]any{})
		require.True(t, res.IsError)
		require.Equal(t, msgUpstreamUnavailable, upText(res))
		res = upCall(t, a, "query_graph", map[string]any{"graphName": "people", "query": read})
		require.True(t, res.IsError)
		require.Equal(t, msgUpstreamUnavailable, upText(res), "nothing was sent: no doubt about the outcome")
		require.NotContains(t, upText(res), "127.0.0.1")
	})
}

// TestUpstreamOfficialStdio runs the official server as an -upstream-cmd
// child (its stdio mode).
func TestUpstreamOfficialStdio(t *testing.T) {
	node, index := upOfficialInstall(t)
	db := falkortest.Start(t)
	host, port := upFalkorTCP(t, db)
	if _, err := exec.LookPath("sh"); err != nil {
		upSkip(t, "no sh: %v", err)
	}
	dir := t.TempDir()
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	// sh -c: run it in an empty directory (it loads ./.env) with its settings.
	script := "cd " + q(dir) + " && exec env -u PORT NODE_ENV=production MCP_TRANSPORT=stdio" +
		" FALKORDB_HOST=" + q(host) + " FALKORDB_PORT=" + q(port) + " FALKORDB_PASSWORD=" + q(db.Password) +
		" " + q(node) + " " + q(index)
	front := startUpFront(t, &config{UpstreamCmd: "sh -c " + q(script)}, tenancy.Config{Tools: tenancy.OfficialFalkorTools()})

	tenantA, tenantB := db.Namespace()+"a", db.Namespace()+"b"
	a := front.connect(t, tenantA, "read write", nil)
	b := front.connect(t, tenantB, "read write", nil)
	upOK(t, a, "query_graph", map[string]any{"graphName": "g", "query": "CREATE (:N {v: $v})", "parameters": map[string]any{"v": 1}})
	upOK(t, b, "query_graph", map[string]any{"graphName": "h", "query": "CREATE (:N {v: 2})"})
	keys := upGraphList(t, db)
	require.Contains(t, keys, tenantA+"_g")
	require.Contains(t, keys, tenantB+"_h")
	require.Equal(t, []string{"g"}, upLinesOf(upOK(t, a, "list_graphs", map[string]any{})))
	require.Equal(t, []string{"h"}, upLinesOf(upOK(t, b, "list_graphs", map[string]any{})))
	require.Contains(t, upOK(t, a, "query_graph_readonly", map[string]any{"graphName": "g", "query": "MATCH (n:N) RETURN n.v AS v"}), `"v": 1`)
}

// ---------------------------------------------------------------------------
// A go-sdk upstream over httptest that records what reaches it.

type upRecorder struct {
	srv *httptest.Server

	handler atomic.Pointer[http.Handler]
	mu      sync.Mutex
	auths   []string        // Authorization of every request
	known   map[string]bool // session ids this "process" issued
	args    []json.RawMessage
	metas   []mcp.Meta

	writes, reads atomic.Int32
	started       chan string   // a blocking tool has started
	release       chan struct{} // closed to unblock blocking tools
}

const upUpstreamKey = "Bearer upstream-secret"

func startUpRecorder(t *testing.T) *upRecorder {
	r := &upRecorder{started: make(chan string, 10), release: make(chan struct{})}
	r.restart()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		select {
		case <-r.release:
		default:
			close(r.release)
		}
		r.srv.Close()
	})
	return r
}

// restart replaces the MCP server, forgetting every session, like a restart
// of the upstream process.
func (r *upRecorder) restart() {
	s := mcp.NewServer(&mcp.Implementation{Name: "recorder", Version: "0"}, nil)
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"graphName": map[string]any{"type": "string"},
		"params":    map[string]any{"type": "object"},
	}}
	record := func(req *mcp.CallToolRequest) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.args = append(r.args, slices.Clone(req.Params.Arguments))
		r.metas = append(r.metas, req.Params.Meta)
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: schema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
		Meta: mcp.Meta{"io.modelcontextprotocol/related": "x", "example.com/hint": "kept"}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			return text("echo " + string(req.Params.Arguments)), nil
		})
	s.AddTool(&mcp.Tool{Name: "write", InputSchema: schema},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			record(req)
			return text(fmt.Sprintf("written %d", r.writes.Add(1))), nil
		})
	// block_write and block_read run, then hang until released or
	// disconnected (block_read only on its first run). block_write first
	// sends a notification, so that its answer stream has begun (status
	// 200) when the connection breaks; block_read's has not.
	s.AddTool(&mcp.Tool{Name: "block_write", InputSchema: schema},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			r.writes.Add(1)
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: "upstream", Progress: 0})
			r.started <- "block_write"
			select {
			case <-r.release:
			case <-ctx.Done():
			}
			return text("late"), nil
		})
	s.AddTool(&mcp.Tool{Name: "block_read", InputSchema: schema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if r.reads.Add(1) == 1 {
				r.started <- "block_read"
				select {
				case <-r.release:
				case <-ctx.Done():
				}
			}
			return text("read ok"), nil
		})
	// notify sends a progress notification and a log message (with what an
	// official server might put there) before answering.
	s.AddTool(&mcp.Tool{Name: "notify", InputSchema: schema},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: "upstream", Progress: 1, Message: "and-log"})
			return text("notified"), nil
		})
	s.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.ProgressNotificationParams); ok && p.Message == "and-log" {
				// A log message whatever level the client asked for, as
				// the official server sends them.
				ss, _ := req.GetSession().(*mcp.ServerSession)
				_, _ = next(ctx, "notifications/message", &mcp.ServerRequest[*mcp.LoggingMessageParams]{
					Session: ss, Params: &mcp.LoggingMessageParams{Level: "error", Data: "other session's query: 'hunter2'"}})
			}
			return next(ctx, method, req)
		}
	})
	// Tools whose schemas the proxy must repair or skip.
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if lr, ok := res.(*mcp.ListToolsResult); ok && err == nil {
				out := *lr
				out.Tools = append(slices.Clone(lr.Tools),
					&mcp.Tool{Name: "bad_schema", InputSchema: map[string]any{"type": "string"}},
					&mcp.Tool{Name: "untyped", InputSchema: map[string]any{"properties": map[string]any{}}})
				return &out, nil
			}
			return res, err
		}
	})
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	r.mu.Lock()
	r.known = map[string]bool{}
	r.mu.Unlock()
	r.handler.Store(&h)
}

// serve records the request and answers like the official server: 400 for a
// session it does not know.
func (r *upRecorder) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.auths = append(r.auths, req.Header.Get("Authorization"))
	sid := req.Header.Get("Mcp-Session-Id")
	known := sid == "" || r.known[sid]
	r.mu.Unlock()
	if req.Header.Get("Authorization") != upUpstreamKey {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"Unauthorized"}`)
		return
	}
	if !known {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"Bad Request: No valid session or initialization"}`)
		return
	}
	(*r.handler.Load()).ServeHTTP(&upSessionWriter{ResponseWriter: w, r: r}, req)
}

// upSessionWriter notes the session id of an answer before it is sent.
type upSessionWriter struct {
	http.ResponseWriter
	r    *upRecorder
	once sync.Once
}

func (w *upSessionWriter) note() {
	w.once.Do(func() {
		if id := w.Header().Get("Mcp-Session-Id"); id != "" {
			w.r.mu.Lock()
			w.r.known[id] = true
			w.r.mu.Unlock()
		}
	})
}

func (w *upSessionWriter) WriteHeader(code int)        { w.note(); w.ResponseWriter.WriteHeader(code) }
func (w *upSessionWriter) Write(b []byte) (int, error) { w.note(); return w.ResponseWriter.Write(b) }
func (w *upSessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *upSessionWriter) Flush() {
	w.note()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *upRecorder) lastArgs(t *testing.T) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.args)
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.args[len(r.args)-1], &m))
	return m
}

// upRecorderPolicy serves every upstream tool to every tenant, mapping the
// argument graphName.
var upRecorderPolicy = tenancy.Config{Tools: map[string]tenancy.ToolPolicy{}, UnlistedTools: &tenancy.ToolPolicy{}}

// TestUpstreamRecorder checks what crosses to the upstream: only the proxy's
// credential, fresh parameters, physical graph names; and nothing comes back
// but results.
func TestUpstreamRecorder(t *testing.T) {
	rec := startUpRecorder(t)
	front := startUpFront(t, &config{UpstreamURL: rec.srv.URL + "/mcp", UpstreamAuthHeader: upUpstreamKey}, upRecorderPolicy)

	var frontNotes atomic.Int32
	opts := &mcp.ClientOptions{
		LoggingMessageHandler:       func(context.Context, *mcp.LoggingMessageRequest) { frontNotes.Add(1) },
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { frontNotes.Add(1) },
	}
	a := front.connect(t, "acme", "read write", opts)

	t.Run("mirrored tools", func(t *testing.T) {
		require.Equal(t, []string{"block_read", "block_write", "echo", "notify", "untyped", "write"}, upToolNames(t, a),
			"bad_schema (type string) skipped, untyped repaired")
		for tool, err := range a.Tools(context.Background(), nil) {
			require.NoError(t, err)
			if tool.Name == "echo" {
				require.Equal(t, mcp.Meta{"example.com/hint": "kept"}, tool.Meta, "reserved _meta keys dropped")
				require.True(t, tool.Annotations.ReadOnlyHint)
			}
		}
	})

	t.Run("fresh params, physical names, params alias", func(t *testing.T) {
		params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"graphName": "users", "parameters": map[string]any{"x": 1}}}
		params.SetProgressToken("client-progress")
		params.Meta["io.modelcontextprotocol/related-task"] = map[string]any{"taskId": "t1"}
		res, err := a.CallTool(context.Background(), params)
		require.NoError(t, err)
		require.False(t, res.IsError, upText(res))
		got := rec.lastArgs(t)
		require.Equal(t, map[string]any{"graphName": "acme_users", "params": map[string]any{"x": float64(1)}}, got)
		rec.mu.Lock()
		require.Empty(t, rec.metas[len(rec.metas)-1], "no _meta forwarded")
		rec.mu.Unlock()
		require.NotContains(t, upText(res), "acme_", "result cleaned by tenancy")
	})

	t.Run("upstream notifications are not forwarded", func(t *testing.T) {
		params := &mcp.CallToolParams{Name: "notify", Arguments: map[string]any{}}
		params.SetProgressToken("client-progress")
		res, err := a.CallTool(context.Background(), params)
		require.NoError(t, err)
		require.Equal(t, "notified", upText(res))
		require.Eventually(t, func() bool { return front.conn.dropped.Load() >= 2 }, 10*time.Second, 10*time.Millisecond,
			"the upstream sent a progress and a log notification to the proxy")
		require.Zero(t, frontNotes.Load(), "none reached the client")
	})

	t.Run("upstream JSON-RPC errors pass as errors", func(t *testing.T) {
		// untyped is listed but not served upstream: its JSON-RPC error is the answer.
		_, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "untyped", Arguments: map[string]any{}})
		require.ErrorContains(t, err, "untyped")
	})

	t.Run("the client's token never reaches the upstream", func(t *testing.T) {
		rec.mu.Lock()
		auths := slices.Clone(rec.auths)
		rec.mu.Unlock()
		require.NotEmpty(t, auths)
		for _, got := range auths {
			require.Equal(t, upUpstreamKey, got)
		}
		front.mu.Lock()
		defer front.mu.Unlock()
		for _, tok := range front.tokens {
			for _, got := range auths {
				require.NotContains(t, got, tok)
			}
		}
	})

	t.Run("restart: unknown session (400) is re-established, the write runs once", func(t *testing.T) {
		before := rec.writes.Load()
		rec.restart()
		require.Equal(t, fmt.Sprintf("written %d", before+1), upOK(t, a, "write", map[string]any{"graphName": "g"}))
		require.Equal(t, before+1, rec.writes.Load())
	})

	t.Run("broken mid-call: a write is not sent again", func(t *testing.T) {
		before := rec.writes.Load()
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			res, _ := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "block_write", Arguments: map[string]any{}})
			done <- res
		}()
		require.Equal(t, "block_write", <-rec.started)
		rec.srv.CloseClientConnections()
		res := <-done
		require.NotNil(t, res)
		require.True(t, res.IsError)
		require.Equal(t, msgUpstreamMayHaveRun, upText(res))
		require.Equal(t, before+1, rec.writes.Load(), "sent once")
		upOK(t, a, "echo", map[string]any{}) // and the proxy recovers
	})

	t.Run("broken mid-call: a read-only call is sent again", func(t *testing.T) {
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			res, _ := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "block_read", Arguments: map[string]any{}})
			done <- res
		}()
		require.Equal(t, "block_read", <-rec.started)
		rec.srv.CloseClientConnections()
		res := <-done
		require.NotNil(t, res)
		require.Equal(t, "read ok", upText(res))
		require.EqualValues(t, 2, rec.reads.Load())
	})

	t.Run("concurrent calls across a restart", func(t *testing.T) {
		rec.restart()
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"graphName": fmt.Sprint("g", i)}})
				switch {
				case err != nil:
					errs <- err.Error()
				case res.IsError:
					errs <- upText(res)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("readiness", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, front.conn.Ready(ctx))
		rec.restart()
		require.NoError(t, front.conn.Ready(ctx), "a stale session is replaced")
	})

	t.Run("upstream down", func(t *testing.T) {
		close(rec.release)
		rec.srv.Close()
		for _, tool := range []string{"echo", "write"} {
			res := upCall(t, a, tool, map[string]any{"graphName": "g"})
			require.True(t, res.IsError)
			require.Equal(t, msgUpstreamUnavailable, upText(res))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.Error(t, front.conn.Ready(ctx))
	})
}

// TestUpstreamWrongCredential: an upstream that refuses the proxy's
// credential fails the start with a clear error; the client's token is not
// tried instead.
func TestUpstreamStartErrors(t *testing.T) {
	rec := startUpRecorder(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/mcp"
	closed.Close()
	cases := []struct {
		name string
		cfg  config
		want string
	}{
		{"wrong credential", config{UpstreamURL: rec.srv.URL + "/mcp", UpstreamAuthHeader: "Bearer wrong"}, "connect to http://127.0.0.1"},
		{"nothing listening", config{UpstreamURL: closedURL}, "connect to http://127.0.0.1"},
		{"both", config{UpstreamURL: closedURL, UpstreamCmd: "x"}, "not both"},
		{"neither", config{}, "no upstream"},
		{"not http", config{UpstreamURL: "ftp://127.0.0.1/"}, "http:// or https://"},
		{"credentials in URL", config{UpstreamURL: "http://u:p@127.0.0.1/"}, "UPSTREAM_TOKEN"},
		{"bad command", config{UpstreamCmd: `node "unterminated`}, "double quote"},
		{"no such program", config{UpstreamCmd: "/nonexistent/tenantgraph-upstream"}, "-upstream-cmd"},
		{"program exits", config{UpstreamCmd: "true"}, "connect to true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := mcp.NewServer(&mcp.Implementation{Name: "proxy", Version: "0"}, nil)
			c, err := addUpstreamTools(ctx, s, &tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, c)
			require.NotContains(t, err.Error(), "p@", "no credentials in errors")
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, got := range rec.auths {
		require.Equal(t, "Bearer wrong", got)
	}
}

// TestUpstreamStdio runs a go-sdk server (this test binary) as the
// -upstream-cmd child.
func TestUpstreamStdio(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	front := startUpFront(t, &config{UpstreamCmd: q(exe) + " " + upStdioFlag}, upRecorderPolicy)
	a := front.connect(t, "acme", "read write", nil)
	b := front.connect(t, "bravo", "read write", nil)

	type echo struct {
		PID      int            `json:"pid"`
		GraphHex string         `json:"graph_hex"`
		Args     map[string]any `json:"args"`
	}
	call := func(cs *mcp.ClientSession, args map[string]any) echo {
		var e echo
		require.NoError(t, json.Unmarshal([]byte(upOK(t, cs, "echo", args)), &e))
		return e
	}
	ea := call(a, map[string]any{"graphName": "users", "parameters": map[string]any{"k": "v"}})
	require.Equal(t, hex.EncodeToString([]byte("acme_users")), ea.GraphHex)
	require.Equal(t, map[string]any{"params": map[string]any{"k": "v"}}, ea.Args)
	eb := call(b, map[string]any{"graphName": "users"})
	require.Equal(t, hex.EncodeToString([]byte("bravo_users")), eb.GraphHex)
	require.Equal(t, ea.PID, eb.PID, "one upstream process for all tenants")

	// The child dies during a call that is not read-only: not repeated, and
	// the next call starts a new child.
	res := upCall(t, a, "crash", map[string]any{})
	require.True(t, res.IsError)
	require.Equal(t, msgUpstreamMayHaveRun, upText(res))
	again := call(a, map[string]any{"graphName": "users"})
	require.NotEqual(t, ea.PID, again.PID)
}

// TestUpstreamCloseStopsChild: Close ends the stdio child.
func TestUpstreamCloseStopsChild(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	u, err := newUpstreamConn(&config{UpstreamCmd: "'" + exe + "' " + upStdioFlag}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx := context.Background()
	res, err := u.call(ctx, "echo", json.RawMessage(`{}`), true)
	require.NoError(t, err)
	var e struct{ PID int }
	require.NoError(t, json.Unmarshal([]byte(upText(res)), &e))
	require.NoError(t, u.Close())
	require.Error(t, syscall.Kill(e.PID, 0), "the child is gone")
	res, err = u.call(ctx, "echo", json.RawMessage(`{}`), true)
	require.NoError(t, err)
	require.Equal(t, msgUpstreamUnavailable, upText(res), "calls after Close are refused")
	require.NoError(t, u.Close(), "Close is idempotent")
}

// ---------------------------------------------------------------------------
// Unit tests of the parsers.

func TestUpstreamArguments(t *testing.T) {
	cases := []struct {
		name, in string
		alias    bool
		want     string // "" means an error
	}{
		{"absent", ``, true, `{}`},
		{"null", `null`, true, `{}`},
		{"renamed", `{"graphName":"a_g","parameters":{"x":1}}`, true, `{"graphName":"a_g","params":{"x":1}}`},
		{"no alias for this tool", `{"parameters":{"x":1}}`, false, `{"parameters":{"x":1}}`},
		{"params kept", `{"params":{"x":1}}`, true, `{"params":{"x":1}}`},
		{"both", `{"params":{},"parameters":{}}`, true, ""},
		{"duplicate keys: the last wins, as upstream", `{"graphName":"a_x","graphName":"a_y"}`, true, `{"graphName":"a_y"}`},
		{"array", `[1]`, true, ""},
		{"string", `"x"`, true, ""},
		{"broken", `{"a":`, true, ""},
		{"_meta inside arguments is an argument", `{"_meta":{"k":1}}`, true, `{"_meta":{"k":1}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upstreamArguments(json.RawMessage(tc.in), tc.alias)
			if tc.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func FuzzUpstreamArguments(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"parameters":{"a":1}}`, `{"params":1,"parameters":2}`, `[]`, `{"a":"\u00e9"}`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, alias bool) {
		out, err := upstreamArguments(raw, alias)
		if err != nil {
			return
		}
		var got map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(out, &got), "always a JSON object")
		require.NotNil(t, got)
		if !alias {
			return
		}
		_, hasParameters := got["parameters"]
		require.False(t, hasParameters, "renamed")
		var in map[string]json.RawMessage
		if json.Unmarshal(raw, &in) == nil {
			if p, ok := in["parameters"]; ok {
				require.JSONEq(t, string(p), string(got["params"]))
			}
		}
	})
}

func BenchmarkUpstreamArguments(b *testing.B) {
	raw := json.RawMessage(`{"graphName":"acme_users","query":"MATCH (n) WHERE n.name = $name RETURN n LIMIT 10","parameters":{"name":"alice"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := upstreamArguments(raw, true); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSplitCommandLine(t *testing.T) {
	cases := []struct {
		in   string
		want []string // nil: error
	}{
		{`node server.js`, []string{"node", "server.js"}},
		{"  node\t a  b \n", []string{"node", "a", "b"}},
		{`sh -c 'cd /tmp && exec x "$Y"'`, []string{"sh", "-c", `cd /tmp && exec x "$Y"`}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a "q\"q" "b\\s" "\$x" "\n"`, []string{"a", `q"q`, `b\s`, `$x`, `\n`}},
		{`a b\ c \'`, []string{"a", "b c", "'"}},
		{`a ''`, []string{"a", ""}},
		{`a"b"'c'd`, []string{"abcd"}},
		{`/path/with spaces`, []string{"/path/with", "spaces"}},
		{"", nil},
		{"   ", nil},
		{`''`, nil},
		{`a 'b`, nil},
		{`a "b`, nil},
		{`a "b\"`, nil},
		{`a \`, nil},
	}
	for _, tc := range cases {
		got, err := splitCommandLine(tc.in)
		if tc.want == nil {
			require.Error(t, err, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

// upShellQuote quotes args for splitCommandLine (and sh).
func upShellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func FuzzSplitCommandLine(f *testing.F) {
	for _, s := range []string{"node a.js", `a "b c" 'd'`, `x\ y`, `"unterminated`, "\x00", `a\`, `'it'\''s'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitCommandLine(s)
		if err == nil {
			require.NotEmpty(t, args)
			require.NotEmpty(t, args[0])
		}
		// Round trip: any words, quoted, split back to themselves.
		words := strings.Split(s, "\x00")
		if words[0] == "" {
			return
		}
		got, err := splitCommandLine(upShellQuote(words))
		require.NoError(t, err)
		require.Equal(t, words, got)
	})
}

func TestMirrorTool(t *testing.T) {
	obj := func(props map[string]any) map[string]any {
		return map[string]any{"type": "object", "properties": props}
	}
	cases := []struct {
		name                      string
		tool                      *mcp.Tool
		wantErr                   bool
		alias, readOnly, repaired bool
	}{
		{"official query_graph", &mcp.Tool{Name: "query_graph", InputSchema: obj(map[string]any{"graphName": map[string]any{}, "params": map[string]any{}})}, false, true, false, false},
		{"official query_graph_readonly", &mcp.Tool{Name: "query_graph_readonly", InputSchema: obj(map[string]any{"params": map[string]any{}})}, false, true, true, false},
		{"both names in schema", &mcp.Tool{Name: "q", InputSchema: obj(map[string]any{"params": map[string]any{}, "parameters": map[string]any{}})}, false, false, false, false},
		{"read-only hint", &mcp.Tool{Name: "r", InputSchema: obj(nil), Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, false, false, true, false},
		{"idempotent hint", &mcp.Tool{Name: "r", InputSchema: obj(nil), Annotations: &mcp.ToolAnnotations{IdempotentHint: true}}, false, false, true, false},
		{"no type: repaired", &mcp.Tool{Name: "u", InputSchema: map[string]any{"properties": map[string]any{}}}, false, false, false, true},
		{"raw JSON schema", &mcp.Tool{Name: "j", InputSchema: json.RawMessage(`{"type":"object"}`)}, false, false, false, false},
		{"string schema", &mcp.Tool{Name: "s", InputSchema: map[string]any{"type": "string"}}, true, false, false, false},
		{"array type", &mcp.Tool{Name: "s", InputSchema: map[string]any{"type": []any{"object", "null"}}}, true, false, false, false},
		{"schema not an object", &mcp.Tool{Name: "s", InputSchema: []any{1}}, true, false, false, false},
		{"no schema", &mcp.Tool{Name: "s"}, true, false, false, false},
		{"no name", &mcp.Tool{InputSchema: obj(nil)}, true, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mirrorTool(tc.tool)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.alias, m.aliasParams, "alias")
			require.Equal(t, tc.readOnly, m.readOnly, "readOnly")
			require.Equal(t, tc.repaired, m.repaired, "repaired")
			require.NotSame(t, tc.tool, m.tool)
			require.NoError(t, addToolSafely(mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil), m.tool,
				func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return nil, errors.New("unused")
				}))
		})
	}
}

// TestUpstreamThroughProxy runs the whole proxy (newProxy, from the
// environment) in upstream mode in front of the official server, over both
// client transports, with /readyz following the upstream.
func TestUpstreamThroughProxy(t *testing.T) {
	upOfficialInstall(t)
	db := falkortest.Start(t)
	off := startUpOfficial(t, db)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"UPSTREAM_URL": off.URL(), "UPSTREAM_TOKEN": off.key}))
	tenant := db.Namespace() + "p"
	token := iss.token(tenant, "read write")

	for _, kind := range []string{"streamable", "sse"} {
		cs := connect(t, tp.url, kind, token)
		graph := "g" + kind
		upOK(t, cs, "query_graph", map[string]any{"graphName": graph, "query": createQuery, "parameters": map[string]any{"name": kind}})
		require.Contains(t, upOK(t, cs, "query_graph_readonly", map[string]any{"graphName": graph, "query": "MATCH (n:Probe) RETURN n.name AS name"}), `"`+kind+`"`)
		require.Contains(t, upGraphList(t, db), tenant+"_"+graph)
	}
	cs := connect(t, tp.url, "streamable", token)
	require.Equal(t, []string{"gsse", "gstreamable"}, upLinesOf(upOK(t, cs, "list_graphs", map[string]any{})))

	code, _, body := get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"upstream":"ok"`)

	off.stop()
	code, _, body = get(t, tp.url+"/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, `"upstream":"unavailable"`)
	res := upCall(t, cs, "list_graphs", map[string]any{})
	require.True(t, res.IsError)
	require.Equal(t, msgUpstreamUnavailable, upText(res))
}

// TestUpstreamTransportKeepsConnections: concurrent calls through the
// proxy reuse idle connections to the upstream instead of opening new ones.
func TestUpstreamTransportKeepsConnections(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // keep the calls in flight together
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	client := &http.Client{Transport: newUpstreamHTTPTransport()}
	for range 5 {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
	}
	// Go's default transport keeps 2 idle connections per host, so each
	// round of 16 would open about 14 new ones.
	require.LessOrEqual(t, opened.Load(), int32(16+4), "connections opened for 5 rounds of 16 concurrent calls")
}
