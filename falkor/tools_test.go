package falkor_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

// connectTools serves the tools of c on an in-memory MCP connection.
func connectTools(t *testing.T, c *falkor.Client, opts *falkor.ToolOptions) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	server := mcp.NewServer(&mcp.Implementation{Name: "falkor-test", Version: "v0"}, nil)
	falkor.AddTools(server, c, opts)
	ct, st := mcp.NewInMemoryTransports()
	ss, err := server.Connect(ctx, st, nil)
	require.NoError(t, err)
	t.Cleanup(func() { ss.Close() })
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil)
	cs, err := client.Connect(ctx, ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err)
	return res
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, res.Content, 1)
	tc, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok)
	return tc.Text
}

// structured decodes the result's StructuredContent into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	data, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v))
}

func TestToolsList(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()

	names := func(cs *mcp.ClientSession) map[string]*mcp.Tool {
		res, err := cs.ListTools(ctx, nil)
		require.NoError(t, err)
		m := map[string]*mcp.Tool{}
		for _, tool := range res.Tools {
			m[tool.Name] = tool
		}
		return m
	}
	all := names(connectTools(t, c, nil))
	require.Len(t, all, 6)
	for name, tool := range all {
		require.NotEmpty(t, tool.Description, name)
		require.NotNil(t, tool.Annotations, name)
		schema := tool.InputSchema.(map[string]any)
		require.Equal(t, "object", schema["type"], name)
		if name == falkor.ToolQuery || name == falkor.ToolROQuery {
			require.Nil(t, tool.OutputSchema, "%s: no output schema, so results are not re-validated", name)
		} else {
			require.NotNil(t, tool.OutputSchema, name)
		}
	}
	readOnly := []string{falkor.ToolROQuery, falkor.ToolListGraphs, falkor.ToolGraphSchema, falkor.ToolExplain}
	for name, tool := range all {
		require.Equal(t, slices.Contains(readOnly, name), tool.Annotations.ReadOnlyHint, name)
	}
	require.True(t, *all[falkor.ToolDeleteGraph].Annotations.DestructiveHint)
	require.True(t, *all[falkor.ToolQuery].Annotations.DestructiveHint)
	require.True(t, *all[falkor.ToolQuery].Annotations.OpenWorldHint, "LOAD CSV is allowed")
	require.False(t, *all[falkor.ToolListGraphs].Annotations.OpenWorldHint)
	closed := names(connectTools(t, open(t, db, falkor.Options{DenyLoadCSV: true}), nil))
	require.False(t, *closed[falkor.ToolROQuery].Annotations.OpenWorldHint, "LOAD CSV is refused")
	props := all[falkor.ToolQuery].InputSchema.(map[string]any)["properties"].(map[string]any)
	for _, p := range []string{"graphName", "query", "parameters"} {
		require.NotEmpty(t, props[p].(map[string]any)["description"], p)
	}
	require.ElementsMatch(t, []any{"graphName", "query"}, all[falkor.ToolQuery].InputSchema.(map[string]any)["required"])
	require.ElementsMatch(t, []any{"graphName", "confirm"}, all[falkor.ToolDeleteGraph].InputSchema.(map[string]any)["required"])

	ro := names(connectTools(t, c, &falkor.ToolOptions{ReadOnly: true}))
	require.ElementsMatch(t, readOnly, slices.Collect(func(yield func(string) bool) {
		for n := range ro {
			if !yield(n) {
				return
			}
		}
	}))
	some := names(connectTools(t, c, &falkor.ToolOptions{Tools: []string{falkor.ToolQuery, falkor.ToolListGraphs}, ReadOnly: true}))
	require.Len(t, some, 1)
	require.Contains(t, some, falkor.ToolListGraphs)

	require.Panics(t, func() {
		falkor.AddTools(mcp.NewServer(&mcp.Implementation{Name: "x"}, nil), c, &falkor.ToolOptions{Tools: []string{"falkordb_nope"}})
	})
}

func TestToolsCalls(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{MaxRows: 2})
	cs := connectTools(t, c, nil)
	g := db.Graph("tools")

	// falkordb_query writes, with parameters (an integer beyond 2^53 arrives exactly).
	res := call(t, cs, falkor.ToolQuery, map[string]any{
		"graphName":  g,
		"query":      "CREATE (p:Person {name: $name, big: $big}) RETURN p",
		"parameters": map[string]any{"name": "O'Brien \"x\"\n", "big": json.Number("9007199254740993")},
	})
	require.False(t, res.IsError, text(t, res))
	var out falkor.Result
	structured(t, res, &out)
	require.Equal(t, []string{"p"}, out.Columns)
	node := out.Rows[0][0].(map[string]any)
	require.Equal(t, []any{"Person"}, node["labels"])
	require.Equal(t, "O'Brien \"x\"\n", node["properties"].(map[string]any)["name"])
	require.Equal(t, int64(1), out.Stats.NodesCreated)
	require.Contains(t, text(t, res), "1 row")
	require.Contains(t, text(t, res), "nodes created: 1")
	cnt, err := c.ROQuery(context.Background(), g, "MATCH (p:Person) WHERE p.big = 9007199254740993 RETURN count(p)", nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), cnt.Rows[0][0])

	// falkordb_ro_query reads; MaxRows truncation is reported.
	res = call(t, cs, falkor.ToolROQuery, map[string]any{"graphName": g, "query": "UNWIND range(1, 5) AS x RETURN x"})
	require.False(t, res.IsError, text(t, res))
	structured(t, res, &out)
	require.True(t, out.Truncated)
	require.Len(t, out.Rows, 2)
	require.Contains(t, text(t, res), "Truncated")

	// falkordb_ro_query refuses writes; the error names the graph as given.
	res = call(t, cs, falkor.ToolROQuery, map[string]any{"graphName": g, "query": "CREATE (:X)"})
	require.True(t, res.IsError)
	require.Contains(t, text(t, res), `graph "`+g+`"`)
	require.Contains(t, text(t, res), "read-only")

	// invalid parameters
	res = call(t, cs, falkor.ToolQuery, map[string]any{"graphName": g, "query": "RETURN 1", "parameters": map[string]any{"a b": 1}})
	require.True(t, res.IsError)
	require.Contains(t, text(t, res), `"a b"`)
	require.Contains(t, text(t, res), `graph "`+g+`"`)

	// falkordb_list_graphs
	res = call(t, cs, falkor.ToolListGraphs, map[string]any{})
	require.False(t, res.IsError)
	var list struct{ Graphs []string }
	structured(t, res, &list)
	require.Contains(t, list.Graphs, g)

	// falkordb_graph_schema
	res = call(t, cs, falkor.ToolGraphSchema, map[string]any{"graphName": g})
	require.False(t, res.IsError, text(t, res))
	var schema falkor.Schema
	structured(t, res, &schema)
	require.Equal(t, []string{"Person"}, schema.Labels)
	require.Equal(t, []string{"name", "big"}, schema.PropertyKeys)
	require.Contains(t, text(t, res), `labels: ["Person"]`)

	// falkordb_explain
	res = call(t, cs, falkor.ToolExplain, map[string]any{"graphName": g, "query": "MATCH (p:Person {name: $n}) RETURN p", "parameters": map[string]any{"n": "x"}})
	require.False(t, res.IsError, text(t, res))
	var plan struct{ Plan []string }
	structured(t, res, &plan)
	require.Equal(t, "Results", plan.Plan[0])

	// falkordb_delete_graph needs confirm: true.
	res = call(t, cs, falkor.ToolDeleteGraph, map[string]any{"graphName": g, "confirm": false})
	require.True(t, res.IsError)
	require.Contains(t, text(t, res), `graph "`+g+`"`)
	require.Contains(t, text(t, res), "confirm")
	res = call(t, cs, falkor.ToolDeleteGraph, map[string]any{"graphName": g})
	require.True(t, res.IsError, "confirm is required")
	graphs, err := c.ListGraphs(context.Background())
	require.NoError(t, err)
	require.Contains(t, graphs, g)

	res = call(t, cs, falkor.ToolDeleteGraph, map[string]any{"graphName": g, "confirm": true})
	require.False(t, res.IsError, text(t, res))
	var del struct{ Deleted bool }
	structured(t, res, &del)
	require.True(t, del.Deleted)

	for _, tool := range []string{falkor.ToolDeleteGraph, falkor.ToolGraphSchema, falkor.ToolROQuery, falkor.ToolExplain} {
		args := map[string]any{"graphName": g, "confirm": true, "query": "MATCH (n) RETURN n"}
		switch tool {
		case falkor.ToolDeleteGraph:
			delete(args, "query")
		case falkor.ToolGraphSchema:
			delete(args, "query")
			delete(args, "confirm")
		default:
			delete(args, "confirm")
		}
		res = call(t, cs, tool, args)
		require.True(t, res.IsError, tool)
		require.Equal(t, `graph "`+g+`": graph not found`, text(t, res), tool)
	}

	// Schema validation: a missing graph name is refused before the handler.
	res = call(t, cs, falkor.ToolROQuery, map[string]any{"query": "RETURN 1"})
	require.True(t, res.IsError)
}
