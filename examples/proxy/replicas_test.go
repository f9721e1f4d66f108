package main

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// TestReadReplicas: with FALKORDB_REPLICAS the proxy writes to the primary
// and serves a tenant's read-only queries from the replica.
func TestReadReplicas(t *testing.T) {
	const password = "replica pw"
	primary := falkortest.StartServer(t, lite.Options{Password: password})
	replica := falkortest.StartReplica(t, primary)
	ctx := context.Background()
	pr := redis.NewClient(&redis.Options{Addr: primary.Addr(), Password: password, MaxRetries: -1})
	defer pr.Close()
	rr := redis.NewClient(&redis.Options{Addr: replica.Addr(), Password: password, MaxRetries: -1})
	defer rr.Close()

	iss := newIssuer(t)
	tp := startProxyEnv(t, merge(iss.env(), map[string]string{
		"FALKORDB_URL":      "redis://:" + url.PathEscape(password) + "@" + primary.Addr(),
		"FALKORDB_REPLICAS": replica.Addr(),
		"DB_ACL":            "off", // scoped users live on the primary only
		"RATE_LIMIT":        "off",
	}))
	cs := connect(t, tp.url, "streamable", iss.token("tenant-r", "read write"))
	mustCall(t, cs, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "m"}})
	require.NoError(t, pr.Do(ctx, "WAIT", 1, 2000).Err())

	before := [2]int{roQueries(t, pr), roQueries(t, rr)}
	res := mustCall(t, cs, "falkordb_ro_query", map[string]any{"graphName": "g", "query": "MATCH (n:Probe) RETURN n.name AS name"})
	require.Contains(t, text(res), `"m"`)
	require.Equal(t, before[0], roQueries(t, pr), "the primary ran no read")
	require.Greater(t, roQueries(t, rr), before[1], "the replica served the read")
	require.Equal(t, int64(1), pr.Exists(ctx, "tenant-r_g").Val(), "the write went to the primary, prefixed")
}

// roQueries returns how many GRAPH.RO_QUERY commands the server ran.
func roQueries(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for line := range strings.Lines(s) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_graph.RO_QUERY:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			require.NoError(t, err)
			return n
		}
	}
	return 0
}
