package tenancy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// TestConcurrentTenantsIsolated: many tenants write and read graphs of the
// same logical name at once; every read sees only the caller's own marker,
// and no answer names a physical key.
func TestConcurrentTenantsIsolated(t *testing.T) {
	const tenants, workers, calls = 8, 4, 10
	var mu sync.Mutex
	store := map[string]string{} // physical key -> marker
	e := newEnv(t, Config{Tools: MergeTools(allTools(), map[string]ToolPolicy{
		"store_write": {Scopes: []string{ScopeWrite}},
		"store_read":  {Scopes: []string{ScopeRead}},
	})})
	obj := map[string]any{"type": "object"}
	e.srv.AddTool(&mcp.Tool{Name: "store_write", InputSchema: obj}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct{ GraphName, Value string }
		_ = json.Unmarshal(req.Params.Arguments, &in)
		mu.Lock()
		store[in.GraphName] = in.Value
		mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "wrote " + in.GraphName}}}, nil
	})
	e.srv.AddTool(&mcp.Tool{Name: "store_read", InputSchema: obj}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct{ GraphName string }
		_ = json.Unmarshal(req.Params.Arguments, &in)
		mu.Lock()
		v := store[in.GraphName]
		mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("graph %s holds %s", in.GraphName, v)}}}, nil
	})

	var wg sync.WaitGroup
	errs := make(chan error, tenants*workers)
	for i := range tenants {
		tenant := fmt.Sprintf("tenant-%d", i)
		marker := "marker of " + tenant
		for range workers {
			cs := e.connect(ident(tenant, ScopeRead, ScopeWrite))
			wg.Go(func() {
				for range calls {
					res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "store_write", Arguments: map[string]any{"graphName": "shared", "value": marker}})
					if err != nil || res.IsError || text(res) != "wrote shared" {
						errs <- fmt.Errorf("%s write: %v %v", tenant, err, res)
						return
					}
					res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "store_read", Arguments: map[string]any{"graphName": "shared"}})
					if err != nil || res.IsError {
						errs <- fmt.Errorf("%s read: %v %v", tenant, err, res)
						return
					}
					if got := text(res); got != "graph shared holds "+marker {
						errs <- fmt.Errorf("%s read %q", tenant, got)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, store, tenants, "one physical graph per tenant")
}
