package falkor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
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

// startCluster starts a 3-primary cluster with one replica each, stopped
// when the test ends.
func startCluster(t *testing.T) *lite.Cluster {
	t.Helper()
	return falkortest.StartCluster(t, lite.ClusterOptions{
		Options:            lite.Options{Password: "cluster pw"},
		Primaries:          3,
		ReplicasPerPrimary: 1,
		NodeTimeout:        time.Second,
	})
}

// nodeClient connects to one node directly.
func nodeClient(t *testing.T, cl *lite.Cluster, n *lite.Node) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), Password: cl.Password(), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenClusterInvalid(t *testing.T) {
	tests := []struct {
		name, url string
		want      string
	}{
		{"unix socket", "unix:///tmp/x.sock", "not a unix socket"},
		{"database", "redis://127.0.0.1:1/2", "only database 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := falkor.Open(context.Background(), tt.url, falkor.Options{Cluster: true})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestCluster runs the client against one real cluster: routing, listing,
// deleting, exactly-once writes, and a primary failing over to its replica.
func TestCluster(t *testing.T) {
	cl := startCluster(t)
	ctx := context.Background()
	addrs := cl.Addrs()
	c, err := falkor.Open(ctx, "redis://:"+strings.ReplaceAll(cl.Password(), " ", "%20")+"@"+addrs[0],
		falkor.Options{ClusterAddrs: addrs[1:], MaxTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	_, isCluster := c.Redis().(*redis.ClusterClient)
	require.True(t, isCluster)

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	ns := "clu" + hex.EncodeToString(rnd[:])
	// 20 tenants, one graph each, spread over all primaries.
	var graphs []string
	perPrimary := map[string][]string{}
	for i := range 20 {
		g := fmt.Sprintf("%s_t%02d_g", ns, i)
		graphs = append(graphs, g)
		p := falkortest.SlotOwner(t, c.Redis(), cl, g)
		perPrimary[p.ID] = append(perPrimary[p.ID], g)
	}
	for _, p := range cl.Primaries() {
		require.NotEmpty(t, perPrimary[p.ID], "primary with slots %v owns no tenant graph", p.Slots)
	}

	t.Run("queries follow the key's slot; a write runs once", func(t *testing.T) {
		for i, g := range graphs {
			res, err := c.Query(ctx, g, "CREATE (:W {i: $i})", map[string]any{"i": i})
			require.NoError(t, err)
			require.EqualValues(t, 1, res.Stats.NodesCreated)
		}
		for i, g := range graphs {
			res, err := c.ROQuery(ctx, g, "MATCH (n:W) RETURN count(n), min(n.i)", nil)
			require.NoError(t, err)
			require.Equal(t, []any{int64(1), int64(i)}, res.Rows[0], g)
		}
		// Each graph lives on its owner only.
		for _, p := range cl.Primaries() {
			got, err := nodeClient(t, cl, p).Do(ctx, "GRAPH.LIST").StringSlice()
			require.NoError(t, err)
			mine := slices.DeleteFunc(got, func(s string) bool { return !strings.HasPrefix(s, ns+"_") })
			sort.Strings(mine)
			want := slices.Clone(perPrimary[p.ID])
			sort.Strings(want)
			require.Equal(t, want, mine)
		}
		// Names in compact replies are read from the graph's owner too.
		for _, g := range graphs {
			sc, err := c.Schema(ctx, g)
			require.NoError(t, err)
			require.Equal(t, []string{"W"}, sc.Labels)
			res, err := c.ROQuery(ctx, g, "MATCH (n) RETURN n", nil)
			require.NoError(t, err)
			require.Equal(t, []string{"W"}, res.Rows[0][0].(falkor.Node).Labels)
		}
		_, err := c.ROQuery(ctx, graphs[0], "CREATE (:X)", nil)
		require.ErrorIs(t, err, falkor.ErrReadOnly)
		_, err = c.ROQuery(ctx, ns+"_missing", "RETURN 1", nil)
		require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	})

	t.Run("ListGraphs merges every primary", func(t *testing.T) {
		all, err := c.ListGraphs(ctx)
		require.NoError(t, err)
		require.True(t, slices.IsSorted(all))
		require.Equal(t, len(all), len(slices.Compact(slices.Clone(all))), "duplicates")
		mine := slices.DeleteFunc(all, func(s string) bool { return !strings.HasPrefix(s, ns+"_") })
		require.Equal(t, graphs, mine)
	})

	t.Run("DeleteGraph goes to the owner", func(t *testing.T) {
		g := ns + "_deleted"
		_, err := c.Query(ctx, g, "CREATE ()", nil)
		require.NoError(t, err)
		require.NoError(t, c.DeleteGraph(ctx, g))
		require.ErrorIs(t, c.DeleteGraph(ctx, g), falkor.ErrGraphNotFound)
		all, err := c.ListGraphs(ctx)
		require.NoError(t, err)
		require.NotContains(t, all, g)
	})

	t.Run("a MOVED reply is followed and the write runs once", func(t *testing.T) {
		from, to := cl.Primaries()[1], cl.Primaries()[2]
		var g string
		for i := 0; ; i++ {
			if g = fmt.Sprintf("%s_moved%d", ns, i); falkortest.SlotOwner(t, c.Redis(), cl, g) == from {
				break
			}
		}
		slot, err := c.Redis().Do(ctx, "CLUSTER", "KEYSLOT", g).Int()
		require.NoError(t, err)
		// Hand the (empty) slot to another primary behind the client's back:
		// its slot map still names the old owner, which answers MOVED.
		for _, n := range []*lite.Node{to, from, cl.Primaries()[0]} {
			require.NoError(t, nodeClient(t, cl, n).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", to.ID).Err())
		}
		require.NoError(t, cl.WaitHealthy(ctx))
		res, err := c.Query(ctx, g, "CREATE (:M)", nil)
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Stats.NodesCreated)
		require.Equal(t, int64(1), count(t, c, g, "(:M)"))
		on, err := nodeClient(t, cl, to).Do(ctx, "GRAPH.LIST").StringSlice()
		require.NoError(t, err)
		require.Contains(t, on, g)
		require.NoError(t, c.DeleteGraph(ctx, g))
	})

	// A tenant's scoped user, with graphs on every primary.
	scope := falkor.Scope{User: ns + "-user", KeyPattern: ns + "_s_*"}
	var scoped []string
	onPrimary := map[*lite.Node]bool{}
	for i := 0; len(onPrimary) < len(cl.Primaries()); i++ {
		g := fmt.Sprintf("%s_s_%d", ns, i)
		scoped = append(scoped, g)
		onPrimary[falkortest.SlotOwner(t, c.Redis(), cl, g)] = true
	}
	useScope := func(t *testing.T) error {
		t.Helper()
		return c.WithScope(ctx, scope, func(sc *falkor.Client) error {
			for _, g := range scoped {
				if _, err := sc.Query(ctx, g, "MERGE (:S)", nil); err != nil {
					return err
				}
				res, err := sc.ROQuery(ctx, g, "MATCH (n:S) RETURN count(n)", nil)
				if err != nil {
					return err
				}
				require.Equal(t, int64(1), res.Rows[0][0], g)
			}
			// Another tenant's graphs are refused by every node.
			for _, g := range graphs[:6] {
				_, err := sc.ROQuery(ctx, g, "MATCH (n) RETURN count(n)", nil)
				require.ErrorIs(t, err, falkor.ErrPermission, g)
			}
			return nil
		})
	}

	t.Run("scoped users work on every node", func(t *testing.T) {
		require.NoError(t, c.CheckScopes(ctx))
		require.NoError(t, useScope(t))
		// The user exists on every node, replicas included.
		for _, n := range cl.Nodes() {
			users, err := nodeClient(t, cl, n).Do(ctx, "ACL", "USERS").StringSlice()
			require.NoError(t, err)
			require.Contains(t, users, scope.User)
		}
	})

	t.Run("a primary fails over to its replica", func(t *testing.T) {
		victim := cl.Primaries()[0]
		replica := cl.ReplicasOf(victim)[0]
		g := perPrimary[victim.ID][0]
		other := perPrimary[cl.Primaries()[1].ID][0]
		// Make sure the replica has every write before the crash.
		acked, err := nodeClient(t, cl, victim).Do(ctx, "WAIT", 1, 5000).Int()
		require.NoError(t, err)
		require.Equal(t, 1, acked)

		require.NoError(t, victim.Kill())
		killed := time.Now()
		var (
			mu      sync.Mutex
			errs    int
			okIDs   []int
			lastErr error
		)
		attempt := func(i int) bool {
			_, err := c.Query(ctx, g, "CREATE (:A {i: $i})", map[string]any{"i": i})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				lastErr = err
				require.ErrorIs(t, err, falkor.ErrUnavailable, "calls to a failed primary's slots must fail as unavailable")
				require.NotContains(t, err.Error(), "127.0.0.1", "errors must not show addresses")
				return false
			}
			okIDs = append(okIDs, i)
			return true
		}
		// While the primary is down, its slots fail.
		for i := range 5 {
			require.False(t, attempt(i))
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, cl.Failover(ctx, replica))
		promoted := time.Now()
		i := 5
		for ; !attempt(i); i++ {
			require.Less(t, time.Since(promoted), 30*time.Second, "no recovery; last error: %v", lastErr)
			time.Sleep(20 * time.Millisecond)
		}
		recovered := time.Now()
		t.Logf("failover: %d failed calls (all ErrUnavailable; last: %v); kill->recovery %v, takeover->recovery %v",
			errs, lastErr, recovered.Sub(killed).Round(time.Millisecond), recovered.Sub(promoted).Round(time.Millisecond))

		// Data written before the crash survived; every attempt ran at most once,
		// and the successful one exactly once.
		res, err := c.ROQuery(ctx, g, "MATCH (n:W) RETURN count(n)", nil)
		require.NoError(t, err)
		require.Equal(t, int64(1), res.Rows[0][0])
		res, err = c.ROQuery(ctx, g, "MATCH (n:A) RETURN n.i ORDER BY n.i", nil)
		require.NoError(t, err)
		var ran []int
		for _, row := range res.Rows {
			ran = append(ran, int(row[0].(int64)))
		}
		require.Equal(t, okIDs, ran)
		// The scoped user works on the promoted replica, where it was set up
		// beforehand. Its pool's slot map may still name the dead node: that
		// call fails as unavailable, and the next one recovers.
		scopedErrs := 0
		for err := useScope(t); err != nil; err = useScope(t) {
			require.ErrorIs(t, err, falkor.ErrUnavailable)
			scopedErrs++
			require.Less(t, scopedErrs, 100, "the scoped user does not recover: %v", err)
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("scoped user after the failover: %d failed calls", scopedErrs)
		// Other primaries' graphs still answer, and the list is whole again.
		require.NoError(t, cl.WaitHealthy(ctx))
		_, err = c.ROQuery(ctx, other, "MATCH (n) RETURN count(n)", nil)
		require.NoError(t, err)
		want := append(slices.Clone(graphs), scoped...)
		sort.Strings(want)
		require.Eventually(t, func() bool {
			all, err := c.ListGraphs(ctx)
			return err == nil && slices.Equal(want, slices.DeleteFunc(all, func(s string) bool { return !strings.HasPrefix(s, ns+"_") }))
		}, 20*time.Second, 50*time.Millisecond)
	})
}
