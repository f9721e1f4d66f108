package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
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
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
	"github.com/tenantgraph/tenantgraph/graphname"
)

const adminToken = "test-admin-token-0123456789abcdef0123456789"

// admin calls an admin endpoint with the admin token (or tok when given).
func admin(t *testing.T, method, url string, body io.Reader, tok ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	auth := adminToken
	if len(tok) > 0 {
		auth = tok[0]
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// seedQueries build two graphs with nodes, edges, an index and properties
// of every type; checkQueries read them back.
var seedQueries = []struct{ graph, query string }{
	{"people", "CREATE INDEX FOR (p:Person) ON (p.id)"},
	{"people", `CREATE (a:Person {id: 1, name: 'Ann', score: 2.5, tags: ['x', 'y'], active: true, born: date('1990-01-02')}),
	             (b:Person:Admin {id: 2, name: 'Bob', score: -1.0, active: false}),
	             (a)-[:KNOWS {since: 2001, w: 0.5}]->(b), (b)-[:KNOWS {since: 2002}]->(a)`},
	{"places", "UNWIND range(1, 200) AS i CREATE (:City {id: i, name: 'c' + toString(i), pos: point({latitude: 1.5, longitude: i % 180})})"},
}

var checkQueries = []struct{ graph, query string }{
	{"people", "MATCH (p:Person) RETURN p ORDER BY p.id"},
	{"people", "MATCH (a)-[r:KNOWS]->(b) RETURN a.name, r, b.name ORDER BY r.since"},
	{"people", "MATCH (p:Admin) RETURN labels(p), p.tags, p.born"},
	{"places", "MATCH (c:City) RETURN c.id, c.name, c.pos ORDER BY c.id"},
	{"places", "MATCH (c:City {id: 7}) RETURN c"},
}

// snapshot returns the data of every check query (columns and rows, not
// the timing statistics) as JSON.
func snapshot(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var out []string
	for _, q := range checkQueries {
		res := mustCall(t, cs, "falkordb_ro_query", map[string]any{"graphName": q.graph, "query": q.query})
		out = append(out, compactRows(t, res))
	}
	return out
}

// TestBackupEraseRestore: a tenant's graphs go to a backup file, the
// tenant is erased (no key left, found by SCAN; the other tenant intact),
// and restoring the file gives back byte-identical query results — in the
// same FalkorDB and in an empty one.
func TestBackupEraseRestore(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	// MAX_BODY_BYTES binds MCP requests, not the admin endpoints' backups.
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"ADMIN_TOKEN": adminToken, "RATE_LIMIT": "1000/s", "MAX_BODY_BYTES": "4096", "RESULT_CACHE": "1m"}))
	ta, tb := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write admin"))
	b := connect(t, tp.url, "streamable", iss.token(tb, "read write"))
	for _, q := range seedQueries {
		mustCall(t, a, "falkordb_query", map[string]any{"graphName": q.graph, "query": q.query})
	}
	mustCall(t, b, "falkordb_query", map[string]any{"graphName": "people", "query": "CREATE (:Person {id: 99})"})
	mustCall(t, a, "tenant_usage", map[string]any{}) // usage counters exist
	want := snapshot(t, a)
	bWant := mustCall(t, b, "falkordb_ro_query", map[string]any{"graphName": "people", "query": "MATCH (p) RETURN p.id"})

	// The admin endpoints need the admin token, never a tenant's.
	code, _ := admin(t, "GET", tp.url+"/admin/backup?tenant="+ta, nil, "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = admin(t, "GET", tp.url+"/admin/backup?tenant="+ta, nil, iss.token(ta, "read write admin"))
	require.Equal(t, http.StatusUnauthorized, code)

	code, backup := admin(t, "GET", tp.url+"/admin/backup?tenant="+ta, nil)
	require.Equal(t, http.StatusOK, code, backup)
	require.Contains(t, backup, `"format": "tenantgraph-backup/1"`)
	require.Greater(t, len(backup), 4096)
	require.NotContains(t, backup, tb, "only the tenant's graphs")

	require.NoError(t, tp.usage.Flush(context.Background()))
	n, err := db.Redis(t).Keys(context.Background(), tp.usage.Keys(ta)).Result()
	require.NoError(t, err)
	require.NotEmpty(t, n, "the tenant has usage counters before the erasure")

	// What else the tenant owns: a database user, a cached result.
	require.True(t, tp.dbACL)
	aclUser := aclUserPrefix + ta + "_"
	users := func() []string {
		u, err := db.Redis(t).Do(context.Background(), "ACL", "USERS").StringSlice()
		require.NoError(t, err)
		return u
	}
	require.Contains(t, users(), aclUser)
	cached := map[string]any{"graphName": "people", "query": "MATCH (p:Person) RETURN count(p)"}
	mustCall(t, a, "falkordb_ro_query", cached)
	mustCall(t, a, "falkordb_ro_query", cached)
	require.Positive(t, tp.cache.Len())

	// Erase: refused without confirmation, then complete.
	code, _ = admin(t, "POST", tp.url+"/admin/erase?tenant="+ta, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, body := admin(t, "POST", tp.url+"/admin/erase?tenant="+ta+"&confirm="+ta, nil)
	require.Equal(t, http.StatusOK, code, body)
	var e erasure
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.ElementsMatch(t, []string{"people", "places"}, e.Graphs)
	require.True(t, e.UsageKeys)
	require.Zero(t, e.Remaining)
	require.True(t, e.DBUser)
	require.NotContains(t, users(), aclUser, "the tenant's database user is gone")
	rdb := db.Redis(t)
	ctx := context.Background()
	var left []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.Contains(iter.Val(), ta) {
			left = append(left, iter.Val())
		}
	}
	require.NoError(t, iter.Err())
	usageKeys, err := rdb.Keys(ctx, tp.usage.Keys(ta)).Result()
	require.NoError(t, err)
	left = append(left, usageKeys...)
	require.Empty(t, left, "erasure leaves no key of the tenant")
	// (After the scan: a call makes a rate-limit key of its own.)
	res, err := call(t, a, "falkordb_ro_query", cached)
	require.NoError(t, err)
	require.True(t, res.IsError, "the cached result went with the graph: %s", text(res))
	require.Empty(t, listGraphs(t, a))
	res = mustCall(t, b, "falkordb_ro_query", map[string]any{"graphName": "people", "query": "MATCH (p) RETURN p.id"})
	require.Equal(t, compactRows(t, bWant), compactRows(t, res), "the other tenant is untouched")

	// Restore: refused for another tenant and for a damaged file.
	code, body = admin(t, "POST", tp.url+"/admin/restore?tenant="+tb, strings.NewReader(backup))
	require.Equal(t, http.StatusBadRequest, code, body)
	damaged := strings.Replace(backup, `"sha256": "`, `"sha256": "0`, 1)
	code, _ = admin(t, "POST", tp.url+"/admin/restore?tenant="+ta, strings.NewReader(damaged))
	require.Equal(t, http.StatusBadRequest, code)
	code, body = admin(t, "POST", tp.url+"/admin/restore?tenant="+ta, strings.NewReader(backup))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, want, snapshot(t, a), "restored results are byte-identical")
	// Restoring over existing graphs is refused and changes nothing.
	code, _ = admin(t, "POST", tp.url+"/admin/restore?tenant="+ta, strings.NewReader(backup))
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, want, snapshot(t, a))

	// Into an empty FalkorDB, with the sub-command.
	file := filepath.Join(t.TempDir(), "a.backup.json")
	require.NoError(t, os.WriteFile(file, []byte(backup), 0o600))
	empty := falkortest.StartServer(t, lite.Options{})
	var stdout, stderr bytes.Buffer
	env := envFunc(map[string]string{"FALKORDB_URL": empty.URL()})
	require.Equal(t, 0, run([]string{"restore", "-file", file}, env, &stdout, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "2 graphs")
	iss2 := newIssuer(t)
	tp2 := startProxyEnv(t, merge(iss2.env(), map[string]string{"FALKORDB_URL": empty.URL()}))
	a2 := connect(t, tp2.url, "streamable", iss2.token(ta, "read"))
	require.Equal(t, want, snapshot(t, a2), "restored into an empty FalkorDB")

	// The sub-commands' own checks.
	for _, args := range [][]string{
		{"erase", "-tenant", ta},                       // no confirmation
		{"erase", "-tenant", ta, "-confirm", ta + "x"}, // wrong confirmation
		{"backup", "-tenant", ta},                      // no file
		{"restore"},                                    // no file
		{"usage"},                                      // no tenant
	} {
		stderr.Reset()
		require.Equal(t, 2, run(args, env, io.Discard, &stderr), "%v", args)
	}
	stderr.Reset()
	require.Equal(t, 2, run([]string{"backup", "-tenant", ta, "-file", "x"}, envFunc(nil), io.Discard, &stderr))
	require.Contains(t, stderr.String(), "FALKORDB_URL")

	// backup and erase sub-commands on the second server.
	out2 := filepath.Join(t.TempDir(), "again.json")
	stderr.Reset()
	require.Equal(t, 0, run([]string{"backup", "-tenant", ta, "-file", out2}, env, io.Discard, &stderr), stderr.String())
	stdout.Reset()
	require.Equal(t, 0, run([]string{"erase", "-tenant", ta, "-confirm", ta}, env, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), `"remainingKeys": 0`)
	require.Equal(t, 0, run([]string{"restore", "-file", out2}, env, io.Discard, &stderr), stderr.String())
	// The erasure deleted the tenant's database user under the running
	// proxy: a call racing the server closing the user's connections may
	// fail once, as unavailable (never with another error), and the next
	// one sets the user up again.
	res, err = call(t, a2, "falkordb_ro_query", map[string]any{"graphName": "people", "query": "RETURN 1"})
	require.NoError(t, err)
	if res.IsError {
		require.Contains(t, text(res), "unavailable")
	}
	require.Equal(t, want, snapshot(t, a2))
}

// TestUsageAcrossReplicas: two proxies on one FalkorDB count one tenant's
// calls together; the admin endpoint and the tenant's own tool report them.
func TestUsageAcrossReplicas(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	env := merge(iss.env(), map[string]string{"ADMIN_TOKEN": adminToken, "RATE_LIMIT": "off", "CONCURRENCY_LIMIT": "0"})
	p1, p2 := startProxy(t, db, env), startProxy(t, db, env)
	ta, tb := tenants(db)
	tok := iss.token(ta, "read write admin")
	c1, c2 := connect(t, p1.url, "streamable", tok), connect(t, p2.url, "streamable", tok)
	b := connect(t, p2.url, "streamable", iss.token(tb, "read write admin"))
	mustCall(t, c1, "falkordb_query", map[string]any{"graphName": "g", "query": "UNWIND range(1, 5) AS i CREATE (:N {i: i})"})
	var wg sync.WaitGroup
	var calls, errs atomic.Int64
	for i := range 20 {
		cs := c1
		if i%2 == 1 {
			cs = c2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				q := "MATCH (n:N) RETURN n.i"
				if j == 4 {
					q = "MATCH (n:N) RETURN nosuchfunction(n)" // an error
				}
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "falkordb_ro_query", Arguments: map[string]any{"graphName": "g", "query": q}})
				if err == nil {
					calls.Add(1)
					if res.IsError {
						errs.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	mustCall(t, b, "falkordb_query", map[string]any{"graphName": "g", "query": "CREATE ()"})
	require.EqualValues(t, 100, calls.Load())
	require.EqualValues(t, 20, errs.Load())
	// Counters are flushed in the background about every second.
	var rep struct {
		Total struct {
			Calls, Errors, Rows int64
		} `json:"total"`
		Days []struct {
			Tools map[string]struct{ Calls, Errors, Rows int64 } `json:"tools"`
		} `json:"days"`
	}
	require.Eventually(t, func() bool {
		code, body := admin(t, "GET", p1.url+"/admin/usage?tenant="+ta+"&days=1", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.NoError(t, json.Unmarshal([]byte(body), &rep))
		return rep.Total.Calls == 101
	}, 10*time.Second, 100*time.Millisecond)
	require.EqualValues(t, 20, rep.Total.Errors)
	require.EqualValues(t, 80*5, rep.Total.Rows, "80 successful reads of 5 rows")
	require.EqualValues(t, 100, rep.Days[0].Tools["falkordb_ro_query"].Calls)
	require.EqualValues(t, 1, rep.Days[0].Tools["falkordb_query"].Calls)

	// The tenant's own tool reports its usage only.
	own := func(cs *mcp.ClientSession, other string) (tenant string, calls int64) {
		res := mustCall(t, cs, "tenant_usage", map[string]any{"days": 1})
		require.NotContains(t, text(res)+structured(t, res), other)
		var r struct {
			Tenant string
			Total  struct{ Calls int64 }
		}
		require.NoError(t, json.Unmarshal([]byte(structured(t, res)), &r))
		return r.Tenant, r.Total.Calls
	}
	tenant, n := own(b, ta)
	require.Equal(t, tb, tenant)
	require.EqualValues(t, 1, n, "b's own call only")
	tenant, n = own(c2, tb)
	require.Equal(t, ta, tenant)
	require.EqualValues(t, 101, n)

	// Bad admin requests.
	code, _ := admin(t, "GET", p1.url+"/admin/usage?tenant=", nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = admin(t, "GET", p1.url+"/admin/usage?tenant="+ta+"&days=0", nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, body := admin(t, "GET", p1.url+"/admin/usage?tenant="+ta+"&days=100000", nil)
	require.Equal(t, http.StatusBadRequest, code, body)
}

// FuzzReadBackup: a backup file is accepted only when every graph's
// checksum holds and its key is the one the resolver gives for the file's
// tenant and the graph's name, each key once.
func FuzzReadBackup(f *testing.F) {
	r := graphname.Default()
	good := func(tenant string, graphs ...string) string {
		bf := backupFile{Format: backupFormat, Tenant: tenant, Graphs: []backupGraph{}}
		for _, g := range graphs {
			key, _ := r.Resolve(tenant, g)
			dump := []byte("payload of " + key)
			sum := sha256.Sum256(dump)
			bf.Graphs = append(bf.Graphs, backupGraph{Graph: g, Key: key, SHA256: hex.EncodeToString(sum[:]), Dump: dump})
		}
		b, _ := json.Marshal(bf)
		return string(b)
	}
	f.Add(good("acme", "users", "orders"))
	f.Add(good("acme"))
	f.Add(strings.Replace(good("acme", "users"), `"key":"acme_users"`, `"key":"bob_users"`, 1))
	f.Add(strings.Replace(good("acme", "users"), `"format":"tenantgraph-backup/1"`, `"format":"x"`, 1))
	f.Add(good("acme", "users", "users"))
	f.Fuzz(func(t *testing.T, data string) {
		bf, err := readBackup(r, strings.NewReader(data))
		if err != nil {
			return
		}
		require.Equal(t, backupFormat, bf.Format)
		seen := map[string]bool{}
		for _, g := range bf.Graphs {
			key, err := r.Resolve(bf.Tenant, g.Graph)
			require.NoError(t, err)
			require.Equal(t, key, g.Key)
			require.False(t, seen[key])
			seen[key] = true
			sum := sha256.Sum256(g.Dump)
			require.Equal(t, hex.EncodeToString(sum[:]), g.SHA256)
		}
	})
}
