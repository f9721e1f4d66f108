package tenancy

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultGraphArgument is the tool argument that names a graph unless the
// [Config] or a [ToolPolicy] says otherwise. Both the seed's tools and the
// official FalkorDB MCP server use it.
const DefaultGraphArgument = "graphName"

// DefaultQueryArgument is the tool argument whose SHA-256 the audit records
// unless a [ToolPolicy] names another.
const DefaultQueryArgument = "query"

// ToolPolicy is what the middleware requires of, and does for, one tool.
type ToolPolicy struct {
	// Scopes are the scopes a caller must all hold to call the tool and to
	// see it in tools/list. An empty list admits every identified tenant.
	Scopes []string

	// GraphArguments name the top-level arguments that hold graph names: a
	// string, or an array of strings. The middleware replaces each name by
	// the tenant's physical key before the tool sees it. Nil means
	// [Config].GraphArguments; an empty non-nil slice ([]string{}) means
	// none.
	GraphArguments []string

	// ReadOnlyVariant names the tool to route a call to when the caller
	// lacks Scopes but holds the variant's scopes (a tenant without "write"
	// calling "falkordb_query" runs "falkordb_ro_query", where the database
	// refuses writes). Routing is off when empty or when
	// [Config].NoReadOnlyRouting is set; the call is then refused.
	ReadOnlyVariant string

	// ListGraphs, when set, marks the tool as one that lists graph keys: its
	// successful results go through the filter, which keeps only the
	// caller's graphs, by their logical names.
	ListGraphs ListFilter

	// QueryArgument names the argument whose SHA-256 the audit records;
	// empty means [DefaultQueryArgument].
	QueryArgument string

	// Writes marks a tool that may create or grow the graphs it names: the
	// quotas of the caller's [Plan] are checked before it runs and its
	// graphs measured after, and cached results of its graphs are dropped.
	Writes bool

	// Deletes marks a tool that deletes the graphs it names: cached
	// results of its graphs are dropped. Quotas do not stop it.
	Deletes bool

	// Cacheable marks a read-only tool whose successful results a
	// [Config].Cache may hold.
	Cacheable bool
}

// FalkorTools returns the policy for the tools of this project's falkor
// package (the seed's tool names), a fresh map the caller may change:
//
//	falkordb_query         write        (read-only callers: falkordb_ro_query)
//	falkordb_ro_query      read
//	falkordb_explain       read
//	falkordb_graph_schema  read
//	falkordb_list_graphs   read         (result filtered: {"graphs": [...]})
//	falkordb_delete_graph  write, admin
//
// Deleting needs both "write" and "admin": admin is an add-on to write, not a
// superset, so a token with a stray admin scope and no write scope cannot
// destroy data.
func FalkorTools() map[string]ToolPolicy {
	return map[string]ToolPolicy{
		"falkordb_query":        {Scopes: []string{ScopeWrite}, ReadOnlyVariant: "falkordb_ro_query", Writes: true},
		"falkordb_ro_query":     {Scopes: []string{ScopeRead}, Cacheable: true},
		"falkordb_explain":      {Scopes: []string{ScopeRead}, Cacheable: true},
		"falkordb_graph_schema": {Scopes: []string{ScopeRead}, Cacheable: true},
		"falkordb_list_graphs":  {Scopes: []string{ScopeRead}, GraphArguments: []string{}, ListGraphs: StructuredGraphList("graphs")},
		"falkordb_delete_graph": {Scopes: []string{ScopeWrite, ScopeAdmin}, Deletes: true},
	}
}

// OfficialFalkorTools returns the policy for the tools of the official
// FalkorDB MCP server (npm @falkordb/mcpserver), for use in front of it as an
// upstream, as a fresh map:
//
//	query_graph              write        (read-only callers: query_graph_readonly)
//	query_graph_readonly     read
//	get_graph_schema         read
//	get_node_schema          read
//	get_relationship_schema  read
//	list_graphs              read         (result filtered: one name per line)
//	delete_graph             write, admin
//
// Its key-value tools (list_keys, get_key, set_key, delete_key) reach raw
// Redis keys of every tenant and are deliberately absent, hence refused.
func OfficialFalkorTools() map[string]ToolPolicy {
	return map[string]ToolPolicy{
		"query_graph":             {Scopes: []string{ScopeWrite}, ReadOnlyVariant: "query_graph_readonly", Writes: true},
		"query_graph_readonly":    {Scopes: []string{ScopeRead}, Cacheable: true},
		"get_graph_schema":        {Scopes: []string{ScopeRead}, Cacheable: true},
		"get_node_schema":         {Scopes: []string{ScopeRead}, Cacheable: true},
		"get_relationship_schema": {Scopes: []string{ScopeRead}, Cacheable: true},
		"list_graphs":             {Scopes: []string{ScopeRead}, GraphArguments: []string{}, ListGraphs: LineGraphList()},
		"delete_graph":            {Scopes: []string{ScopeWrite, ScopeAdmin}, Deletes: true},
	}
}

// MergeTools returns a new map with the policies of all ms; later maps win.
func MergeTools(ms ...map[string]ToolPolicy) map[string]ToolPolicy {
	out := make(map[string]ToolPolicy)
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// A ListFilter rewrites the successful result of a tool that lists graph
// keys so that it holds only the caller's graphs, by logical name. keep
// reports the logical name of a physical key when the key is the caller's. A
// filter must not modify res (it may belong to the tool); it returns a new
// result, or an error, which the middleware reports to the client as an
// internal error (fail closed).
type ListFilter func(keep func(key string) (graph string, ok bool), res *mcp.CallToolResult) (*mcp.CallToolResult, error)

// StructuredGraphList returns the [ListFilter] for tools whose structured
// result is an object with an array of graph keys under field, such as
// falkordb_list_graphs ({"graphs": [...]}); when the result has no structured
// content, the first text content is parsed as that JSON instead. The
// filtered result holds exactly {field: [caller's graphs]} as structured
// content and as its only text content; anything else the tool returned is
// dropped.
func StructuredGraphList(field string) ListFilter {
	return func(keep func(string) (string, bool), res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		raw, err := structuredJSON(res.StructuredContent)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			for _, c := range res.Content {
				if tc, ok := c.(*mcp.TextContent); ok {
					raw = json.RawMessage(tc.Text)
					break
				}
			}
		}
		if raw == nil {
			return nil, fmt.Errorf("list result has neither structured content nor text")
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("list result is not a JSON object: %w", err)
		}
		var keys []any
		if v, ok := obj[field]; ok {
			if err := json.Unmarshal(v, &keys); err != nil {
				return nil, fmt.Errorf("list result field %q is not an array: %w", field, err)
			}
		}
		graphs := []string{}
		for _, k := range keys {
			if s, ok := k.(string); ok {
				if g, ok := keep(s); ok {
					graphs = append(graphs, g)
				}
			}
		}
		out, err := json.Marshal(map[string][]string{field: graphs})
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{
			Meta:              res.Meta,
			Content:           []mcp.Content{&mcp.TextContent{Text: string(out)}},
			StructuredContent: json.RawMessage(out),
		}, nil
	}
}

// LineGraphList returns the [ListFilter] for tools that list one graph key
// per line of text, such as the official server's list_graphs. The filtered
// result has one text content with the caller's graphs, one per line, and no
// structured content.
func LineGraphList() ListFilter {
	return func(keep func(string) (string, bool), res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		var graphs []string
		for _, c := range res.Content {
			tc, ok := c.(*mcp.TextContent)
			if !ok {
				continue
			}
			for line := range strings.Lines(tc.Text) {
				if g, ok := keep(strings.TrimSpace(line)); ok {
					graphs = append(graphs, g)
				}
			}
		}
		return &mcp.CallToolResult{
			Meta:    res.Meta,
			Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(graphs, "\n")}},
		}, nil
	}
}

// structuredJSON returns v, a CallToolResult.StructuredContent, as JSON, or
// nil when v is nil.
func structuredJSON(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if v == nil {
			return nil, nil
		}
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshaling structured content: %w", err)
	}
	return b, nil
}
