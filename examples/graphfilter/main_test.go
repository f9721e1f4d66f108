package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/graphname"
)

func TestMain(m *testing.M) { falkortest.Main(m) }

// TestImportsGraphnameAlone proves the point of this example: of this
// module's packages, the program links graphname only.
func TestImportsGraphnameAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	var ours []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/tenantgraph/tenantgraph/") {
			ours = append(ours, p)
		}
	}
	require.ElementsMatch(t, []string{
		"github.com/tenantgraph/tenantgraph/examples/graphfilter",
		"github.com/tenantgraph/tenantgraph/graphname",
	}, ours)
}

func TestGraphsFilteredPerTenant(t *testing.T) {
	db := falkortest.Start(t)
	opt, err := redis.ParseURL(db.URL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })

	// Tenant ids unique to this test, so a shared FALKORDB_URL server is fine.
	alpha, beta := db.Namespace()+"-alpha", db.Namespace()+"-beta"
	ctx := context.Background()
	keys := map[string][]string{alpha: {"users", "orders"}, beta: {"users", "secret.plans"}}
	for tenant, graphs := range keys {
		for _, g := range graphs {
			key, err := graphname.Resolve(tenant, g)
			require.NoError(t, err)
			require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", key, "CREATE (:Marker)").Err())
			t.Cleanup(func() { rdb.Do(context.Background(), "GRAPH.DELETE", key) })
		}
	}

	srv := httptest.NewServer(newHandler(graphLister(rdb), graphname.Default(), "X-Tenant-ID"))
	t.Cleanup(srv.Close)

	get := func(tenant string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/graphs", nil)
		require.NoError(t, err)
		if tenant != "" {
			req.Header.Set("X-Tenant-ID", tenant)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}

	tests := []struct {
		name   string
		tenant string
		code   int
		graphs []any
	}{
		{"alpha sees only its graphs", alpha, http.StatusOK, []any{"orders", "users"}},
		{"beta sees only its graphs", beta, http.StatusOK, []any{"secret.plans", "users"}},
		{"unknown tenant sees nothing", db.Namespace() + "-gamma", http.StatusOK, []any{}},
		{"no header is refused", "", http.StatusBadRequest, nil},
		{"separator in tenant is refused", alpha + "_users", http.StatusBadRequest, nil},
		{"capitals are refused", strings.ToUpper(alpha), http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.tenant)
			require.Equal(t, tc.code, code)
			if tc.code != http.StatusOK {
				require.Contains(t, body["error"], "invalid tenant")
				require.NotContains(t, body, "graphs")
				return
			}
			got, _ := body["graphs"].([]any)
			require.ElementsMatch(t, tc.graphs, got)
		})
	}
}

// TestRunServes starts the program's own server loop, asks it for a list,
// and stops it the way SIGTERM would.
func TestRunServes(t *testing.T) {
	db := falkortest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, db.URL, "X-Tenant-ID") }()

	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/graphs", nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant-ID", db.Namespace())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body struct {
		Tenant string   `json:"tenant"`
		Graphs []string `json:"graphs"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, db.Namespace(), body.Tenant)
	require.Empty(t, body.Graphs)

	cancel()
	require.NoError(t, <-done)
}
