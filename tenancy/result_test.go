package tenancy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResultTypeKept checks that the results the middleware builds itself
// (refusals, filtered lists, generic errors) carry resultType exactly when
// the tool's own results do: clients of protocol 2026-07-28, such as the
// Python SDK, refuse a tool result without it.
func TestResultTypeKept(t *testing.T) {
	// A burst of 2: the first call and the list use it up.
	e := newEnv(t, Config{Limits: func(*Identity) Limit { return Limit{Rate: 0.001, Burst: 2} }})
	cs := e.connect(acmeRO)
	marshal := func(name string, args any) string {
		t.Helper()
		res, err := callTool(t, cs, name, args)
		require.NoError(t, err)
		b, err := json.Marshal(res)
		require.NoError(t, err)
		return string(b)
	}
	own := marshal("falkordb_ro_query", map[string]any{"graphName": "users", "query": "RETURN 1"})
	require.Contains(t, own, `"resultType":"complete"`, "the in-memory client negotiates a protocol with resultType")

	tests := []struct {
		name string
		tool string
		args any
		want string
	}{
		{"filtered list", "falkordb_list_graphs", map[string]any{}, `"graphs"`},
		{"scope refusal", "falkordb_delete_graph", map[string]any{"graphName": "users", "confirm": true}, "permission denied"},
		{"invalid graph", "falkordb_ro_query", map[string]any{"graphName": "bad name", "query": "RETURN 1"}, "invalid graph name"},
		{"rate limit", "falkordb_ro_query", map[string]any{"graphName": "users", "query": "RETURN 1"}, "rate limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := marshal(tt.tool, tt.args)
			require.Contains(t, got, tt.want)
			require.Contains(t, got, `"resultType":"complete"`)
		})
	}
}
