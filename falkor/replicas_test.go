package falkor_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

func TestOpenReplicasInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts falkor.Options
		want string
	}{
		{"read without replicas", falkor.Options{ReadFromReplicas: true}, "ReadFromReplicas needs Replicas"},
		{"with cluster", falkor.Options{Replicas: []string{"127.0.0.1:1"}, Cluster: true}, "cannot be combined with Cluster"},
		{"with cluster seeds", falkor.Options{Replicas: []string{"127.0.0.1:1"}, ClusterAddrs: []string{"127.0.0.1:2"}}, "cannot be combined with Cluster"},
		{"no port", falkor.Options{Replicas: []string{"127.0.0.1:1", "secret-host"}, ReadFromReplicas: true}, "Replicas[1] is not"},
		{"empty host", falkor.Options{Replicas: []string{":6379"}}, "Replicas[0] is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := falkor.Open(context.Background(), "redis://127.0.0.1:1", tt.opts)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "secret-host")
		})
	}
}

// startServer starts a FalkorDB server of the test's own.
func startServer(t *testing.T, opts lite.Options) *lite.Server {
	t.Helper()
	return falkortest.StartServer(t, opts)
}

// info returns the fields of INFO section.
func info(t *testing.T, rdb *redis.Client, section string) map[string]string {
	t.Helper()
	text, err := rdb.Info(context.Background(), section).Result()
	require.NoError(t, err)
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// calls returns how often the server ran cmd (e.g. "graph.RO_QUERY").
func calls(t *testing.T, rdb *redis.Client, cmd string) int {
	t.Helper()
	stats := info(t, rdb, "commandstats")["cmdstat_"+cmd]
	for f := range strings.SplitSeq(stats, ",") {
		if v, ok := strings.CutPrefix(f, "calls="); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// TestReplicas runs a primary and a replica: read-only calls go to the
// replica, writes to the primary, and reads fall back to the primary once
// the replica is gone.
func TestReplicas(t *testing.T) {
	const password = "rep pw"
	primary := startServer(t, lite.Options{Password: password})
	replica := falkortest.StartReplica(t, primary)
	ctx := context.Background()

	pr := redis.NewClient(&redis.Options{Addr: primary.Addr(), Password: password, MaxRetries: -1})
	defer pr.Close()
	rr := redis.NewClient(&redis.Options{Addr: replica.Addr(), Password: password, MaxRetries: -1})
	defer rr.Close()

	goroutines := runtime.NumGoroutine()
	u := "redis://:" + url.PathEscape(password) + "@" + primary.Addr()
	c, err := falkor.Open(ctx, u, falkor.Options{
		Replicas:         []string{replica.Addr()},
		ReadFromReplicas: true,
		MaxTimeout:       5 * time.Second,
	})
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	graph := "rep" + hex.EncodeToString(rnd[:])
	// replicated waits until the replica has the primary's writes.
	replicated := func() {
		t.Helper()
		n, err := pr.Do(ctx, "WAIT", 1, 1000).Int()
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}

	t.Run("writes go to the primary", func(t *testing.T) {
		before := calls(t, pr, "graph.QUERY")
		res, err := c.Query(ctx, graph, "CREATE (:W {i: 1}), (:W {i: 2})", nil)
		require.NoError(t, err)
		require.EqualValues(t, 2, res.Stats.NodesCreated)
		require.Equal(t, before+1, calls(t, pr, "graph.QUERY"))
		replicated()
	})

	t.Run("reads go to the replica", func(t *testing.T) {
		pBefore, rBefore := calls(t, pr, "graph.RO_QUERY"), calls(t, rr, "graph.RO_QUERY")
		for range 3 {
			res, err := c.ROQuery(ctx, graph, "MATCH (n:W) RETURN max(n.i)", nil)
			require.NoError(t, err)
			require.Equal(t, [][]any{{int64(2)}}, res.Rows)
		}
		require.Equal(t, rBefore+3, calls(t, rr, "graph.RO_QUERY"))
		require.Equal(t, pBefore, calls(t, pr, "graph.RO_QUERY"))

		// Schema: five read-only queries in one round trip.
		s, err := c.Schema(ctx, graph)
		require.NoError(t, err)
		require.Equal(t, []string{"W"}, s.Labels)
		require.Equal(t, rBefore+3+5, calls(t, rr, "graph.RO_QUERY"))
		require.Equal(t, pBefore, calls(t, pr, "graph.RO_QUERY"))

		// GRAPH.EXPLAIN is a write command for FalkorDB: replicas refuse it.
		eBefore := calls(t, pr, "graph.EXPLAIN")
		plan, err := c.Explain(ctx, graph, "MATCH (n:W) RETURN n", nil)
		require.NoError(t, err)
		require.NotEmpty(t, plan)
		require.Equal(t, eBefore+1, calls(t, pr, "graph.EXPLAIN"))
		require.Zero(t, calls(t, rr, "graph.EXPLAIN"))
	})

	t.Run("a write through ROQuery is refused", func(t *testing.T) {
		_, err := c.ROQuery(ctx, graph, "CREATE (:X)", nil)
		require.ErrorIs(t, err, falkor.ErrReadOnly)
		require.Zero(t, count(t, c, graph, "(:X)"))
	})

	t.Run("scoped users read from the primary", func(t *testing.T) {
		pBefore, rBefore := calls(t, pr, "graph.RO_QUERY"), calls(t, rr, "graph.RO_QUERY")
		err := c.WithScope(ctx, falkor.Scope{User: graph + "-user", KeyPattern: graph}, func(sc *falkor.Client) error {
			res, err := sc.ROQuery(ctx, graph, "MATCH (n:W) RETURN count(n)", nil)
			require.NoError(t, err)
			require.Equal(t, [][]any{{int64(2)}}, res.Rows)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, pBefore+1, calls(t, pr, "graph.RO_QUERY"))
		require.Equal(t, rBefore, calls(t, rr, "graph.RO_QUERY"))
	})

	t.Run("Close closes the replicas' connections", func(t *testing.T) {
		clients := func() string { return info(t, rr, "clients")["connected_clients"] }
		before := clients()
		c2, err := falkor.Open(ctx, u, falkor.Options{Replicas: []string{replica.Addr()}, ReadFromReplicas: true})
		require.NoError(t, err)
		_, err = c2.ROQuery(ctx, graph, "MATCH (n:W) RETURN max(n.i)", nil)
		require.NoError(t, err)
		require.NotEqual(t, before, clients())
		require.NoError(t, c2.Close())
		require.Eventually(t, func() bool { return clients() == before }, 5*time.Second, 10*time.Millisecond)
		runtime.KeepAlive(c2) // else the garbage collector may close its sockets
	})

	t.Run("a replica that times out is not left for the primary", func(t *testing.T) {
		// A replica that accepts connections and never answers: the query
		// may have run there, so it is not sent again.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var wg sync.WaitGroup
		var conns []net.Conn
		var mu sync.Mutex
		wg.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
		})
		defer func() {
			ln.Close()
			wg.Wait()
			for _, conn := range conns {
				conn.Close()
			}
		}()
		slow, err := falkor.Open(ctx, u, falkor.Options{
			Replicas:         []string{ln.Addr().String()},
			ReadFromReplicas: true,
			MaxTimeout:       200 * time.Millisecond,
		})
		require.NoError(t, err)
		defer slow.Close()
		pBefore := calls(t, pr, "graph.RO_QUERY")
		_, err = slow.ROQuery(ctx, graph, "MATCH (n:W) RETURN max(n.i)", nil)
		require.ErrorIs(t, err, falkor.ErrTimeout)
		require.Equal(t, pBefore, calls(t, pr, "graph.RO_QUERY"))
	})

	t.Run("reads fall back to the primary without the replica", func(t *testing.T) {
		require.NoError(t, replica.Kill())
		pBefore := calls(t, pr, "graph.RO_QUERY")
		for range 3 { // more than one round of the replicas
			res, err := c.ROQuery(ctx, graph, "MATCH (n:W) RETURN max(n.i)", nil)
			require.NoError(t, err)
			require.Equal(t, [][]any{{int64(2)}}, res.Rows)
		}
		s, err := c.Schema(ctx, graph)
		require.NoError(t, err)
		require.Equal(t, []string{"W"}, s.Labels)
		_, err = c.Explain(ctx, graph, "MATCH (n:W) RETURN n", nil)
		require.NoError(t, err)
		require.Equal(t, pBefore+3+5, calls(t, pr, "graph.RO_QUERY"))
	})

	t.Run("DeleteGraph goes to the primary", func(t *testing.T) {
		require.NoError(t, c.DeleteGraph(ctx, graph))
		n, err := pr.Exists(ctx, graph).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})

	require.NoError(t, c.Close())
	closed = true
	// go-redis retries dialing a failed replica in the background once a
	// second until its pool is closed.
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines },
		5*time.Second, 50*time.Millisecond, "goroutines left after Close")
}
