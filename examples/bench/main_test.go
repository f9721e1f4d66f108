package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// TestMain lets the test binary serve as the floor server (system f), as
// the bench binary does: setupFloor starts its own executable.
func TestMain(m *testing.M) {
	if spec := os.Getenv(floorEnv); spec != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := serveFloor(ctx, spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "floor server:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// TestTinyRun runs the whole program in a tiny mode against its own
// FalkorDB: falkordb-go direct, the proxy (cache on and off) and the floor
// server, every workload, two concurrencies. It builds examples/proxy, so it is skipped
// under -short.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the proxy and FalkorDB: not with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := lite.FindBinaries(ctx, lite.Options{}); err != nil {
		if os.Getenv("FALKORDB_REQUIRED") == "1" {
			t.Fatalf("FalkorDB binaries: %v", err)
		}
		t.Skipf("no FalkorDB binaries: %v", err)
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-calls", "20", "-warmup", "5", "-only", "a,b,f", "-concurrency", "1,4"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr: %s\nstdout: %s", &stderr, &stdout)
	out := stdout.String()
	require.NotContains(t, out, "FAILED")
	require.NotContains(t, out, "skipped")
	for _, sys := range []string{"a", "b", "b-nocache", "f"} {
		for _, wl := range []string{"lookup", "hop2", "write"} {
			for _, conc := range []string{"1", "4"} {
				// system | workload | conc | calls | calls/s | p50 | p99 | server CPU
				re := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(sys) + ` \| ` + wl + ` \| ` + conc + ` \| 20 \| \d+ \| \d+\.\d\d \| \d+\.\d\d \| \d+ \|.*\|$`)
				require.Regexp(t, re, out, "row %s %s %s", sys, wl, conc)
			}
		}
	}
	// The proxy's own counters prove which path every call took.
	require.Equal(t, 6, strings.Count(out, "token cache hits 20/20"), out)
	require.Equal(t, 6, strings.Count(out, "token cache hits 0/20"), out)
	// (a) is its own reference; the proxy is compared with it.
	require.Regexp(t, regexp.MustCompile(`(?m)^\| a \| lookup \| 1 \| .*\| client \d+ \(\d+\.\d KiB\) \| 1 \|`), out)
	require.Regexp(t, regexp.MustCompile(`(?m)^\| b \| lookup \| 1 \| .*\| proxy \d+ \(\d+\.\d KiB\) \| \d+\.\d\d \| — \|`), out)
	require.Contains(t, out, "lookup c=1: proxy CPU")
	// Measured interleaved: each workload and concurrency on every system
	// in turn (the progress lines say the order).
	var order []string
	for _, m := range regexp.MustCompile(`(?m)^bench: (\S+)\s+(\S+)\s+c=(\d+) `).FindAllStringSubmatch(stderr.String(), -1) {
		order = append(order, m[1]+" "+m[2]+" "+m[3])
	}
	var want []string
	for _, wl := range []string{"lookup", "hop2", "write"} {
		for _, conc := range []string{"1", "4"} {
			for _, sys := range []string{"a", "b", "b-nocache", "f"} {
				want = append(want, sys+" "+wl+" "+conc)
			}
		}
	}
	require.Equal(t, want, order, "measurement order")
	require.Regexp(t, regexp.MustCompile(`(?m)^\| f \| hop2 \| 4 \| .*\| floor \d+ · falkordb \d+ \|`), out)
	require.Regexp(t, `lookup c=4: proxy CPU \d+ µs/call .*; the floor \(f\) \d+ µs/call, the proxy's own work above it -?\d+ µs/call`, out)
}

// TestMissingPeers: peers that are not installed are reported as skipped,
// with the reason, and the run still succeeds.
func TestMissingPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FalkorDB: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := lite.FindBinaries(ctx, lite.Options{}); err != nil {
		if os.Getenv("FALKORDB_REQUIRED") == "1" {
			t.Fatalf("FalkorDB binaries: %v", err)
		}
		t.Skipf("no FalkorDB binaries: %v", err)
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-only", "c,d,e", "-interop", t.TempDir(), "-calls", "5", "-warmup", "1", "-concurrency", "1", "-q"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr: %s", &stderr)
	out := stdout.String()
	for _, sys := range []string{"c", "d", "e"} {
		require.Regexp(t, regexp.MustCompile(`(?m)^\| `+sys+` \|( \|)+ skipped: \S.* is not installed in .*install\.sh \|$`), out, "system %s", sys)
	}
	require.NotRegexp(t, regexp.MustCompile(`(?m)^\| [cde] \| lookup`), out, "no measured row for a missing peer")
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(t *testing.T, o options)
		wantErr string
	}{
		{name: "defaults", want: func(t *testing.T, o options) {
			require.Equal(t, systemOrder, o.only)
			require.Equal(t, []int{1, 16}, o.concurrency)
			require.Equal(t, []string{"lookup", "hop2", "write"}, o.workloads)
		}},
		{name: "b means both caches", args: []string{"-only", "a,b"}, want: func(t *testing.T, o options) {
			require.Equal(t, []string{"a", "b", "b-nocache"}, o.only)
		}},
		{name: "proxy env", args: []string{"-proxy-env", "GOGC=400", "-proxy-env", "GOMAXPROCS=1"}, want: func(t *testing.T, o options) {
			require.Equal(t, []string{"GOGC=400", "GOMAXPROCS=1"}, o.proxyEnv)
		}},
		{name: "proxy overlay", args: []string{"-proxy-overlay", "ov.json"}, want: func(t *testing.T, o options) {
			require.Equal(t, "ov.json", o.proxyOverlay)
		}},
		{name: "unknown system", args: []string{"-only", "z"}, wantErr: `unknown system "z"`},
		{name: "bad concurrency", args: []string{"-concurrency", "1,x"}, wantErr: "-concurrency"},
		{name: "zero calls", args: []string{"-calls", "0"}, wantErr: "-calls"},
		{name: "unknown workload", args: []string{"-workloads", "scan"}, wantErr: "unknown workload"},
		{name: "bad proxy env", args: []string{"-proxy-env", "GOGC"}, wantErr: "NAME=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want(t, o)
		})
	}
}

func TestCountRows(t *testing.T) {
	officialText := `{\"metadata\": [\"Cached execution: 1\"], \"data\": [{\"id\": 1}, {\"id\": 2}]}`
	tests := []struct {
		name    string
		body    string
		rows    int
		wantErr string
	}{
		{name: "falkor tools, event stream",
			body: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"...\"}],\"structuredContent\":{\"columns\":[\"x\"],\"rows\":[[1],[2],[3]]}}}\n\n",
			rows: 3},
		{name: "official server, text result",
			body: `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + officialText + `"}]}}`,
			rows: 2},
		{name: "no rows",
			body: `{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"columns":["x"],"rows":[]}}}`},
		{name: "notification before the answer",
			body: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"structuredContent\":{\"rows\":[[1]]}}}\n\n",
			rows: 1},
		{name: "stream without answer", body: "event: message\ndata: {}\n\n", wantErr: "no result"},
		{name: "no content", body: `{"result":{}}`, wantErr: "no content"},
		{name: "text not JSON", body: `{"result":{"content":[{"type":"text","text":"oops"}]}}`, wantErr: "decoding the result text"},
		{name: "not JSON", body: `{"result":`, wantErr: "decoding the answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := countRows([]byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.rows, n)
		})
	}
}

func FuzzCountRows(f *testing.F) {
	f.Add([]byte(`{"result":{"structuredContent":{"rows":[[1]]}}}`))
	f.Add([]byte("event: message\ndata: {\"result\":{\"content\":[{\"text\":\"{\\\"data\\\":[]}\"}]}}\n\n"))
	f.Add([]byte("data: \"result\"\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := countRows(body)
		if err == nil && n < 0 {
			t.Fatalf("negative row count %d", n)
		}
	})
}

func TestProcAccounting(t *testing.T) {
	// The test process itself: busy work shows up as CPU time.
	pid := os.Getpid()
	before, err := sampleCPU(pid)
	require.NoError(t, err)
	var spent time.Duration
	for end := time.Now().Add(time.Minute); spent < 30*time.Millisecond && time.Now().Before(end); {
		for x := 0; x < 1e6; x++ {
			sink += x
		}
		after, err := sampleCPU(pid)
		require.NoError(t, err)
		spent = after.sub(before)
		require.GreaterOrEqual(t, spent, time.Duration(0))
	}
	require.GreaterOrEqual(t, spent, 30*time.Millisecond, "busy work not seen in /proc")
	require.NoError(t, resetPeakRSS(pid))
	rss, err := peakRSS(pid)
	require.NoError(t, err)
	require.Positive(t, rss)
	_, err = sampleCPU(1 << 30)
	require.Error(t, err, "a pid that does not exist")
}

var sink int

func TestCPUSampleSub(t *testing.T) {
	tests := []struct {
		name          string
		before, after cpuSample
		want          time.Duration
	}{
		{"precise figure", cpuSample{stat: 100 * clockTick, sched: time.Second}, cpuSample{stat: 110 * clockTick, sched: time.Second + 101*time.Millisecond}, 101 * time.Millisecond},
		{"threads exited: coarse figure", cpuSample{stat: 100 * clockTick, sched: time.Second}, cpuSample{stat: 150 * clockTick, sched: time.Second + 10*time.Millisecond}, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.after.sub(tt.before))
		})
	}
}
