package lite

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestClusterOptionsInvalid(t *testing.T) {
	for name, o := range map[string]ClusterOptions{
		"negative primaries": {Primaries: -1},
		"negative replicas":  {ReplicasPerPrimary: -1},
		"negative timeout":   {NodeTimeout: -time.Second},
		"unix socket":        {Options: Options{UnixSocket: true}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := StartCluster(context.Background(), o)
			require.ErrorContains(t, err, "invalid cluster options")
		})
	}
}

// TestCluster forms 3 primaries with one replica each, checks that graphs in every
// primary's slots work, fails one primary over to its replica, and tears down.
func TestCluster(t *testing.T) {
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := StartCluster(ctx, ClusterOptions{
		Options:            Options{RedisServer: b.RedisServer, Module: b.Module, Password: "s3cret pw"},
		Primaries:          3,
		ReplicasPerPrimary: 1,
		NodeTimeout:        time.Second,
	})
	require.NoError(t, err)
	defer cl.Close()

	require.Len(t, cl.Nodes(), 6)
	require.Len(t, cl.Addrs(), 6)
	require.Equal(t, "s3cret pw", cl.Password())
	prim := cl.Primaries()
	require.Len(t, prim, 3)
	covered := 0
	for _, p := range prim {
		covered += p.Slots[1] - p.Slots[0] + 1
		role, err := p.Role(ctx)
		require.NoError(t, err)
		require.Equal(t, "master", role)
		reps := cl.ReplicasOf(p)
		require.Len(t, reps, 1)
		role, err = reps[0].Role(ctx)
		require.NoError(t, err)
		require.Equal(t, "slave", role)
	}
	require.Equal(t, numSlots, covered)

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Password: cl.Password(), MaxRetries: -1})
	defer cc.Close()
	// Keys in many slots: each lands on its owner, and every primary holds some.
	for i := range 30 {
		require.NoError(t, cc.Do(ctx, "GRAPH.QUERY", fmt.Sprintf("g%d", i), "CREATE (:N {v: 1})").Err())
	}
	for _, p := range prim {
		c := p.client()
		graphs, err := c.Do(ctx, "GRAPH.LIST").StringSlice()
		c.Close()
		require.NoError(t, err)
		require.NotEmpty(t, graphs, "primary with slots %v holds no graph", p.Slots)
	}

	// Fail primary 0 over to its replica.
	victim := prim[0]
	require.NoError(t, victim.Kill())
	require.NoError(t, cl.Failover(ctx, cl.ReplicasOf(victim)[0]))
	require.NoError(t, cl.WaitHealthy(ctx))
	role, err := cl.ReplicasOf(victim)[0].Role(ctx)
	require.NoError(t, err)
	require.Equal(t, "master", role)
	cc.ReloadState(ctx)
	require.Eventually(t, func() bool {
		for i := range 30 {
			if cc.Do(ctx, "GRAPH.RO_QUERY", fmt.Sprintf("g%d", i), "MATCH (n) RETURN count(n)").Err() != nil {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "graphs replicated to the promoted replica must answer")

	var dirs []string
	var pids []int
	for _, nd := range cl.Nodes() {
		dirs = append(dirs, nd.dir)
		if nd.running() {
			pids = append(pids, nd.proc.cmd.Process.Pid)
		}
	}
	require.NoError(t, cl.Close())
	require.NoError(t, cl.Close(), "second Close")
	for _, d := range dirs {
		_, err := os.Stat(d)
		require.ErrorIs(t, err, fs.ErrNotExist)
	}
	for _, pid := range pids {
		require.True(t, processGone(pid))
	}
}

// TestClusterNoReplicas forms 3 primaries without replicas or password.
func TestClusterNoReplicas(t *testing.T) {
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	cl, err := StartCluster(ctx, ClusterOptions{Options: Options{RedisServer: b.RedisServer, Module: b.Module}})
	require.NoError(t, err)
	t.Logf("3-primary cluster ready in %v", time.Since(began).Round(time.Millisecond))
	defer cl.Close()
	require.Len(t, cl.Nodes(), 3)
	require.Len(t, cl.Primaries(), 3)
	require.Empty(t, cl.Password())
	for _, p := range cl.Primaries() {
		require.Empty(t, cl.ReplicasOf(p))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()[:1], MaxRetries: -1})
	defer cc.Close()
	for i := range 10 {
		require.NoError(t, cc.Do(ctx, "GRAPH.QUERY", fmt.Sprintf("n%d", i), "CREATE ()").Err())
	}
	var n atomic.Int64 // ForEachMaster calls concurrently
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		graphs, err := c.Do(ctx, "GRAPH.LIST").StringSlice()
		n.Add(int64(len(graphs)))
		return err
	}))
	require.EqualValues(t, 10, n.Load())
}
