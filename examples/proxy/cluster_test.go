package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
	"github.com/tenantgraph/tenantgraph/graphname"
)

// startLiteCluster starts a FalkorDB Redis Cluster of 3 primaries with one
// replica each, stopped when the test ends.
func startLiteCluster(t *testing.T) *lite.Cluster {
	t.Helper()
	return falkortest.StartCluster(t, lite.ClusterOptions{
		Options:            lite.Options{Password: "scaleout-pw"},
		Primaries:          3,
		ReplicasPerPrimary: 1,
		NodeTimeout:        time.Second,
	})
}

// jtiOf reads the "jti" claim of a signed token (already verified by its
// issuer: the test minted it).
func jtiOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		JTI string `json:"jti"`
	}
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.NotEmpty(t, claims.JTI)
	return claims.JTI
}

// TestScaleOutCluster is the end-to-end test of issue 10: two proxy
// replicas on a 3-primary FalkorDB Redis Cluster (one replica each), 20
// tenants whose graphs spread over all primaries, isolation and attack
// cases through both replicas, a shared revocation list and rate limit,
// and a primary killed and replaced mid-run.
func TestScaleOutCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node FalkorDB cluster")
	}
	cl := startLiteCluster(t)
	ctx := context.Background()
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Password: cl.Password()})
	t.Cleanup(func() { admin.Close() })

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	ns := "so" + hex.EncodeToString(rnd[:])
	iss := newIssuer(t)
	addrs := cl.Addrs()
	env := merge(iss.env(), map[string]string{
		"FALKORDB_URL":           "redis://:" + cl.Password() + "@" + addrs[0],
		"FALKORDB_CLUSTER_ADDRS": strings.Join(addrs[1:], ","),
		"RATE_LIMIT":             "off",
		"CONCURRENCY_LIMIT":      "0",
		"QUERY_TIMEOUT":          "5s",
		"REVOCATION":             "off", // on in its own subtest: see the README on revocation during a failover
		"RATE_LIMIT_PREFIX":      ns + ":ratelimit:",
	})
	proxies := []*testProxy{startProxyEnv(t, env), startProxyEnv(t, env)}
	for _, p := range proxies {
		require.True(t, p.dbACL, "per-tenant ACL users on every node")
		code, _, body := get(t, p.url+"/readyz", "")
		require.Equal(t, http.StatusOK, code, body)
	}

	// 20 tenants, two graphs each, written through alternating replicas.
	res := graphname.Default()
	const nTenants = 20
	tenantIDs := make([]string, nTenants)
	sessions := make([][2]*mcp.ClientSession, nTenants) // per tenant, one per replica
	perPrimary := map[string]int{}
	graphs := []string{"g1", "shared"}
	for i := range tenantIDs {
		tn := fmt.Sprintf("%s-t%02d", ns, i)
		tenantIDs[i] = tn
		tok := iss.token(tn, "read write")
		for r, p := range proxies {
			sessions[i][r] = connect(t, p.url, "streamable", tok)
		}
		for j, g := range graphs {
			mustCall(t, sessions[i][(i+j)%2], "falkordb_query", map[string]any{"graphName": g, "query": createQuery, "parameters": map[string]any{"name": "MARK-" + tn}})
			key, err := res.Resolve(tn, g)
			require.NoError(t, err)
			perPrimary[falkortest.SlotOwner(t, admin, cl, key).ID]++
		}
	}
	for _, p := range cl.Primaries() {
		require.NotZero(t, perPrimary[p.ID], "primary with slots %v holds no tenant graph", p.Slots)
	}
	t.Logf("%d tenant graphs per primary: %v", nTenants*len(graphs), perPrimaryCounts(cl, perPrimary))

	t.Run("each tenant lists exactly its graphs through either replica", func(t *testing.T) {
		for i := range tenantIDs {
			for r := range proxies {
				require.Equal(t, graphs, listGraphs(t, sessions[i][r]), "tenant %d via replica %d", i, r)
			}
		}
	})

	t.Run("a same-named graph shows only the caller's nodes", func(t *testing.T) {
		for i, tn := range tenantIDs {
			r := mustCall(t, sessions[i][i%2], "falkordb_ro_query", map[string]any{"graphName": "shared", "query": "MATCH (n) RETURN collect(n.name) AS names"})
			require.Equal(t, fmt.Sprintf(`{"columns":["names"],"rows":[[["MARK-%s"]]]}`, tn), compactRows(t, r))
		}
	})

	t.Run("attack cases", func(t *testing.T) {
		victim, attacker := tenantIDs[0], tenantIDs[1]
		a := sessions[1][0]
		forbidden := []string{"MARK-" + victim, victim + "_", "goroutine ", ".go:", "panic", "runtime."}
		for _, addr := range addrs {
			forbidden = append(forbidden, addr, addr[strings.LastIndex(addr, ":"):])
		}
		physical, err := res.Resolve(victim, "shared")
		require.NoError(t, err)
		names := []string{physical, "../" + physical, victim + "_*", "*", "{" + victim + "}shared", physical + "\x00", "shared{" + victim + "_}", " " + physical}
		cases := 0
		for _, g := range names {
			for _, call := range []struct {
				tool string
				args map[string]any
			}{
				{"falkordb_ro_query", map[string]any{"graphName": g, "query": "MATCH (n) RETURN n.name"}},
				{"falkordb_query", map[string]any{"graphName": g, "query": "MATCH (n) SET n.name = 'pwned' RETURN n.name"}},
				{"falkordb_graph_schema", map[string]any{"graphName": g}},
				{"falkordb_delete_graph", map[string]any{"graphName": g, "confirm": true}},
			} {
				r, err := call2(t, a, call.tool, call.args)
				answer := r
				if err != nil {
					answer = err.Error()
				}
				// The attacker's own input, echoed back (possibly quoted), is
				// not a leak.
				for _, echo := range []string{strconv.Quote(g), g} {
					answer = strings.ReplaceAll(answer, strings.Trim(echo, `"`), "")
				}
				for _, f := range forbidden {
					require.NotContains(t, answer, f, "%s(%q): the answer leaks %q", call.tool, g, f)
				}
				cases++
			}
		}
		// Queries that try to reach other keys from inside Cypher.
		for _, q := range []string{
			"CALL db.labels() YIELD label RETURN label",
			"MATCH (n) RETURN n.name",
			"CALL dbms.procedures() YIELD name RETURN count(name)",
			"LOAD CSV FROM 'file:///etc/passwd' AS r RETURN r",
		} {
			r, err := call2(t, a, "falkordb_query", map[string]any{"graphName": "shared", "query": q})
			if err != nil {
				r = err.Error()
			}
			for _, f := range forbidden {
				require.NotContains(t, r, f, "query %q leaks %q", q, f)
			}
			cases++
		}
		// The attacker's list holds its own graphs, plus graphs of its own
		// that its writes created under the names it gave (in its namespace).
		for _, g := range listGraphs(t, a) {
			require.True(t, slices.Contains(graphs, g) || slices.Contains(names, g), "the attacker sees %q", g)
		}
		require.Equal(t, graphs, listGraphs(t, sessions[0][1]), "the victim's list is unchanged")
		// The victim's graphs are intact, on whichever primary they live.
		for _, g := range graphs {
			key, _ := res.Resolve(victim, g)
			rows, err := admin.Do(ctx, "GRAPH.RO_QUERY", key, "MATCH (n) RETURN count(n), collect(n.name)").Result()
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint([]any{int64(1), []any{"MARK-" + victim}}), fmt.Sprint(rows.([]any)[1].([]any)[0]), "victim graph %s", g)
		}
		t.Logf("attack cases: %d (attacker %s, victim %s)", cases, attacker, victim)
	})

	t.Run("the attack suite of the isolation issue, unchanged", func(t *testing.T) {
		runAttacks(t, newAttackBenchOn(t, proxies[1], iss, admin, ns+"-victim", ns+"-attacker", addrs...))
	})

	t.Run("revocation is shared by both replicas", func(t *testing.T) {
		renv := merge(env, map[string]string{"REVOCATION": "redis", "REVOCATION_PREFIX": ns + ":revoked:"})
		revoking := []*testProxy{startProxyEnv(t, renv), startProxyEnv(t, renv)}
		tok := iss.token(tenantIDs[2], "read")
		code, _, _ := postJSON(t, revoking[0].url+"/mcp", tok, toolsList)
		require.Equal(t, http.StatusOK, code, "the token works before revocation")
		rev, err := authn.NewRedisRevocation(admin, authn.RedisRevocationOptions{Prefix: ns + ":revoked:"})
		require.NoError(t, err)
		require.NoError(t, rev.Revoke(ctx, jtiOf(t, tok), time.Now().Add(time.Hour)))
		// Replica 1 never saw the token: it asks the shared store.
		code, _, _ = postJSON(t, revoking[1].url+"/mcp", tok, toolsList)
		require.Equal(t, http.StatusUnauthorized, code, "a token revoked in the shared store is refused by the other replica")
		code, _, _ = postJSON(t, revoking[1].url+"/mcp", iss.token(tenantIDs[2], "read"), toolsList)
		require.Equal(t, http.StatusOK, code, "another token of the same tenant still works")
	})

	t.Run("shared rate limit across both replicas", func(t *testing.T) {
		const perMinute, burst, perClient, clients = 6, 10, 5, 3
		renv := merge(env, map[string]string{"RATE_LIMIT": "6/min", "RATE_BURST": "10", "RATE_LIMIT_PREFIX": ns + ":rl2:"})
		limited := []*testProxy{startProxyEnv(t, renv), startProxyEnv(t, renv)}
		tok := iss.token(tenantIDs[3], "read")
		var css []*mcp.ClientSession
		for _, p := range limited {
			for range clients {
				css = append(css, connect(t, p.url, "streamable", tok))
			}
		}
		var mu sync.Mutex
		ok, refused := 0, 0
		var wg sync.WaitGroup
		start := time.Now()
		for _, cs := range css {
			wg.Go(func() {
				for range perClient {
					r, err := call(t, cs, "falkordb_list_graphs", map[string]any{})
					mu.Lock()
					switch {
					case err != nil:
						t.Errorf("call failed: %v", err)
					case !r.IsError:
						ok++
					case strings.Contains(text(r), "rate limit"):
						refused++
					default:
						t.Errorf("unexpected tool error: %s", text(r))
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		bound := burst + int(math.Ceil(perMinute*elapsed.Minutes()))
		t.Logf("rate limit: %d calls over %v through 2 replicas: %d ran, %d rate-limited (bound %d)", len(css)*perClient, elapsed, ok, refused, bound)
		require.Equal(t, len(css)*perClient, ok+refused)
		require.LessOrEqual(t, ok, bound, "the limit holds across both replicas")
		require.GreaterOrEqual(t, ok, burst, "the burst is available")
	})

	t.Run("usage counters add up across both replicas", func(t *testing.T) {
		tn := ns + "-usage"
		tok := iss.token(tn, "read write")
		calls := map[int]int{0: 7, 1: 5}
		for r, n := range calls {
			cs := connect(t, proxies[r].url, "streamable", tok)
			for range n {
				mustCall(t, cs, "falkordb_list_graphs", map[string]any{})
			}
		}
		for _, p := range proxies {
			require.NoError(t, p.usage.Flush(ctx))
		}
		rep, err := proxies[1].usage.Report(ctx, tn, 1)
		require.NoError(t, err)
		require.EqualValues(t, 12, rep.Total.Calls)
	})

	t.Run("backup, erase and restore a tenant whose graphs are on several primaries", func(t *testing.T) {
		tn, i := tenantIDs[5], 5
		before := compactRows(t, mustCall(t, sessions[i][0], "falkordb_ro_query", map[string]any{"graphName": "shared", "query": "MATCH (n) RETURN collect(n.name) AS names"}))
		var buf bytes.Buffer
		n, err := proxies[0].ops.backup(ctx, tn, &buf)
		require.NoError(t, err)
		require.Equal(t, len(graphs), n)
		e, err := proxies[1].ops.erase(ctx, tn)
		require.NoError(t, err)
		require.ElementsMatch(t, graphs, e.Graphs)
		require.Zero(t, e.Remaining, "no key of the tenant on any primary")
		require.Empty(t, listGraphs(t, sessions[i][1]))
		_, err = proxies[0].ops.restore(ctx, &buf, tn)
		require.NoError(t, err)
		require.Equal(t, graphs, listGraphs(t, sessions[i][1]))
		after := compactRows(t, mustCall(t, sessions[i][1], "falkordb_ro_query", map[string]any{"graphName": "shared", "query": "MATCH (n) RETURN collect(n.name) AS names"}))
		require.Equal(t, before, after)
		// The tenant's database user was dropped on every node under
		// replica 0's pool: a call racing the server closing the user's
		// connections may fail once as unavailable; then the user is set
		// up again.
		write := map[string]any{"graphName": "g1", "query": "CREATE ()"}
		r, err := call(t, sessions[i][0], "falkordb_query", write)
		require.NoError(t, err)
		if r.IsError {
			require.Contains(t, text(r), "unavailable")
			mustCall(t, sessions[i][0], "falkordb_query", write)
		}
	})

	t.Run("a primary killed and replaced by its replica", func(t *testing.T) {
		failoverScenario(t, cl, admin, proxies, tenantIDs, sessions)
	})
}

// failoverScenario kills the primary that holds one tenant's graph, promotes
// its replica (CLUSTER FAILOVER TAKEOVER) after a while, and writes numbered
// markers through one replica all along: calls to the failed slots fail with
// "FalkorDB unavailable" and succeed again without restarting the proxies,
// calls to other primaries keep working, and every successful write is in the
// graph exactly once while no failed one is.
func failoverScenario(t *testing.T, cl *lite.Cluster, admin *redis.ClusterClient, proxies []*testProxy, tenantIDs []string, sessions [][2]*mcp.ClientSession) {
	ctx := context.Background()
	res := graphname.Default()
	// The victim primary holds tenant 0's "g1"; find a tenant whose "g1" is
	// elsewhere, to show the other primaries keep serving.
	key0, _ := res.Resolve(tenantIDs[0], "g1")
	victim := falkortest.SlotOwner(t, admin, cl, key0)
	other := -1
	for i, tn := range tenantIDs {
		k, _ := res.Resolve(tn, "g1")
		if falkortest.SlotOwner(t, admin, cl, k).ID != victim.ID {
			other = i
			break
		}
	}
	require.NotEqual(t, -1, other)
	replicas := cl.ReplicasOf(victim)
	require.Len(t, replicas, 1)

	cs := sessions[0][0]
	write := func(cs *mcp.ClientSession, i int) (*mcp.CallToolResult, error) {
		return call(t, cs, "falkordb_query", map[string]any{"graphName": "g1", "query": "CREATE (:Mk {i: $i})", "parameters": map[string]any{"i": i}})
	}
	var succeeded, failed []int
	next := 0
	for range 5 {
		r, err := write(cs, next)
		require.NoError(t, err)
		require.False(t, r.IsError, text(r))
		succeeded = append(succeeded, next)
		next++
	}
	// The replica has every acknowledged write before the kill.
	pc := redis.NewClient(&redis.Options{Addr: victim.Addr(), Password: cl.Password(), MaxRetries: -1})
	n, err := pc.Do(ctx, "WAIT", 1, 5000).Int()
	pc.Close()
	require.NoError(t, err)
	require.Equal(t, 1, n)

	require.NoError(t, victim.Kill())
	killed := time.Now()
	var promoted time.Time
	var recovered time.Duration
	gapErrors, otherOK := 0, 0
	readyzDown := false
	for time.Since(killed) < 30*time.Second {
		if promoted.IsZero() && time.Since(killed) > time.Second {
			code, _, body := get(t, proxies[1].url+"/readyz", "")
			readyzDown = code == http.StatusServiceUnavailable && strings.Contains(body, `"falkordb":"unreachable"`)
			require.NoError(t, cl.Failover(ctx, replicas[0]))
			promoted = time.Now()
		}
		r, err := write(cs, next)
		require.NoError(t, err, "a tool error, not a transport error")
		if !r.IsError {
			succeeded = append(succeeded, next)
			recovered = time.Since(killed)
			next++
			break
		}
		msg := text(r)
		require.Contains(t, msg, "FalkorDB unavailable", "a clear, retriable error")
		for _, a := range cl.Addrs() {
			require.NotContains(t, msg, a)
		}
		failed = append(failed, next)
		gapErrors++
		next++
		// Another primary's tenant is served during the gap.
		if r := mustCall(t, sessions[other][1], "falkordb_ro_query", map[string]any{"graphName": "g1", "query": "RETURN 1"}); !r.IsError {
			otherOK++
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NotZero(t, recovered, "calls to the failed primary's slots recover without restarting the proxy")
	require.NotZero(t, gapErrors, "the gap was observed")
	require.True(t, readyzDown, "/readyz reports the missing primary during the gap")
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, cl.WaitHealthy(hctx))

	// The other replica recovers too (its slot map may still name the dead
	// primary: at most a few retriable errors).
	var viaOther int
	for attempt := 1; attempt <= 10; attempt++ {
		r, err := write(sessions[0][1], next)
		require.NoError(t, err)
		if !r.IsError {
			succeeded = append(succeeded, next)
			viaOther = attempt
			next++
			break
		}
		require.Contains(t, text(r), "FalkorDB unavailable")
		failed = append(failed, next)
		next++
		time.Sleep(200 * time.Millisecond)
	}
	require.NotZero(t, viaOther, "the second replica recovers")
	var readyAgain bool
	for range 50 {
		if code, _, _ := get(t, proxies[1].url+"/readyz", ""); code == http.StatusOK {
			readyAgain = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.True(t, readyAgain, "/readyz recovers")

	// Every successful write is there once; no failed one ran.
	r := mustCall(t, sessions[0][1], "falkordb_ro_query", map[string]any{"graphName": "g1", "query": "MATCH (n:Mk) RETURN n.i ORDER BY n.i"})
	var got []int
	var out struct {
		Rows [][]float64 `json:"rows"`
	}
	raw, err := json.Marshal(r.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &out))
	for _, row := range out.Rows {
		got = append(got, int(row[0]))
	}
	slices.Sort(succeeded)
	require.Equal(t, succeeded, got, "each acknowledged write exactly once, failed writes never (failed: %v)", failed)
	t.Logf("failover: %d failed calls during the gap (all \"FalkorDB unavailable\"), %d calls to another primary served meanwhile; "+
		"kill->recovery %v (takeover issued after %v; takeover->recovery %v); second replica recovered on attempt %d; %d writes, each once",
		gapErrors, otherOK, recovered.Round(time.Millisecond), promoted.Sub(killed).Round(time.Millisecond),
		(recovered - promoted.Sub(killed)).Round(time.Millisecond), viaOther, len(succeeded))
}

// call2 calls a tool and returns all the caller sees of the answer.
func call2(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, error) {
	t.Helper()
	r, err := call(t, cs, name, args)
	if err != nil {
		return "", err
	}
	return text(r) + structured(t, r), nil
}

// compactRows returns the columns and rows of a query result as JSON.
func compactRows(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	raw, err := json.Marshal(r.StructuredContent)
	require.NoError(t, err)
	var out struct {
		Columns json.RawMessage `json:"columns"`
		Rows    json.RawMessage `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return string(b)
}

// perPrimaryCounts lists the graph count of each primary by its slot range.
func perPrimaryCounts(cl *lite.Cluster, perPrimary map[string]int) []string {
	var out []string
	for _, p := range cl.Primaries() {
		out = append(out, fmt.Sprintf("slots %d-%d: %d", p.Slots[0], p.Slots[1], perPrimary[p.ID]))
	}
	return out
}
