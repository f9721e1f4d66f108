package falkor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Names of the MCP tools registered by [AddTools].
const (
	ToolQuery       = "falkordb_query"
	ToolROQuery     = "falkordb_ro_query"
	ToolListGraphs  = "falkordb_list_graphs"
	ToolDeleteGraph = "falkordb_delete_graph"
	ToolGraphSchema = "falkordb_graph_schema"
	ToolExplain     = "falkordb_explain"
)

// readOnlyTools are the tools that cannot change data.
var readOnlyTools = []string{ToolROQuery, ToolListGraphs, ToolGraphSchema, ToolExplain}

var allTools = []string{ToolQuery, ToolROQuery, ToolListGraphs, ToolDeleteGraph, ToolGraphSchema, ToolExplain}

// ToolOptions choose the tools [AddTools] registers.
type ToolOptions struct {
	// Tools names the tools to register (see the Tool* constants); empty
	// means all six.
	Tools []string
	// ReadOnly leaves out the tools that can change data (falkordb_query and
	// falkordb_delete_graph), whatever Tools says.
	ReadOnly bool

	// Scope, when set, makes every tool that acts on one graph (all but
	// falkordb_list_graphs) run as the restricted database user it returns
	// for the call's context (see [Client.WithScope]), so that the database
	// refuses keys outside the scope whatever graph name the tool is given.
	// A multi-tenant server maps the caller's tenant to a Scope here. An
	// error refuses the call; there is no fallback to the Client's own user.
	// falkordb_list_graphs stays on the Client's user (GRAPH.LIST cannot be
	// scoped): filter its result per caller.
	Scope func(ctx context.Context) (Scope, error)

	// MaxRows, when set, caps the rows of falkordb_query and
	// falkordb_ro_query per call: the cap is the smaller of the Client's
	// Options.MaxRows and the value it returns for the call's context (a
	// multi-tenant server returns the caller's plan limit here). 0 or a
	// negative value adds no cap. A result cut to the cap is reported as
	// with Options.MaxRows: Result.Truncated and a notice in the text.
	MaxRows func(ctx context.Context) int
}

// AddTools registers the FalkorDB MCP tools on s, working through c:
//
//	falkordb_query(graphName, query, parameters?)        read and write (GRAPH.QUERY)
//	falkordb_ro_query(graphName, query, parameters?)     read only (GRAPH.RO_QUERY)
//	falkordb_list_graphs()                               {"graphs": [...]}
//	falkordb_delete_graph(graphName, confirm)            refused unless confirm is true
//	falkordb_graph_schema(graphName)                     labels, relationship types, property keys
//	falkordb_explain(graphName, query, parameters?)      execution plan
//
// The tools know nothing about tenants: they act on the graph names they are
// given (a tenancy middleware maps and checks them). Results carry readable
// text and StructuredContent: a query gives a [Result], the schema a
// [Schema]. Failures are tool errors (IsError) whose text names the graph as
// given. The guards of c's Options (MaxRows, MaxQueryLen, DenyLoadCSV,
// MaxTimeout) apply to every call, and [ToolOptions].MaxRows may lower the
// row cap per call.
//
// AddTools panics if opts names an unknown tool, like [mcp.AddTool] on an
// invalid tool.
func AddTools(s *mcp.Server, c *Client, opts *ToolOptions) {
	want := allTools
	readOnly := false
	t := tools{c: c}
	if opts != nil {
		t.scope = opts.Scope
		t.maxRows = opts.MaxRows
		if len(opts.Tools) > 0 {
			for _, name := range opts.Tools {
				if !slices.Contains(allTools, name) {
					panic(fmt.Sprintf("falkor.AddTools: unknown tool %q", name))
				}
			}
			want = opts.Tools
		}
		readOnly = opts.ReadOnly
	}
	add := func(name string) bool {
		return slices.Contains(want, name) && (!readOnly || slices.Contains(readOnlyTools, name))
	}
	// LOAD CSV makes the server fetch URLs, unless the Client refuses it.
	openWorld := ptr(!c.opts.DenyLoadCSV)
	if add(ToolQuery) {
		s.AddTool(&mcp.Tool{
			Name:  ToolQuery,
			Title: "Run a Cypher query",
			Description: "Run an openCypher query on a FalkorDB graph. The query may read and write " +
				"(CREATE, MERGE, SET, DELETE, REMOVE, index changes); writing creates the graph if it does not exist. " +
				"Put values in `parameters` and refer to them as $name in the query rather than writing them into the query text. " +
				"Returns the columns, the rows (nodes as {id, labels, properties}, relationships as " +
				"{id, type, source, destination, properties}, paths as {nodes, edges}) and statistics such as nodes created.",
			InputSchema: querySchema("Name of the graph to run the query on."),
			Annotations: &mcp.ToolAnnotations{
				Title:           "Run a Cypher query",
				DestructiveHint: ptr(true),
				OpenWorldHint:   openWorld,
			},
		}, t.rawQuery("GRAPH.QUERY"))
	}
	if add(ToolROQuery) {
		s.AddTool(&mcp.Tool{
			Name:  ToolROQuery,
			Title: "Run a read-only Cypher query",
			Description: "Run a read-only openCypher query (MATCH ... RETURN ...) on a FalkorDB graph. " +
				"The server refuses queries that would write (CREATE, MERGE, SET, DELETE, REMOVE, index changes). " +
				"Put values in `parameters` and refer to them as $name in the query. " +
				"Returns the columns, the rows (nodes as {id, labels, properties}, relationships as " +
				"{id, type, source, destination, properties}, paths as {nodes, edges}) and statistics.",
			InputSchema: querySchema("Name of the graph to query; it must exist."),
			Annotations: &mcp.ToolAnnotations{
				Title:          "Run a read-only Cypher query",
				ReadOnlyHint:   true,
				IdempotentHint: true,
				OpenWorldHint:  openWorld,
			},
		}, t.rawQuery("GRAPH.RO_QUERY"))
	}
	if add(ToolListGraphs) {
		mcp.AddTool(s, &mcp.Tool{
			Name:        ToolListGraphs,
			Title:       "List graphs",
			Description: "List the names of the FalkorDB graphs that can be queried, as {\"graphs\": [...]}.",
			InputSchema: objectSchema(map[string]any{}),
			Annotations: &mcp.ToolAnnotations{
				Title:          "List graphs",
				ReadOnlyHint:   true,
				IdempotentHint: true,
				OpenWorldHint:  ptr(false),
			},
		}, t.listGraphs)
	}
	if add(ToolDeleteGraph) {
		mcp.AddTool(s, &mcp.Tool{
			Name:        ToolDeleteGraph,
			Title:       "Delete a graph",
			Description: "Delete a FalkorDB graph with all its nodes, relationships and indexes, permanently. Requires confirm: true.",
			InputSchema: objectSchema(map[string]any{
				"graphName": graphNameSchema("Name of the graph to delete."),
				"confirm": map[string]any{
					"type":        "boolean",
					"description": "Must be true: confirms that the graph and all its data are to be deleted permanently.",
				},
			}, "graphName", "confirm"),
			Annotations: &mcp.ToolAnnotations{
				Title:           "Delete a graph",
				DestructiveHint: ptr(true),
				IdempotentHint:  true,
				OpenWorldHint:   ptr(false),
			},
		}, t.deleteGraph)
	}
	if add(ToolGraphSchema) {
		mcp.AddTool(s, &mcp.Tool{
			Name:  ToolGraphSchema,
			Title: "Show a graph's schema",
			Description: "Show the node labels, relationship types and property keys used in a FalkorDB graph. " +
				"Useful before writing a query.",
			InputSchema: objectSchema(map[string]any{
				"graphName": graphNameSchema("Name of the graph; it must exist."),
			}, "graphName"),
			Annotations: &mcp.ToolAnnotations{
				Title:          "Show a graph's schema",
				ReadOnlyHint:   true,
				IdempotentHint: true,
				OpenWorldHint:  ptr(false),
			},
		}, t.graphSchema)
	}
	if add(ToolExplain) {
		mcp.AddTool(s, &mcp.Tool{
			Name:  ToolExplain,
			Title: "Explain a Cypher query",
			Description: "Show the execution plan FalkorDB would use for an openCypher query, without running it. " +
				"Useful to check that a query uses an index.",
			InputSchema: querySchema("Name of the graph; it must exist."),
			Annotations: &mcp.ToolAnnotations{
				Title:          "Explain a Cypher query",
				ReadOnlyHint:   true,
				IdempotentHint: true,
				OpenWorldHint:  ptr(false),
			},
		}, t.explain)
	}
}

func ptr[T any](v T) *T { return &v }

func objectSchema(props map[string]any, required ...string) map[string]any {
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func graphNameSchema(desc string) map[string]any {
	return map[string]any{"type": "string", "minLength": 1, "description": desc}
}

func querySchema(graphDesc string) map[string]any {
	return objectSchema(map[string]any{
		"graphName": graphNameSchema(graphDesc),
		"query": map[string]any{
			"type":        "string",
			"minLength":   1,
			"description": "openCypher query in FalkorDB's dialect, e.g. MATCH (p:Person {name: $name}) RETURN p LIMIT 10.",
		},
		"parameters": map[string]any{
			"type": []string{"object", "null"},
			"description": "Query parameters by name, referred to as $name in the query. Names use ASCII letters, " +
				"digits and _ and do not start with a digit. Values may be strings, numbers, booleans, null, " +
				"arrays and objects (object keys must not contain a backtick).",
		},
	}, "graphName", "query")
}

// The query tools declare no output schema: the rows of a Result are
// arbitrary values, so a schema says little, and validating every result
// against one cost 12-20% of the proxy's CPU per call (examples/bench).
// StructuredContent is still the JSON of the [Result]. queryInput is what
// decodeQueryInput returns for them, and falkordb_explain's typed input.
type queryInput struct {
	GraphName  string         `json:"graphName"`
	Query      string         `json:"query"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type graphInput struct {
	GraphName string `json:"graphName"`
}

type deleteInput struct {
	GraphName string `json:"graphName"`
	Confirm   bool   `json:"confirm"`
}

type listGraphsOutput struct {
	Graphs []string `json:"graphs"`
}

type deleteOutput struct {
	Deleted bool `json:"deleted"`
}

type explainOutput struct {
	Plan []string `json:"plan"`
}

type tools struct {
	c       *Client
	scope   func(ctx context.Context) (Scope, error)
	maxRows func(ctx context.Context) int
}

// rowCap is the row cap of a query call: the smaller non-zero of
// Options.MaxRows and ToolOptions.MaxRows' value, 0 for none.
func (t tools) rowCap(ctx context.Context) int {
	limit := t.c.opts.MaxRows
	if t.maxRows != nil {
		if n := t.maxRows(ctx); n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	return limit
}

// queryRows runs a query command (GRAPH.QUERY or GRAPH.RO_QUERY) as Query
// and ROQuery do, with the row cap maxRows instead of Options.MaxRows.
func (c *Client) queryRows(ctx context.Context, cmd, graph, query string, params map[string]any, maxRows int) (*Result, error) {
	text, err := c.prepare(query, params)
	if err != nil {
		return nil, err
	}
	return c.run(ctx, cmd, graph, text, maxRows)
}

// with runs f with the Client of the call: c, or the scoped user's.
func (t tools) with(ctx context.Context, f func(c *Client) error) error {
	if t.scope == nil {
		return f(t.c)
	}
	s, err := t.scope(ctx)
	if err != nil {
		return fmt.Errorf("%w: no database user for this call: %v", ErrPermission, err)
	}
	return t.c.WithScope(ctx, s, f)
}

// rawQuery is the handler of the query tool that runs cmd (GRAPH.QUERY or
// GRAPH.RO_QUERY). It is registered with Server.AddTool rather than the
// typed mcp.AddTool: the typed wrapper decodes the arguments three times
// (a map for schema validation, the struct, and again for exact numbers)
// with the SDK's 32 KiB decode buffers, which examples/bench measured at a
// fifth of the proxy's CPU per call. decodeQueryInput checks what the input
// schema says, once, and the result is what the typed wrapper would build:
// the text, and the [Result]'s JSON as StructuredContent.
func (t tools) rawQuery(cmd string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args json.RawMessage
		if req != nil && req.Params != nil {
			args = req.Params.Arguments
		}
		in, err := decodeQueryInput(args)
		if err != nil {
			return errorResult(err), nil
		}
		var res *Result
		limit := t.rowCap(ctx)
		err = t.with(ctx, func(c *Client) (err error) {
			res, err = c.queryRows(ctx, cmd, in.GraphName, in.Query, in.Parameters, limit)
			return err
		})
		if err != nil {
			return errorResult(toolError(in.GraphName, err)), nil
		}
		structured, err := json.Marshal(res)
		if err != nil {
			return errorResult(toolError(in.GraphName, err)), nil
		}
		out := textResult(formatResult(res, limit))
		out.StructuredContent = json.RawMessage(structured)
		return out, nil
	}
}

// errorResult is a tool error, as the typed tool wrapper reports a handler's error.
func errorResult(err error) *mcp.CallToolResult {
	var res mcp.CallToolResult
	res.SetError(err)
	return &res
}

// decodeQueryInput decodes and checks the arguments of a query tool against
// its input schema (querySchema): a JSON object with exactly the keys
// graphName and query, non-empty strings, and optionally parameters, an
// object or null, whose numbers are kept exact (json.Number). Keys match
// exactly: encoding/json would match "GraphName" to graphName, and a
// tenancy middleware maps only the key spelled as in the schema. Errors
// read like the SDK's schema validation errors.
func decodeQueryInput(raw json.RawMessage) (queryInput, error) {
	var in queryInput
	s := jsonScan{b: raw}
	s.ws()
	var graph, query, params []byte
	var extra []string
	switch {
	case s.i == len(raw): // no arguments
	case !json.Valid(raw):
		return in, errNotObject
	case raw[s.i] == 'n': // null
	case raw[s.i] != '{':
		return in, errNotObject
	default:
		s.members(func(k string, v []byte) {
			switch k {
			case "graphName":
				graph = v
			case "query":
				query = v
			case "parameters":
				params = v
			default:
				if !slices.Contains(extra, k) {
					extra = append(extra, k)
				}
			}
		})
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return in, fmt.Errorf(`validating "arguments": unexpected additional properties %s`, quoteList(extra))
	}
	var missing []string
	if graph == nil {
		missing = append(missing, "graphName")
	}
	if query == nil {
		missing = append(missing, "query")
	}
	if len(missing) > 0 {
		return in, fmt.Errorf(`validating "arguments": missing properties %s`, quoteList(missing))
	}
	var err error
	if in.GraphName, err = argString("graphName", graph); err != nil {
		return in, err
	}
	if in.Query, err = argString("query", query); err != nil {
		return in, err
	}
	switch {
	case params == nil || params[0] == 'n':
	case params[0] != '{':
		return in, errors.New(`validating "arguments": "parameters" must be an object or null`)
	default:
		sc := jsonScan{b: params}
		in.Parameters = sc.value().(map[string]any)
	}
	return in, nil
}

var errNotObject = errors.New(`validating "arguments": the arguments must be a JSON object`)

// argString decodes v, the value of argument key, a non-empty string.
func argString(key string, v []byte) (string, error) {
	if v[0] != '"' {
		return "", fmt.Errorf(`validating "arguments": %q must be a string`, key)
	}
	end, esc := (&jsonScan{b: v}).str()
	str := jsonString(v[:end], esc)
	if str == "" {
		return "", fmt.Errorf(`validating "arguments": %q must not be empty`, key)
	}
	return str, nil
}

// quoteList writes names as a JSON array of strings.
func quoteList(names []string) string {
	b, _ := json.Marshal(names)
	return string(b)
}

func (t tools) listGraphs(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, listGraphsOutput, error) {
	graphs, err := t.c.ListGraphs(ctx)
	if err != nil {
		return nil, listGraphsOutput{}, errors.New("listing graphs failed: " + plain(err))
	}
	slices.Sort(graphs)
	// The text content is the JSON of the structured content (set by the SDK).
	return nil, listGraphsOutput{Graphs: graphs}, nil
}

func (t tools) deleteGraph(ctx context.Context, _ *mcp.CallToolRequest, in deleteInput) (*mcp.CallToolResult, deleteOutput, error) {
	if !in.Confirm {
		return nil, deleteOutput{}, fmt.Errorf("graph %q: not deleted: set confirm to true to delete the graph and all its data permanently", in.GraphName)
	}
	if err := t.with(ctx, func(c *Client) error { return c.DeleteGraph(ctx, in.GraphName) }); err != nil {
		return nil, deleteOutput{}, toolError(in.GraphName, err)
	}
	return textResult(fmt.Sprintf("Graph %q deleted.", in.GraphName)), deleteOutput{Deleted: true}, nil
}

func (t tools) graphSchema(ctx context.Context, _ *mcp.CallToolRequest, in graphInput) (*mcp.CallToolResult, *Schema, error) {
	var s *Schema
	err := t.with(ctx, func(c *Client) (err error) {
		s, err = c.Schema(ctx, in.GraphName)
		return err
	})
	if err != nil {
		return nil, nil, toolError(in.GraphName, err)
	}
	var b strings.Builder
	b.WriteString("labels: ")
	writeJSON(&b, s.Labels)
	b.WriteString("\nrelationship types: ")
	writeJSON(&b, s.RelationshipTypes)
	b.WriteString("\nproperty keys: ")
	writeJSON(&b, s.PropertyKeys)
	return textResult(b.String()), s, nil
}

func (t tools) explain(ctx context.Context, req *mcp.CallToolRequest, in queryInput) (*mcp.CallToolResult, explainOutput, error) {
	var plan []string
	err := t.with(ctx, func(c *Client) (err error) {
		plan, err = c.Explain(ctx, in.GraphName, in.Query, exactParams(req, in.Parameters))
		return err
	})
	if err != nil {
		return nil, explainOutput{}, toolError(in.GraphName, err)
	}
	return textResult(strings.Join(plan, "\n")), explainOutput{Plan: plan}, nil
}

// exactParams decodes the parameters again from the raw arguments with
// json.Number, so that integers beyond 2^53 arrive exactly (the SDK decodes
// them as float64). It falls back to the SDK's decoding.
func exactParams(req *mcp.CallToolRequest, decoded map[string]any) map[string]any {
	if req == nil || req.Params == nil || len(decoded) == 0 {
		return decoded
	}
	var raw struct {
		Parameters map[string]any `json:"parameters"`
	}
	dec := json.NewDecoder(bytes.NewReader(req.Params.Arguments))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || len(raw.Parameters) != len(decoded) {
		return decoded
	}
	return raw.Parameters
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// toolError is the text of a failed tool call: it names the graph as given.
func toolError(graph string, err error) error {
	return fmt.Errorf("graph %q: %s", graph, plain(err))
}

// plain is an error's text without the package prefix.
func plain(err error) string {
	return strings.ReplaceAll(err.Error(), "falkor: ", "")
}

func writeJSON(b *strings.Builder, v any) {
	switch l := v.(type) {
	case []any:
		// A row or a list: its plain values written here, the rest by
		// encoding/json.
		if l != nil {
			writeList(b, l)
			return
		}
	case []string:
		if l != nil {
			writeList(b, l)
			return
		}
	}
	if writePlainJSON(b, v) {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		b.WriteString(strconv.Quote(fmt.Sprint(v)))
		return
	}
	b.Write(data)
}

func writeList[T any](b *strings.Builder, l []T) {
	b.WriteByte('[')
	for i, e := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSON(b, e)
	}
	b.WriteByte(']')
}

// writePlainJSON writes what json.Marshal writes for v when v is a value
// that needs no encoder (nil, a bool, an int64, a string of printable ASCII
// that json.Marshal writes as it is), and reports whether it did.
func writePlainJSON(b *strings.Builder, v any) bool {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int64:
		var buf [20]byte
		b.Write(strconv.AppendInt(buf[:0], v, 10))
	case string:
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
		}
		b.WriteByte('"')
		b.WriteString(v)
		b.WriteByte('"')
	default:
		return false
	}
	return true
}

// formatResult renders a result as text: the columns, one JSON array per
// row, the truncation notice and the statistics.
func formatResult(res *Result, maxRows int) string {
	var b strings.Builder
	b.Grow(128 + 32*len(res.Rows))
	switch n := len(res.Rows); {
	case len(res.Columns) == 0:
		b.WriteString("The query returned no columns.")
	case n == 1:
		b.WriteString("1 row. Columns: ")
		writeJSON(&b, res.Columns)
	default:
		b.WriteString(strconv.Itoa(n))
		b.WriteString(" rows. Columns: ")
		writeJSON(&b, res.Columns)
	}
	for _, row := range res.Rows {
		b.WriteByte('\n')
		writeJSON(&b, row)
	}
	if res.Truncated {
		fmt.Fprintf(&b, "\nTruncated: the query returned more than %d rows and only the first %d are shown; add LIMIT or narrow the query.", maxRows, maxRows)
	}
	b.WriteString("\nStatistics: ")
	st := res.Stats
	for _, c := range []struct {
		n    int64
		what string
	}{
		{st.NodesCreated, "nodes created"}, {st.NodesDeleted, "nodes deleted"},
		{st.RelationshipsCreated, "relationships created"}, {st.RelationshipsDeleted, "relationships deleted"},
		{st.PropertiesSet, "properties set"}, {st.PropertiesRemoved, "properties removed"},
		{st.LabelsAdded, "labels added"}, {st.LabelsRemoved, "labels removed"},
		{st.IndicesCreated, "indices created"}, {st.IndicesDeleted, "indices deleted"},
	} {
		if c.n != 0 {
			fmt.Fprintf(&b, "%s: %d, ", c.what, c.n)
		}
	}
	b.WriteString("execution time: ")
	b.WriteString(strconv.FormatFloat(st.ExecutionTimeMs, 'f', -1, 64))
	b.WriteString(" ms")
	if st.Cached {
		b.WriteString(" (cached plan)")
	}
	b.WriteByte('.')
	return b.String()
}
