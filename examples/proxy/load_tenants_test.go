package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// TestLoadTenants is the isolation load check: 50 tenants, each with two
// concurrent clients over HTTP (stateless /mcp) against one proxy, write
// markers of their own to a graph every one of them calls "shared", read
// them back and list their graphs, all at once. Every call succeeds (no
// rate limit), every read shows only the caller's own markers, every list
// only the caller's own graph, and at the end each tenant holds exactly the
// markers it wrote, each once. Peak memory is reported, not asserted; no
// timing is asserted.
func TestLoadTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("load check")
	}
	const (
		numTenants = 50
		workers    = 2  // concurrent clients per tenant
		perWorker  = 20 // calls per client: half writes, a quarter reads, a quarter lists
	)
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"RATE_LIMIT": "off", "LOG_LEVEL": "warn"}))

	type client struct {
		tenant string
		worker int
		cs     *mcp.ClientSession
	}
	var clients []client
	names := make([]string, numTenants)
	for i := range names {
		names[i] = fmt.Sprintf("%s-l%02d", db.Namespace(), i)
		tok := iss.token(names[i], "read write")
		for w := range workers {
			clients = append(clients, client{names[i], w, connect(t, tp.url, "streamable", tok)})
		}
	}

	var (
		mu                   sync.Mutex
		calls, errs, foreign int
		samples              []string // first unexpected answers
		writes               = map[string]int{}
	)
	report := func(kind *int, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		*kind++
		if len(samples) < 5 {
			samples = append(samples, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := c.tenant + "/"
			for k := range perWorker {
				var res *mcp.CallToolResult
				var err error
				marker := fmt.Sprintf("%s%d/%d", own, c.worker, k)
				switch k % 4 {
				case 0, 2: // write a marker of this tenant
					res, err = call(t, c.cs, "falkordb_query", map[string]any{
						"graphName": "shared", "query": "CREATE (:Marker {m: $m})", "parameters": map[string]any{"m": marker}})
				case 1: // read every marker back
					res, err = call(t, c.cs, "falkordb_ro_query", map[string]any{
						"graphName": "shared", "query": "MATCH (n:Marker) RETURN n.m AS m"})
				case 3: // list the graphs
					res, err = call(t, c.cs, "falkordb_list_graphs", map[string]any{})
				}
				mu.Lock()
				calls++
				mu.Unlock()
				if err != nil || res.IsError {
					report(&errs, "%s, call %d: %v%s", c.tenant, k, err, errText(res))
					continue
				}
				switch k % 4 {
				case 0, 2:
					mu.Lock()
					writes[marker]++
					mu.Unlock()
				case 1:
					ms, perr := markers(res)
					if perr != nil {
						report(&errs, "%s: unreadable rows: %v", c.tenant, perr)
					}
					for _, m := range ms {
						if !strings.HasPrefix(m, own) {
							report(&foreign, "%s read marker %q", c.tenant, m)
						}
					}
				case 3:
					gs, perr := graphs(res)
					if perr != nil || !slices.Equal(gs, []string{"shared"}) {
						report(&foreign, "%s listed %q (%v)", c.tenant, gs, perr)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d tenants x %d clients x %d calls: %d calls in %v (%.0f calls/s), %d unexpected errors, %d cross-tenant results, database ACL users: %v",
		numTenants, workers, perWorker, calls, elapsed.Round(time.Millisecond), float64(calls)/elapsed.Seconds(), errs, foreign, tp.dbACL)
	require.Equal(t, numTenants*workers*perWorker, calls)
	require.Zero(t, errs, "unexpected errors, first ones: %q", samples)
	require.Zero(t, foreign, "cross-tenant results, first ones: %q", samples)

	// Each tenant's "shared" holds exactly the markers it wrote, each once.
	for i, name := range names {
		res := mustCall(t, clients[i*workers].cs, "falkordb_ro_query", map[string]any{
			"graphName": "shared", "query": "MATCH (n:Marker) RETURN n.m AS m ORDER BY m"})
		got, err := markers(res)
		require.NoError(t, err)
		var want []string
		for w := range workers {
			for k := 0; k < perWorker; k += 2 {
				want = append(want, fmt.Sprintf("%s/%d/%d", name, w, k))
			}
		}
		slices.Sort(want)
		require.Equal(t, want, got, "tenant %s", name)
		for _, m := range want {
			require.Equal(t, 1, writes[m], "marker %s written once", m)
		}
	}

	self := procStatus(t, "self")
	t.Logf("test process (proxy and clients): VmHWM %s, VmRSS %s", self["VmHWM"], self["VmRSS"])
	logFalkorDBMemory(t, db)
}

// markers reads the "m" column of a query result.
func markers(res *mcp.CallToolResult) ([]string, error) {
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil, err
	}
	var out struct {
		Rows [][]any `json:"rows"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	ms := make([]string, 0, len(out.Rows))
	for _, row := range out.Rows {
		if len(row) != 1 {
			return nil, fmt.Errorf("row %v: want one column", row)
		}
		s, ok := row[0].(string)
		if !ok {
			return nil, fmt.Errorf("row %v: want a string", row)
		}
		ms = append(ms, s)
	}
	return ms, nil
}

// graphs reads the graph names of a falkordb_list_graphs result.
func graphs(res *mcp.CallToolResult) ([]string, error) {
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil, err
	}
	var out struct {
		Graphs []string `json:"graphs"`
	}
	err = json.Unmarshal(raw, &out)
	return out.Graphs, err
}

// errText is ": " and the text of a tool error, or "".
func errText(res *mcp.CallToolResult) string {
	if res == nil || !res.IsError {
		return ""
	}
	return ": " + text(res)
}

// procStatus reads the "Key: value" lines of /proc/<pid>/status (nil when
// there is no such file: another system, or a process gone).
func procStatus(t *testing.T, pid string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// logFalkorDBMemory reports the FalkorDB server's peak memory: its own
// account (INFO memory) and, when it runs on this machine, the peak RSS of
// its process. The server is shared by the test binary: the figures cover
// every test run so far.
func logFalkorDBMemory(t *testing.T, db *falkortest.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := db.Redis(t)
	info := map[string]string{}
	for _, section := range []string{"server", "memory"} {
		s, err := rdb.Info(ctx, section).Result()
		if err != nil {
			t.Logf("FalkorDB memory not reported: INFO %s: %v", section, err)
			return
		}
		for line := range strings.SplitSeq(s, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				info[k] = v
			}
		}
	}
	t.Logf("FalkorDB: used_memory_peak %s, used_memory %s", info["used_memory_peak_human"], info["used_memory_human"])
	pid, err := strconv.Atoi(info["process_id"])
	if err != nil {
		return
	}
	st := procStatus(t, strconv.Itoa(pid))
	if st == nil || !strings.Contains(st["Name"], "redis") {
		t.Logf("FalkorDB process %d is not on this machine: no RSS figure", pid)
		return
	}
	t.Logf("FalkorDB redis-server (pid %d): VmHWM %s, VmRSS %s", pid, st["VmHWM"], st["VmRSS"])
}
