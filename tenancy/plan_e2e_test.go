package tenancy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// TestE2EPlans runs plans end to end with real tokens (the plan named by a
// claim), real HTTP and a real FalkorDB: quotas counted in the database,
// concurrent creations that cannot overshoot the graph quota, rows capped
// by the plan.
func TestE2EPlans(t *testing.T) {
	policy, err := tenancy.ParsePolicy([]byte(`{
	  "planClaim": "plan",
	  "plans": {
	    "three": {"maxGraphs": 3, "maxRows": 2},
	    "mem":   {"maxGraphMemory": "1B"}
	  }
	}`))
	require.NoError(t, err)
	s := newStack(t, stackOptions{Stateless: true, Plans: policy})
	mint := func(tenant, plan string) *mcp.ClientSession {
		c := s.idp.claims(tenant, "u", tenancy.ScopeRead, tenancy.ScopeWrite)
		if plan != "" {
			c["plan"] = plan
		}
		return s.session(t, s.idp.key.Mint(c))
	}

	a := s.tenant("a")
	cs := mint(a, "three")
	ok(t, cs, "falkordb_query", map[string]any{"graphName": "g0", "query": "UNWIND range(1, 5) AS i CREATE (:N {i: i})"})
	// Ten concurrent calls each creating another graph: exactly two fit.
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := call(t, cs, "falkordb_query", map[string]any{"graphName": fmt.Sprintf("g%d", i), "query": "CREATE ()"})
			mu.Lock()
			defer mu.Unlock()
			if res.IsError {
				require.Contains(t, textOf(res), `plan "three" allows at most 3 graphs (maxGraphs)`)
				refused++
			} else {
				created++
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 2, created)
	require.Equal(t, 8, refused)
	keys, err := s.check.ListGraphs(context.Background())
	require.NoError(t, err)
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, a+"_") {
			n++
		}
	}
	require.Equal(t, 3, n, "the database holds exactly the quota")

	res := ok(t, cs, "falkordb_ro_query", map[string]any{"graphName": "g0", "query": "MATCH (n:N) RETURN n.i ORDER BY n.i"})
	require.Contains(t, everything(t, res), `"truncated":true`)
	require.Contains(t, everything(t, res), `"rows":[[1],[2]]`)

	// Memory: measured after the first write, enforced on the next.
	// FalkorDB reports whole MiB: a small graph uses "0 B".
	m := mint(s.tenant("m"), "mem")
	ok(t, m, "falkordb_query", map[string]any{"graphName": "x", "query": "CREATE (:N {s: 'abc'})"})
	ok(t, m, "falkordb_query", map[string]any{"graphName": "x", "query": "UNWIND range(1, 60000) AS i CREATE (:N {i: i, s: 'some text to take room'})"})
	res = call(t, m, "falkordb_query", map[string]any{"graphName": "x", "query": "CREATE ()"})
	require.True(t, res.IsError)
	require.Contains(t, textOf(res), "(maxGraphMemory)")
	require.NotContains(t, textOf(res), s.tenant("m")+"_")

	// No plan claim and no default plan: refused.
	none := mint(s.tenant("n"), "")
	res = call(t, none, "falkordb_ro_query", map[string]any{"graphName": "x", "query": "RETURN 1"})
	require.True(t, res.IsError)
	require.Contains(t, textOf(res), "no plan of this server admits the tenant")
}

// TestE2EResultCache: with the cache on, two tenants running the same
// query on same-named graphs each get their own data, and a tenant's write
// is visible to its next read at once.
func TestE2EResultCache(t *testing.T) {
	s := newStack(t, stackOptions{Stateless: true, ResultCache: tenancy.NewResultCache(nil)})
	ta, tb := s.tenant("a"), s.tenant("b")
	a := s.session(t, s.idp.token(ta, "u", tenancy.ScopeRead, tenancy.ScopeWrite))
	b := s.session(t, s.idp.token(tb, "u", tenancy.ScopeRead, tenancy.ScopeWrite))
	ok(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE (:N {owner: 'a'})"})
	ok(t, b, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE (:N {owner: 'b'})"})
	read := func(cs *mcp.ClientSession) string {
		return textOf(ok(t, cs, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "MATCH (n:N) RETURN n.owner ORDER BY n.owner"}))
	}
	before := s.graphs.snapshot()["graph.ro_query"]
	require.Contains(t, read(a), `"a"`)
	require.Contains(t, read(a), `"a"`) // cached
	require.Equal(t, before+1, s.graphs.snapshot()["graph.ro_query"], "the second read came from the cache")
	rb := read(b)
	require.Contains(t, rb, `"b"`)
	require.NotContains(t, rb, `"a"`, "never another tenant's result")
	ok(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE (:N {owner: 'a2'})"})
	require.Contains(t, read(a), `"a2"`, "the write dropped the cached result")
	require.NotContains(t, read(b), `"a2"`)
}
