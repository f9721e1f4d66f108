package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The systems, in the order they run.
var systemOrder = []string{"a", "b", "b-nocache", "c", "d", "e", "f"}

// systemTitles describe the systems in the report.
var systemTitles = map[string]string{
	"a":         "falkordb-go straight to FalkorDB (the floor)",
	"b":         "examples/proxy, Streamable HTTP, RS256 JWT, token cache on",
	"b-nocache": "examples/proxy, Streamable HTTP, RS256 JWT, token cache off",
	"c":         "official @falkordb/mcpserver 1.3.0, Streamable HTTP, API key",
	"d":         "examples/proxy in upstream mode in front of (c)",
	"e":         "FastMCP 4.2.3 proxy with JWTVerifier in front of (c)",
	"f":         "the floor of a Go proxy here: net/http and one go-redis call per request, nothing else (no token, MCP SDK, tenancy or log; see floor.go)",
}

// tracked is a server process whose CPU and memory the report shows.
type tracked struct {
	name string
	pid  int
}

// target is a system ready to be measured.
type target struct {
	procs []tracked
	// newWorker makes one simulated client for wl.
	newWorker func(ctx context.Context, wl workload) (worker, error)
	// uniqueTokens: every call carries a freshly minted token (the token
	// cache can then never answer).
	uniqueTokens bool
	metricsURL   string // a Go server's Prometheus endpoint (allocations, cache hits), or ""
	inProcess    bool   // the load generator is the system's client (a): its allocations count
	note         string
	close        func()
}

// bench holds what every system shares.
type bench struct {
	opts     options
	log      func(format string, args ...any)
	kids     *children
	dir      string
	modRoot  string
	interop  string // the interop install directory
	iss      *issuer
	tenant   string // the token's sub, the tenant id
	graph    string // the graph's name as a tenant sees it
	physical string // FalkorDB key of the graph
	fdbAddr  string // 127.0.0.1:port of FalkorDB
	fdbPass  string
	fdbPid   int
	rdb      *redis.Client

	proxyBin      string
	proxyErr      error
	proxyHasCache bool // the proxy has a TOKEN_CACHE setting

	official    *officialServer
	officialErr error
}

// officialServer is the running official FalkorDB MCP server (c), shared by
// (c), (d) and (e).
type officialServer struct {
	child *child
	url   string
	key   string
}

// setup starts system name, or says why it cannot run (skip != "").
func (b *bench) setup(ctx context.Context, name string) (t *target, skip string, err error) {
	switch name {
	case "a":
		return b.setupDirect(), "", nil
	case "b", "b-nocache":
		return b.setupProxy(ctx, name == "b")
	case "c":
		return b.setupOfficial(ctx)
	case "d":
		return b.setupUpstream(ctx)
	case "e":
		return b.setupFastMCP(ctx)
	case "f":
		return b.setupFloor(ctx)
	}
	return nil, "", fmt.Errorf("unknown system %q", name)
}

func (b *bench) fdbTracked() tracked { return tracked{"falkordb", b.fdbPid} }

func (b *bench) setupDirect() *target {
	return &target{
		procs: []tracked{b.fdbTracked()},
		newWorker: func(_ context.Context, wl workload) (worker, error) {
			return newDirectWorker(b.fdbAddr, b.fdbPass, b.physical, wl)
		},
		inProcess: true,
		close:     func() {},
	}
}

// mcpWorkers adapts an MCP endpoint to target.newWorker.
func mcpWorkers(ep string, f mcpFlavor, auth string, conc int) (func(context.Context, workload) (worker, error), func(), error) {
	t, err := newMCPTarget(ep, f, auth, conc)
	if err != nil {
		return nil, nil, err
	}
	cache := map[string][][]byte{}
	tools := map[string]string{}
	return func(ctx context.Context, wl workload) (worker, error) {
		bodies, ok := cache[wl.Name]
		if !ok {
			var err error
			if bodies, tools[wl.Name], err = t.bodies(wl); err != nil {
				return nil, err
			}
			cache[wl.Name] = bodies
		}
		return t.newWorker(ctx, wl, bodies, tools[wl.Name])
	}, t.transport.CloseIdleConnections, nil
}

// Proxy (b, d).

// buildProxy builds examples/proxy once.
func (b *bench) buildProxy(ctx context.Context) (string, error) {
	if b.proxyBin != "" || b.proxyErr != nil {
		return b.proxyBin, b.proxyErr
	}
	if b.opts.proxyBin != "" {
		b.proxyBin = b.opts.proxyBin
	} else {
		bin := filepath.Join(b.dir, "proxy")
		args := []string{"build", "-o", bin}
		if b.opts.proxyOverlay != "" {
			args = append(args, "-overlay", b.opts.proxyOverlay)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, "./examples/proxy")...)
		cmd.Dir = b.modRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			b.proxyErr = fmt.Errorf("go build ./examples/proxy: %v: %s", err, strings.TrimSpace(string(out)))
			return "", b.proxyErr
		}
		b.proxyBin = bin
	}
	help, _ := exec.CommandContext(ctx, b.proxyBin, "-help").CombinedOutput()
	b.proxyHasCache = strings.Contains(string(help), "TOKEN_CACHE")
	return b.proxyBin, nil
}

// proxyEnv is the proxy's configuration for the benchmark: the
// benchmark's issuer, no rate or concurrency limits (they would measure
// the limiter, not the path).
func (b *bench) proxyEnv(extra ...string) []string {
	return childEnv(append([]string{
		"LISTEN_ADDR=127.0.0.1:0",
		"BEARER_ISSUER=" + b.iss.url,
		"BEARER_AUDIENCE=" + b.iss.audience,
		"BEARER_JWKS_URI=" + b.iss.JWKSURL(),
		"BEARER_ALGORITHM=RS256",
		"RATE_LIMIT=off",
		"CONCURRENCY_LIMIT=0",
		"LOG_LEVEL=" + b.opts.proxyLogLevel,
	}, append(extra, b.opts.proxyEnv...)...)...)
}

var reProxyEndpoint = regexp.MustCompile(`MCP endpoint: (http://\S+)`)

// startProxy starts the proxy binary bin with env and returns the child and
// its MCP endpoint.
func (b *bench) startProxy(ctx context.Context, name, bin string, env []string) (*child, string, error) {
	return b.startServer(ctx, name, bin, env, reProxyEndpoint, 60*time.Second)
}

// startServer starts bin with env and waits until its stdout has a line
// matching ready, whose first submatch (the endpoint) it returns.
func (b *bench) startServer(ctx context.Context, name, bin string, env []string, ready *regexp.Regexp, timeout time.Duration) (*child, string, error) {
	c, err := b.kids.start(name, env, "", bin)
	if err != nil {
		return nil, "", err
	}
	ep, err := c.waitFor(ctx, c.stdout, ready, timeout)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	return c, ep, nil
}

// proxyTarget starts the proxy binary bin with the bench's environment plus
// extra, mints the tenant's token and prepares workers speaking flavor f;
// the target tracks the proxy and then others.
func (b *bench) proxyTarget(ctx context.Context, name, bin string, extra []string, f mcpFlavor, others ...tracked) (*target, error) {
	c, ep, err := b.startProxy(ctx, name, bin, b.proxyEnv(extra...))
	if err != nil {
		return nil, err
	}
	tok, err := b.iss.mint(b.tenant)
	if err != nil {
		c.stop()
		return nil, err
	}
	nw, closeIdle, err := mcpWorkers(ep, f, "Bearer "+tok, 16)
	if err != nil {
		c.stop()
		return nil, err
	}
	return &target{
		procs:      append([]tracked{{"proxy", c.Pid()}}, others...),
		newWorker:  nw,
		metricsURL: strings.TrimSuffix(ep, "/mcp") + "/metrics",
		close:      func() { closeIdle(); c.stop() },
	}, nil
}

func (b *bench) setupProxy(ctx context.Context, cache bool) (*target, string, error) {
	bin, err := b.buildProxy(ctx)
	if err != nil {
		return nil, err.Error(), nil
	}
	name := "proxy"
	var extra []string
	emulate := false
	if !cache {
		name = "proxy-nocache"
		if b.proxyHasCache {
			extra = append(extra, "TOKEN_CACHE=off")
		} else {
			emulate = true
		}
	} else if b.proxyHasCache {
		extra = append(extra, "TOKEN_CACHE=on")
	}
	extra = append(extra, "FALKORDB_URL="+b.fdbURL())
	f := mcpFlavor{ReadTool: "falkordb_ro_query", WriteTool: "falkordb_query", Graph: b.graph, ParamsKey: "parameters", Stateless: true}
	t, err := b.proxyTarget(ctx, name, bin, extra, f, b.fdbTracked())
	if err != nil {
		return nil, "", err
	}
	t.uniqueTokens = emulate
	if emulate {
		t.note = "examples/proxy has no setting for its verified-token cache (authn.Config.Cache is always set), so cache off is emulated: " +
			"every call carries a freshly minted token, which the proxy verifies in full (the cache then only stores, never answers)"
	}
	return t, "", nil
}

func (b *bench) fdbURL() string {
	if b.fdbPass == "" {
		return "redis://" + b.fdbAddr
	}
	return "redis://:" + b.fdbPass + "@" + b.fdbAddr
}

// The official server (c) and the systems in front of it (d, e).

func (b *bench) interopSrc() string {
	return filepath.Join(b.modRoot, "examples", "proxy", "testdata", "interop")
}

var reOfficialListening = regexp.MustCompile(`INTEROP_LISTENING 127\.0\.0\.1:(\d+)`)

// startOfficial starts the official server once, on loopback with an API key.
func (b *bench) startOfficial(ctx context.Context) (*officialServer, error) {
	if b.official != nil || b.officialErr != nil {
		return b.official, b.officialErr
	}
	b.officialErr = func() error {
		node, err := exec.LookPath("node")
		if err != nil {
			return errSkip("node is not on PATH (the official server needs Node.js >= 20)")
		}
		index := filepath.Join(b.interop, "node", "node_modules", "@falkordb", "mcpserver", "dist", "index.js")
		if _, err := os.Stat(index); err != nil {
			return errSkip("@falkordb/mcpserver is not installed in " + b.interop + ": run examples/proxy/testdata/interop/install.sh")
		}
		host, port, _ := strings.Cut(b.fdbAddr, ":")
		keyb := make([]byte, 16)
		rand.Read(keyb)
		key := hex.EncodeToString(keyb)
		env := childEnv("NODE_ENV=production", "MCP_TRANSPORT=http", "MCP_PORT=0", "MCP_API_KEY="+key,
			"FALKORDB_HOST="+host, "FALKORDB_PORT="+port)
		if b.fdbPass != "" {
			env = append(env, "FALKORDB_PASSWORD="+b.fdbPass)
		}
		// Its working directory is an empty temp dir: it loads ./.env.
		c, err := b.kids.start("official", env, "", node, "--require", filepath.Join(b.interopSrc(), "loopback.cjs"), index)
		if err != nil {
			return err
		}
		p, err := c.waitFor(ctx, c.stderr, reOfficialListening, 30*time.Second)
		if err != nil {
			c.stop()
			return err
		}
		b.official = &officialServer{child: c, url: "http://127.0.0.1:" + p + "/mcp", key: key}
		return nil
	}()
	return b.official, b.officialErr
}

// errSkip marks a peer that is missing on this machine.
type errSkip string

func (e errSkip) Error() string { return string(e) }

// skipOrErr splits a start error into a skip reason or an error.
func skipOrErr(err error) (string, error) {
	var s errSkip
	if errors.As(err, &s) {
		return string(s), nil
	}
	return "", err
}

func (b *bench) officialTracked() tracked { return tracked{"node", b.official.child.Pid()} }

func (b *bench) setupOfficial(ctx context.Context) (*target, string, error) {
	o, err := b.startOfficial(ctx)
	if err != nil {
		skip, err := skipOrErr(err)
		return nil, skip, err
	}
	f := mcpFlavor{ReadTool: "query_graph_readonly", WriteTool: "query_graph", Graph: b.physical, ParamsKey: "params"}
	nw, closeIdle, err := mcpWorkers(o.url, f, "Bearer "+o.key, 16)
	if err != nil {
		return nil, "", err
	}
	return &target{
		procs:     []tracked{b.officialTracked(), b.fdbTracked()},
		newWorker: nw,
		close:     closeIdle,
	}, "", nil
}

func (b *bench) setupUpstream(ctx context.Context) (*target, string, error) {
	o, err := b.startOfficial(ctx)
	if err != nil {
		skip, err := skipOrErr(err)
		return nil, "needs (c): " + skip, err
	}
	bin, err := b.buildProxy(ctx)
	if err != nil {
		return nil, err.Error(), nil
	}
	extra := []string{"UPSTREAM_URL=" + o.url, "UPSTREAM_TOKEN=" + o.key}
	if b.proxyHasCache {
		extra = append(extra, "TOKEN_CACHE=on")
	}
	f := mcpFlavor{ReadTool: "query_graph_readonly", WriteTool: "query_graph", Graph: b.graph, ParamsKey: "params", Stateless: true}
	t, err := b.proxyTarget(ctx, "proxy-upstream", bin, extra, f, b.officialTracked(), b.fdbTracked())
	if err != nil {
		return nil, "", err
	}
	return t, "", nil
}

var reFastMCPListening = regexp.MustCompile(`FASTMCP_PROXY_LISTENING (http://\S+)`)

func (b *bench) setupFastMCP(ctx context.Context) (*target, string, error) {
	py := filepath.Join(b.interop, "fastmcp", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		return nil, "fastmcp is not installed in " + b.interop + ": run INTEROP_FASTMCP=1 examples/proxy/testdata/interop/install.sh", nil
	}
	o, err := b.startOfficial(ctx)
	if err != nil {
		skip, err := skipOrErr(err)
		return nil, "needs (c): " + skip, err
	}
	env := childEnv("UPSTREAM_URL="+o.url, "UPSTREAM_API_KEY="+o.key,
		"BEARER_JWKS_URI="+b.iss.JWKSURL(), "BEARER_ISSUER="+b.iss.url, "BEARER_AUDIENCE="+b.iss.audience,
		"PROXY_PORT=0", "PYTHONDONTWRITEBYTECODE=1")
	if b.opts.fastmcpReuse {
		env = append(env, "PROXY_REUSE_UPSTREAM=1")
	}
	c, err := b.kids.start("fastmcp", env, "", py, filepath.Join(b.interopSrc(), "fastmcp_proxy.py"))
	if err != nil {
		return nil, "", err
	}
	ep, err := c.waitFor(ctx, c.stdout, reFastMCPListening, 90*time.Second)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	if err := waitHTTP(ctx, ep, 30*time.Second); err != nil {
		c.stop()
		return nil, "", err
	}
	tok, err := b.iss.mint(b.tenant)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	f := mcpFlavor{ReadTool: "query_graph_readonly", WriteTool: "query_graph", Graph: b.physical, ParamsKey: "params"}
	nw, closeIdle, err := mcpWorkers(ep, f, "Bearer "+tok, 16)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	note := "FastMCP's default: a fresh upstream session (initialize, call, DELETE) for every call"
	if b.opts.fastmcpReuse {
		note = "PROXY_REUSE_UPSTREAM=1: one upstream session shared by all callers"
	}
	return &target{
		procs:     []tracked{{"python", c.Pid()}, b.officialTracked(), b.fdbTracked()},
		newWorker: nw,
		note:      note,
		close:     func() { closeIdle(); c.stop() },
	}, "", nil
}

// waitHTTP waits until url answers HTTP at all (the listening line comes
// just before the server accepts).
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeMetrics reads the named counters (exact series names, labels
// included) from a Prometheus text endpoint.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") || !want[line[:i]] {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
