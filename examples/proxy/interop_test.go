package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// Interop tests: clients nobody here wrote, installed by
// testdata/interop/install.sh into TENANTGRAPH_INTEROP_DIR (default
// os.UserCacheDir()/tenantgraph/interop). Missing installs skip the test
// with the reason, or fail it when FALKORDB_REQUIRED=1.

// interopDir returns the install directory after checking that what the
// test needs is there.
func interopDir(t *testing.T, need ...string) string {
	t.Helper()
	dir := os.Getenv("TENANTGRAPH_INTEROP_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			missing(t, "no user cache directory: %v", err)
		}
		dir = filepath.Join(cache, "tenantgraph", "interop")
	}
	for _, n := range need {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err != nil {
			missing(t, "%s is missing: run examples/proxy/testdata/interop/install.sh (or set TENANTGRAPH_INTEROP_DIR)", p)
		}
	}
	return dir
}

// missing skips the test, or fails it when FALKORDB_REQUIRED=1 (CI).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(falkortest.EnvRequired) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func lookNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not on PATH (Node.js >= 20 runs the TypeScript SDK client and mcp-remote)")
	}
	return node
}

// scriptResult is the line the interop client scripts print.
type scriptResult struct {
	Tools    []string        `json:"tools"`
	Query    json.RawMessage `json:"query"`
	Graphs   []string        `json:"graphs"`
	Protocol string          `json:"protocol"`
	Error    *string         `json:"error"`
}

// runScript runs an interop client script with the proxy's URL, a token
// and a graph (through the environment, never argv) and parses its output.
func runScript(t *testing.T, prog []string, env []string) scriptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog[0], prog[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "%s\nstdout: %s\nstderr: %s", strings.Join(prog, " "), stdout.String(), stderr.String())
	var res scriptResult
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res), "stdout: %s", stdout.String())
	require.Nil(t, res.Error)
	return res
}

// interopSetup starts a proxy and puts a graph of another tenant in place,
// which the client under test must never see.
func interopSetup(t *testing.T, stateless bool) (tp *testProxy, iss *issuer, tenant string) {
	db := falkortest.Start(t)
	iss = newIssuer(t)
	tp = startProxy(t, db, merge(iss.env(), map[string]string{"STATELESS": strconv.FormatBool(stateless)}))
	tenant, other := tenants(db)
	o := connect(t, tp.url, "streamable", iss.token(other, "read write"))
	mustCall(t, o, "falkordb_query", map[string]any{"graphName": "others", "query": createQuery, "parameters": map[string]any{"name": "not-yours"}})
	return tp, iss, tenant
}

// checkScript asserts what every client must see: the tools, its query's
// answer and exactly its own graph.
func checkScript(t *testing.T, res scriptResult, name, graph string) {
	t.Helper()
	require.Contains(t, res.Tools, "falkordb_query")
	require.Contains(t, res.Tools, "falkordb_list_graphs")
	require.NotContains(t, res.Tools, "falkordb_delete_graph", "no admin scope")
	require.Contains(t, string(res.Query), `"`+name+`"`, "the query ran with its parameter")
	require.Equal(t, []string{graph}, res.Graphs, "only the tenant's own graph")
	require.NotContains(t, string(res.Query), "not-yours")
}

// TestInteropTypeScriptSDK: the official TypeScript SDK client over
// Streamable HTTP, stateless and stateful.
func TestInteropTypeScriptSDK(t *testing.T) {
	dir := interopDir(t, "node/node_modules/@modelcontextprotocol/sdk")
	node := lookNode(t)
	script, err := filepath.Abs("testdata/interop/ts_client.mjs")
	require.NoError(t, err)
	for _, stateless := range []bool{true, false} {
		t.Run("stateless="+strconv.FormatBool(stateless), func(t *testing.T) {
			tp, iss, tenant := interopSetup(t, stateless)
			res := runScript(t, []string{node, script}, []string{
				"INTEROP_NODE_DIR=" + filepath.Join(dir, "node"),
				"INTEROP_URL=" + tp.url + "/mcp",
				"INTEROP_TOKEN=" + iss.token(tenant, "read write"),
				"INTEROP_GRAPH=ts",
			})
			checkScript(t, res, "ts-sdk", "ts")
		})
	}
}

// TestInteropPythonSDK: the official Python SDK client (mcp 2.x, which
// probes server/discover first), stateless and stateful.
func TestInteropPythonSDK(t *testing.T) {
	dir := interopDir(t, "py/bin/python")
	script, err := filepath.Abs("testdata/interop/py_client.py")
	require.NoError(t, err)
	for _, stateless := range []bool{true, false} {
		t.Run("stateless="+strconv.FormatBool(stateless), func(t *testing.T) {
			tp, iss, tenant := interopSetup(t, stateless)
			res := runScript(t, []string{filepath.Join(dir, "py/bin/python"), script}, []string{
				"INTEROP_URL=" + tp.url + "/mcp",
				"INTEROP_TOKEN=" + iss.token(tenant, "read write"),
				"INTEROP_GRAPH=py",
			})
			checkScript(t, res, "py-sdk", "py")
		})
	}
}

// TestInteropMCPRemote: mcp-remote, as Claude Desktop runs it (the seed's
// configuration), driven as a stdio server by the go-sdk client. The token
// reaches it through its own ${VAR} expansion, never argv.
func TestInteropMCPRemote(t *testing.T) {
	dir := interopDir(t, "node/node_modules/mcp-remote/dist/proxy.js")
	node := lookNode(t)
	tp, iss, tenant := interopSetup(t, true)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "node/node_modules/mcp-remote/dist/proxy.js"),
		tp.url+"/mcp",
		"--header", "Authorization: Bearer ${TG_INTEROP_TOKEN}",
		"--transport", "http-only")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"TG_INTEROP_TOKEN="+iss.token(tenant, "read write"),
		"MCP_REMOTE_CONFIG_DIR="+t.TempDir(),
		"BROWSER=true", "DISPLAY=", "WAYLAND_DISPLAY=")
	stderr := &syncBuffer{} // written by a copying goroutine while the test reads it
	cmd.Stderr = stderr
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "0"}, nil).
		Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}, nil)
	require.NoError(t, err, "mcp-remote: %s", stderr.String())
	defer func() {
		cs.Close()
		if t.Failed() {
			t.Logf("mcp-remote stderr:\n%s", stderr.String())
		}
	}()

	names := toolNames(t, cs)
	require.Contains(t, names, "falkordb_query")
	require.Contains(t, names, "falkordb_list_graphs")
	res := mustCall(t, cs, "falkordb_query", map[string]any{"graphName": "remote", "query": createQuery, "parameters": map[string]any{"name": "mcp-remote"}})
	require.Contains(t, text(res), "mcp-remote")
	require.Equal(t, []string{"remote"}, listGraphs(t, cs), "only the tenant's own graph")
}
