package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// buildBinary builds this command into a temporary directory, with the race
// detector when the tests run with it (so the build reuses their cache).
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "proxy")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, ".")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// childEnv is the environment of the program under test: the inherited
// one without any of the proxy's settings (so that it runs with its
// defaults), plus extra.
func childEnv(extra ...string) []string {
	drop := map[string]bool{"UPSTREAM_TOKEN": true}
	for _, o := range options {
		drop[o.env] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// banner is what the program prints on stdout at start.
type banner struct {
	endpoint, alpha, beta string
	desktop               map[string]map[string]struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	}
	text string
}

var (
	endpointLine = regexp.MustCompile(`^MCP endpoint: (\S+)$`)
	tokenLine    = regexp.MustCompile(`^(tenant-alpha|tenant-beta) token \(`)
)

// readBanner parses the banner from stdout, then keeps draining it.
func readBanner(t *testing.T, stdout io.Reader) banner {
	t.Helper()
	type result struct {
		b   banner
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var b banner
		var all, js strings.Builder
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		want := ""
		inJSON := false
		for sc.Scan() {
			line := sc.Text()
			all.WriteString(line + "\n")
			switch {
			case want != "":
				if want == "tenant-alpha" {
					b.alpha = line
				} else {
					b.beta = line
				}
				want = ""
			case endpointLine.MatchString(line):
				b.endpoint = endpointLine.FindStringSubmatch(line)[1]
			case tokenLine.MatchString(line):
				want = tokenLine.FindStringSubmatch(line)[1]
			case strings.HasPrefix(line, "Claude Desktop"):
				inJSON = true
			case inJSON:
				js.WriteString(line + "\n")
				if line == "}" {
					b.text = all.String()
					err := json.Unmarshal([]byte(js.String()), &b.desktop)
					ch <- result{b, err}
					io.Copy(io.Discard, stdout)
					return
				}
			}
		}
		ch <- result{b, io.ErrUnexpectedEOF}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err, "banner: %s", r.b.text)
		return r.b
	case <-time.After(2 * time.Minute):
		t.Fatal("no banner on stdout")
		return banner{}
	}
}

// program is the built proxy running in a child process.
type program struct {
	cmd     *exec.Cmd
	stdout  io.Reader
	stderr  func() string // what it logged so far
	exited  chan struct{} // closed when it exited; then waitErr is set
	waitErr error
}

// startProgram starts bin with env; it is killed when the test ends if it
// is still running.
func startProgram(t *testing.T, bin string, env []string) *program {
	t.Helper()
	pr := &program{cmd: exec.Command(bin), exited: make(chan struct{})}
	pr.cmd.Env = env
	stdout, err := pr.cmd.StdoutPipe()
	require.NoError(t, err)
	pr.stdout = stdout
	// stderr goes to a file: no copying goroutine for Wait to wait for.
	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	t.Cleanup(func() { errFile.Close() })
	pr.cmd.Stderr = errFile
	pr.stderr = func() string { b, _ := os.ReadFile(errFile.Name()); return string(b) }
	require.NoError(t, pr.cmd.Start())
	go func() { pr.waitErr = pr.cmd.Wait(); close(pr.exited) }()
	t.Cleanup(func() {
		select {
		case <-pr.exited:
		default:
			pr.cmd.Process.Kill()
			<-pr.exited
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", pr.stderr())
		}
	})
	return pr
}

// runQuickStart runs the README's quick start against the built program:
// start it with no configuration but env, read the printed tokens, create a
// graph as tenant-alpha, list it, check that tenant-beta sees nothing of it
// and cannot write, then SIGTERM it and expect a clean exit.
func runQuickStart(t *testing.T, bin string, env []string, graph string) {
	pr := startProgram(t, bin, env)
	stdout, cmd, exited, stderr := pr.stdout, pr.cmd, pr.exited, pr.stderr

	b := readBanner(t, stdout)
	require.Contains(t, b.text, "DEVELOPMENT ONLY")
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/mcp$`, b.endpoint)
	fb := b.desktop["mcpServers"]["falkordb"]
	require.Equal(t, "npx", fb.Command)
	require.Equal(t, []string{"mcp-remote", b.endpoint, "--header", "Authorization: Bearer ${AUTH_TOKEN}"}, fb.Args)
	require.Equal(t, b.alpha, fb.Env["AUTH_TOKEN"], "the pasted config carries tenant-alpha's token")
	base := strings.TrimSuffix(b.endpoint, "/mcp")

	alpha := connect(t, base, "streamable", b.alpha)
	beta := connect(t, base, "streamable", b.beta)
	mustCall(t, alpha, "falkordb_query", map[string]any{"graphName": graph, "query": createQuery, "parameters": map[string]any{"name": "alpha-data"}})
	require.Contains(t, listGraphs(t, alpha), graph)
	require.NotContains(t, listGraphs(t, beta), graph, "tenant-beta cannot see tenant-alpha's graph")
	res, err := call(t, beta, "falkordb_ro_query", map[string]any{"graphName": graph, "query": "MATCH (n) RETURN n.name"})
	require.NoError(t, err)
	require.True(t, res.IsError, "tenant-beta's %q is its own, missing graph", graph)
	require.NotContains(t, text(res), "alpha-data")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, pr.waitErr, "clean exit after SIGTERM")
	case <-time.After(time.Minute):
		t.Fatal("no exit after SIGTERM")
	}
	logs := stderr()
	require.Contains(t, logs, `"msg":"stopped"`)
	require.Contains(t, logs, "DEVELOPMENT ONLY", "the logs say it too")
	for _, tok := range []string{b.alpha, b.beta} {
		require.NotContains(t, logs, tok, "tokens are printed to stdout, never logged")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		require.True(t, json.Valid([]byte(line)), "not a JSON log line: %s", line)
	}
}

// TestQuickStart is the README quick start, run against the built program:
// with the test's FalkorDB, and exactly as a newcomer runs it, with no
// FALKORDB_URL, so that the program starts its own FalkorDB (falkor/lite).
func TestQuickStart(t *testing.T) {
	bin := buildBinary(t)
	t.Run("FALKORDB_URL", func(t *testing.T) {
		db := falkortest.Start(t)
		graph := db.Graph("quick")
		t.Cleanup(func() {
			// tenant-alpha's keys are outside the test's namespace.
			db.Redis(t).Del(context.Background(), devTenantRW+"_"+graph)
		})
		runQuickStart(t, bin, childEnv("LISTEN_ADDR=127.0.0.1:0", "FALKORDB_URL="+db.URL), graph)
	})
	t.Run("SIGHUP reloads POLICY_FILE", func(t *testing.T) {
		db := falkortest.Start(t)
		path := filepath.Join(t.TempDir(), "policy.json")
		policy := func(graph string) string {
			return `{"defaultPlan": "p", "plans": {"p": {"graphs": ["` + graph + `"]}}}`
		}
		writeFile(t, path, policy(db.Graph("a")))
		pr := startProgram(t, bin, childEnv("LISTEN_ADDR=127.0.0.1:0", "FALKORDB_URL="+db.URL, "POLICY_FILE="+path, "POLICY_WATCH=0"))
		b := readBanner(t, pr.stdout)
		alpha := connect(t, strings.TrimSuffix(b.endpoint, "/mcp"), "streamable", b.alpha)
		graph := db.Graph("b")
		t.Cleanup(func() { db.Redis(t).Del(context.Background(), devTenantRW+"_"+graph) })
		write := map[string]any{"graphName": graph, "query": "CREATE ()"}
		res, err := call(t, alpha, "falkordb_query", write)
		require.NoError(t, err)
		require.True(t, res.IsError, "not in the plan's graphs")

		writeFile(t, path, policy(graph))
		require.NoError(t, pr.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Contains(pr.stderr(), `"msg":"policy reloaded"`) }, 10*time.Second, 10*time.Millisecond)
		mustCall(t, alpha, "falkordb_query", write)

		writeFile(t, path, `{"plans": `)
		require.NoError(t, pr.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Contains(pr.stderr(), "the previous policy stays in force") }, 10*time.Second, 10*time.Millisecond)
		mustCall(t, alpha, "falkordb_query", write)

		require.NoError(t, pr.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-pr.exited:
			require.NoError(t, pr.waitErr, "clean exit after SIGTERM")
		case <-time.After(time.Minute):
			t.Fatal("no exit after SIGTERM")
		}
	})
	t.Run("embedded", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a second FalkorDB")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := lite.FindBinaries(ctx, lite.Options{NoProvision: true}); err != nil {
			if os.Getenv(falkortest.EnvRequired) == "1" {
				t.Fatalf("FalkorDB binaries: %v", err)
			}
			t.Skipf("no FalkorDB binaries in the cache (falkor/lite provisions them on first use): %v", err)
		}
		runQuickStart(t, bin, childEnv("LISTEN_ADDR=127.0.0.1:0", "FALKORDB_NO_PROVISION=1"), "quick")
	})
}
