package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// writeFile replaces path atomically.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path+".tmp", []byte(body), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
}

// planToken mints a token whose "plan" claim names a plan.
func (i *issuer) planToken(tenant, scopes, plan string) string {
	c := authntest.Claims(i.jwks.URL, i.aud, tenant, time.Now(), time.Hour)
	c["scope"], c["plan"] = scopes, plan
	return i.key.Mint(c)
}

const testPolicy = `{
 "defaultPlan": "free", "planClaim": "plan",
 "plans": {
  "free": {"graphs": ["g*"], "maxGraphs": 2, "rate": 1000, "burst": 1000, "maxRows": 3, "queryTimeout": "5s"},
  "tiny": {"maxGraphMemory": "1B", "rate": 1000, "burst": 1000},
  "small": {"maxTotalMemory": "1B", "rate": 1000, "burst": 1000},
  "ro": {"scopes": ["read"], "rate": 1000, "burst": 1000},
  "quick": {"queryTimeout": "100ms", "rate": 1000, "burst": 1000}
 }
}`

// TestPolicyAndQuotas runs the plans of a policy file against the real
// FalkorDB: allow-list, graph count, rows, memory, scope intersection.
func TestPolicyAndQuotas(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	path := filepath.Join(t.TempDir(), "policy.json")
	writeFile(t, path, testPolicy)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"POLICY_FILE": path, "ADMIN_TOKEN": adminToken}))
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write admin"))
	exists := func(key string) bool {
		n, err := db.Redis(t).Exists(context.Background(), key).Result()
		require.NoError(t, err)
		return n == 1
	}
	refused := func(cs *mcp.ClientSession, tool string, args map[string]any, want ...string) {
		t.Helper()
		res, err := call(t, cs, tool, args)
		require.NoError(t, err)
		require.True(t, res.IsError, text(res))
		for _, w := range want {
			require.Contains(t, text(res), w)
		}
		require.NotContains(t, text(res), ta+"_")
	}

	t.Run("allow-list", func(t *testing.T) {
		refused(a, "falkordb_query", map[string]any{"graphName": "other", "query": "CREATE ()"}, `does not allow graph "other"`)
		require.False(t, exists(ta+"_other"))
	})
	t.Run("graph count", func(t *testing.T) {
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g1", "query": "UNWIND range(1, 10) AS i CREATE (:N {i: i})"})
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g2", "query": "CREATE ()"})
		refused(a, "falkordb_query", map[string]any{"graphName": "g3", "query": "CREATE ()"}, `plan "free" allows at most 2 graphs (maxGraphs)`)
		require.False(t, exists(ta+"_g3"))
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g2", "query": "CREATE ()"}) // existing graphs take writes
		mustCall(t, a, "falkordb_delete_graph", map[string]any{"graphName": "g2", "confirm": true})
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g3", "query": "CREATE ()"})
	})
	t.Run("rows", func(t *testing.T) {
		res := mustCall(t, a, "falkordb_ro_query", map[string]any{"graphName": "g1", "query": "MATCH (n:N) RETURN n.i ORDER BY n.i"})
		require.Contains(t, structured(t, res), `"rows":[[1],[2],[3]]`)
		require.Contains(t, structured(t, res), `"truncated":true`)
	})
	t.Run("graph memory", func(t *testing.T) {
		b := connect(t, tp.url, "streamable", iss.planToken(tb, "read write", "tiny"))
		// FalkorDB reports whole MiB: a small graph uses "0 B".
		mustCall(t, b, "falkordb_query", map[string]any{"graphName": "m", "query": "CREATE (:N {s: 'x'})"})
		mustCall(t, b, "falkordb_query", map[string]any{"graphName": "m", "query": "UNWIND range(1, 60000) AS i CREATE (:N {i: i, s: 'some text to take room'})"})
		refused(b, "falkordb_query", map[string]any{"graphName": "m", "query": "CREATE ()"}, `plan "tiny" allows 1 B per graph (maxGraphMemory) and graph "m" uses`)
		mustCall(t, b, "falkordb_ro_query", map[string]any{"graphName": "m", "query": "MATCH (n) RETURN count(n)"}) // reads stay allowed
		mustCall(t, b, "falkordb_query", map[string]any{"graphName": "m2", "query": "CREATE ()"})                   // other graphs too
		// Other tenants are unaffected.
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g1", "query": "CREATE ()"})
	})
	t.Run("total memory", func(t *testing.T) {
		c := connect(t, tp.url, "streamable", iss.planToken(db.Namespace()+"-c", "read write", "small"))
		mustCall(t, c, "falkordb_query", map[string]any{"graphName": "m", "query": "UNWIND range(1, 60000) AS i CREATE (:N {i: i, s: 'some text to take room'})"})
		refused(c, "falkordb_query", map[string]any{"graphName": "n", "query": "CREATE ()"}, "(maxTotalMemory)")
	})
	t.Run("scopes are the token's and the plan's", func(t *testing.T) {
		ro := connect(t, tp.url, "streamable", iss.planToken(db.Namespace()+"-d", "read write admin", "ro"))
		require.NotContains(t, toolNames(t, ro), "falkordb_delete_graph")
		res, err := call(t, ro, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE ()"})
		require.NoError(t, err)
		require.True(t, res.IsError, "routed to the read-only tool, where FalkorDB refuses the write")
		require.False(t, exists(db.Namespace()+"-d_g"))
	})
	t.Run("query timeout", func(t *testing.T) {
		q := connect(t, tp.url, "streamable", iss.planToken(db.Namespace()+"-q", "read write", "quick"))
		mustCall(t, q, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE ()"})
		start := time.Now()
		res, err := call(t, q, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "UNWIND range(1, 200000000) AS x WITH x WHERE x % 7 = 0 RETURN count(x)"})
		require.NoError(t, err)
		require.True(t, res.IsError, text(res))
		require.Contains(t, strings.ToLower(text(res)), "timeout")
		require.Less(t, time.Since(start), 5*time.Second, "FalkorDB stopped the query at the plan's timeout")
	})
	t.Run("unknown plan claim", func(t *testing.T) {
		x := connect(t, tp.url, "streamable", iss.planToken(db.Namespace()+"-e", "read write", "gold"))
		refused(x, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "RETURN 1"}, "no plan of this server admits the tenant")
	})
}

// TestPolicyReloadUnderLoad rewrites the policy file while clients call:
// every call is answered, the reloads are logged, a bad file keeps the old
// policy, and /admin/policy shows the version every replica runs.
func TestPolicyReloadUnderLoad(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	path := filepath.Join(t.TempDir(), "policy.json")
	policy := func(extra string) string {
		return `{"defaultPlan": "p", "plans": {"p": {"graphs": ["g", "` + extra + `"], "rate": 10000, "burst": 10000}}}`
	}
	writeFile(t, path, policy("a0"))
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"POLICY_FILE": path, "POLICY_WATCH": "10ms", "ADMIN_TOKEN": adminToken}))
	ta, _ := tenants(db)
	tok := iss.token(ta, "read write")
	mustCall(t, connect(t, tp.url, "streamable", tok), "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE ()"})

	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		cs := connect(t, tp.url, "streamable", tok)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "falkordb_ro_query", Arguments: map[string]any{"graphName": "g", "query": "MATCH (n) RETURN count(n)"}})
				calls.Add(1)
				if err != nil || res.IsError {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		if i == 10 {
			writeFile(t, path, `{"plans": {"p": {"graphz": []}}}`)
			require.Eventually(t, func() bool { return strings.Contains(tp.logs.String(), "previous policy stays") }, 5*time.Second, 5*time.Millisecond)
		}
		writeFile(t, path, policy("a"+string(rune('a'+i))))
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load(), "of %d calls", calls.Load())
	require.Greater(t, calls.Load(), int64(20))
	require.Greater(t, strings.Count(tp.logs.String(), "policy reloaded"), 5)

	require.Eventually(t, func() bool {
		code, body := admin(t, "GET", tp.url+"/admin/policy", nil)
		require.Equal(t, http.StatusOK, code)
		var out struct {
			Replica  string
			Version  string
			Replicas map[string]struct{ Version string }
		}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		return len(out.Version) == 64 && out.Version == tp.policy.Version() && out.Replicas[out.Replica].Version == out.Version
	}, 5*time.Second, 20*time.Millisecond)
}
