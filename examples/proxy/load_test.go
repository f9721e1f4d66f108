package main

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// TestSharedRateLimitAcrossReplicas is the load check: two proxy replicas
// share one FalkorDB and therefore one rate limit per tenant. With RATE per
// minute and a burst of BURST, the calls that succeed across both replicas
// stay within BURST + RATE x elapsed minutes (at most RATE + BURST within a
// minute). Per-replica buckets would let each replica pass its own burst:
// 2 x BURST, more than that bound. No timing is asserted: the bound grows
// with the measured elapsed time.
func TestSharedRateLimitAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("load check")
	}
	const (
		perMinute = 6
		burst     = 10
		perClient = 12 // calls per client
		clients   = 3  // clients per replica
	)
	db := falkortest.Start(t)
	iss := newIssuer(t)
	env := merge(iss.env(), map[string]string{
		"RATE_LIMIT":        "6/min",
		"RATE_BURST":        "10",
		"CONCURRENCY_LIMIT": "0",
	})
	replicas := []*testProxy{startProxy(t, db, env), startProxy(t, db, env)}
	tenant, other := tenants(db)
	tok := iss.token(tenant, "read")

	var sessions []*mcp.ClientSession
	for _, r := range replicas {
		for range clients {
			sessions = append(sessions, connect(t, r.url, "streamable", tok))
		}
	}
	var mu sync.Mutex
	ok, limited := map[int]int{}, 0
	var wg sync.WaitGroup
	start := time.Now()
	for i, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				res, err := call(t, cs, "falkordb_list_graphs", map[string]any{})
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("call failed: %v", err)
				case !res.IsError:
					ok[i/clients]++
				case strings.Contains(text(res), "rate limit"):
					limited++
				default:
					t.Errorf("unexpected tool error: %s", text(res))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	total := ok[0] + ok[1]
	bound := burst + int(math.Ceil(perMinute*elapsed.Minutes()))
	t.Logf("%d calls over %v: %d succeeded (replica 1: %d, replica 2: %d), %d rate-limited; bound %d",
		len(sessions)*perClient, elapsed, total, ok[0], ok[1], limited, bound)
	require.Equal(t, len(sessions)*perClient, total+limited, "every call either ran or was rate-limited")
	require.LessOrEqual(t, total, bound, "the limit holds across both replicas")
	if elapsed < time.Minute {
		require.LessOrEqual(t, total, perMinute+burst)
	}
	require.GreaterOrEqual(t, total, burst, "the burst is available")

	// Another tenant's budget is its own.
	cs := connect(t, replicas[1].url, "streamable", iss.token(other, "read"))
	res, err := call(t, cs, "falkordb_list_graphs", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, text(res))
}
