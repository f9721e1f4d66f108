package tenancy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/graphname"
)

func testCleaner() *cleaner {
	return &cleaner{r: graphname.Default(), tenant: "acme", prefix: "acme_"}
}

func TestCleanText(t *testing.T) {
	c := testCleaner()
	tests := []struct {
		in, out, bare string
	}{
		{"acme_users", "users", "users"},
		{"(acme_users)", "(users)", "(users)"},
		{"acme_users,acme_orders", "users,orders", "users,orders"},
		{"'acme_a.b-c_d'", "'a.b-c_d'", "'a.b-c_d'"},
		{"acme_", "acme_", ""},
		{"acme_.x", "acme_.x", ".x"},
		{"xacme_users", "xacme_users", "xusers"},
		{"acacme_me_x", "acacme_me_x", "x"},
		{"acme_acme_x", "acme_x", "x"},
		{"bob_users", "bob_users", "bob_users"},
		{"no prefix here", "no prefix here", "no prefix here"},
		{"acme_" + strings.Repeat("g", 130), "g" + strings.Repeat("g", 127) + "gg", strings.Repeat("g", 130)},
	}
	for _, tt := range tests {
		got, _ := c.text(tt.in, false)
		require.Equal(t, tt.out, got, "text %q", tt.in)
		got, _ = c.text(tt.in, true)
		require.Equal(t, tt.bare, got, "bare %q", tt.in)
	}
}

func TestCleanResultContents(t *testing.T) {
	c := testCleaner()
	size := int64(3)
	res := &mcp.CallToolResult{
		Meta: mcp.Meta{"graph": "acme_users"},
		Content: []mcp.Content{
			&mcp.TextContent{Text: "acme_users", Meta: mcp.Meta{"k": "acme_orders"}},
			&mcp.ResourceLink{URI: "graph://acme_users", Name: "acme_users", Title: "t acme_x", Description: "d acme_y", Size: &size},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "graph://acme_users", Text: "text acme_users"}},
			&mcp.ImageContent{Data: []byte("acme_users"), MIMEType: "image/png", Meta: mcp.Meta{"g": "acme_z"}},
			&mcp.AudioContent{Data: []byte("x"), MIMEType: "audio/wav"},
			&mcp.ToolUseContent{ID: "1", Name: "t", Input: map[string]any{"g": "acme_users"}},
			&mcp.ToolUseContent{ID: "2", Name: "t", Input: map[string]any{"g": "users"}},
		},
	}
	before, err := json.Marshal(res)
	require.NoError(t, err)
	out, generic, err := c.result(res, func() string { return "generic" })
	require.NoError(t, err)
	require.False(t, generic)
	after, err := json.Marshal(res)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "the tool's result is not modified")

	require.Equal(t, "users", out.Meta["graph"])
	require.Equal(t, "users", out.Content[0].(*mcp.TextContent).Text)
	require.Equal(t, "orders", out.Content[0].(*mcp.TextContent).Meta["k"])
	rl := out.Content[1].(*mcp.ResourceLink)
	require.Equal(t, []string{"graph://users", "users", "t x", "d y"}, []string{rl.URI, rl.Name, rl.Title, rl.Description})
	require.Equal(t, &size, rl.Size)
	er := out.Content[2].(*mcp.EmbeddedResource)
	require.Equal(t, "graph://users", er.Resource.URI)
	require.Equal(t, "text users", er.Resource.Text)
	img := out.Content[3].(*mcp.ImageContent)
	require.Equal(t, []byte("acme_users"), img.Data, "binary data is passed as is")
	require.Equal(t, "z", img.Meta["g"])
	require.Same(t, res.Content[4], out.Content[4], "unchanged content is not copied")
	require.Equal(t, &mcp.TextContent{Text: "[content removed]"}, out.Content[5], "unknown content with a key is removed")
	require.Same(t, res.Content[6], out.Content[6])

	// Nothing to clean: the same result comes back.
	plain := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello"}}, StructuredContent: map[string]any{"a": 1}}
	got, _, err := c.result(plain, nil)
	require.NoError(t, err)
	require.Same(t, plain, got)
}

func TestCleanResultInvalidStructured(t *testing.T) {
	c := testCleaner()
	_, _, err := c.result(&mcp.CallToolResult{StructuredContent: json.RawMessage(`{"a":"acme_x"`)}, nil)
	require.Error(t, err)
}

func TestRevealsHook(t *testing.T) {
	e := newEnv(t, Config{Reveals: func(s string) bool { return strings.Contains(s, "secret-cluster") }})
	res, err := callTool(t, e.connect(acmeRW), "fail", map[string]any{"text": "node secret-cluster-3 down"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(text(res), "internal error; request id "), text(res))
}

func TestListFilterFailsClosed(t *testing.T) {
	e := newEnv(t, Config{Tools: MergeTools(allTools(), map[string]ToolPolicy{
		"raw": {Scopes: []string{ScopeRead}, ListGraphs: StructuredGraphList("graphs")},
	})})
	cs := e.connect(acmeRW)
	for _, args := range []map[string]any{
		{"text": "not json", "structured": ""},
		{"text": "x", "structured": `["acme_a"]`},
		{"text": "x", "structured": `{"graphs": "acme_a"}`},
	} {
		res, err := callTool(t, cs, "raw", args)
		require.NoError(t, err)
		require.True(t, res.IsError)
		require.True(t, strings.HasPrefix(text(res), "internal error; request id "), text(res))
	}
	res, err := callTool(t, cs, "raw", map[string]any{"text": `{"graphs":["acme_a","bob_b",7]}`})
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.JSONEq(t, `{"graphs":["a"]}`, text(res), "the text is parsed when there is no structured content")
}

func TestLineGraphList(t *testing.T) {
	keep := func(k string) (string, bool) { return graphname.Strip("acme", k) }
	res, err := LineGraphList()(keep, &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: "acme_a\r\nbob_b\n  acme_c  \n\nacme_\n"}, &mcp.TextContent{Text: "acme_d"}},
		StructuredContent: map[string]any{"leak": "bob_b"},
	})
	require.NoError(t, err)
	require.Equal(t, "a\nc\nd", res.Content[0].(*mcp.TextContent).Text)
	require.Len(t, res.Content, 1)
	require.Nil(t, res.StructuredContent)
}

func TestRowsOf(t *testing.T) {
	tests := []struct {
		res  *mcp.CallToolResult
		rows int
	}{
		{&mcp.CallToolResult{StructuredContent: json.RawMessage(`{"columns":["a"],"rows":[[1],[2]]}`)}, 2},
		{&mcp.CallToolResult{StructuredContent: map[string]any{"graphs": []string{"a"}}}, 1},
		{&mcp.CallToolResult{StructuredContent: json.RawMessage(`[1,2,3]`)}, 3},
		{&mcp.CallToolResult{StructuredContent: json.RawMessage(`{"rows":[]}`)}, 0},
		{&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: `{"data":[{"a":1},{"a":[2,3]}]}`}}}, 2},
		{&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: `not json`}}}, -1},
		{&mcp.CallToolResult{StructuredContent: json.RawMessage(`{"n":5}`)}, -1},
		{&mcp.CallToolResult{IsError: true, StructuredContent: json.RawMessage(`[1]`)}, -1},
		{nil, -1},
	}
	for i, tt := range tests {
		require.Equal(t, tt.rows, rowsOf(tt.res), "case %d", i)
	}
}

func TestEndpointSession(t *testing.T) {
	id, err := endpointSession([]byte("event: endpoint\ndata: /mcp?sessionid=ABC\n\n"))
	require.NoError(t, err)
	require.Equal(t, "ABC", id)
	for _, in := range []string{"event: message\ndata: /?sessionid=A\n\n", "event: endpoint\ndata: /mcp\n\n", ""} {
		_, err := endpointSession([]byte(in))
		require.Error(t, err, in)
	}
}

// switchable sends the token of its current value.
type switchable struct {
	token atomic.Value
}

func (s *switchable) RoundTrip(r *http.Request) (*http.Response, error) {
	return bearer{token: s.token.Load().(string), next: http.DefaultTransport}.RoundTrip(r)
}

// TestStreamablePerRequestToken: on a stateful Streamable HTTP session the
// middleware uses each request's token, not the session's first one.
func TestStreamablePerRequestToken(t *testing.T) {
	testTokens["alice-ro"] = tokenInfo("acme", "alice", ScopeRead)
	t.Cleanup(func() { delete(testTokens, "alice-ro") })
	e := newEnv(t, Config{Identify: DefaultIdentify})
	ts := e.streamable(false)
	sw := &switchable{}
	sw.token.Store("acme-rw")
	c := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: &http.Client{Transport: sw}, MaxRetries: -1}, nil)
	require.NoError(t, err)
	defer cs.Close()

	_, err = callTool(t, cs, "falkordb_query", map[string]any{"graphName": "g", "query": "RETURN 1"})
	require.NoError(t, err)
	require.Equal(t, "falkordb_query", e.rec.last().tool)

	sw.token.Store("alice-ro") // the same user, now with the read scope only
	_, err = callTool(t, cs, "falkordb_query", map[string]any{"graphName": "g", "query": "RETURN 1"})
	require.NoError(t, err)
	require.Equal(t, "falkordb_ro_query", e.rec.last().tool, "the second request's scopes apply")
}

func TestRevealsDetector(t *testing.T) {
	c := testCleaner()
	c.request = []byte(`{"graphName":"g","query":"MATCH (n:my_label RETURN n, foo_bar(1)"}`)
	c.tool = "falkordb_query"
	c.known = FalkorTools()
	// Real FalkorDB and SDK error texts: passed on.
	for _, s := range []string{
		"ERR Invalid graph operation on empty key",
		"errMsg: Invalid input 'R': expected a label, '{', a parameter or ')' line: 1, column: 19, offset: 18 errCtx: MATCH (n:my_label RETURN n errCtxOffset: 18",
		"graph.RO_QUERY is to be executed only on read-only queries",
		"Unknown function 'foo_bar'",
		"Type mismatch: expected Integer, Float, or Null but was String",
		"Division by zero",
		`unknown tool "falkordb_query"`,
		"use falkordb_ro_query for reads",
		`validating "arguments": validating root: required: missing properties: ["graphName"]`,
		"at 2026-11-29T20:15:15Z the query timed out",
		"version 4.16 of the module",
	} {
		require.False(t, c.reveals(s), s)
	}
	for _, s := range []string{
		"dial tcp 127.0.0.1:6399: connect: connection refused",
		"read tcp [::1]:53422->[::1]:6379: i/o timeout",
		"lookup falkordb.internal: no such host at falkordb.internal:6379",
		"ERR MOVED 3999 10.2.3.4:6381",
		"goroutine 1 [running]:",
		"/home/app/falkor/client.go:88 +0x1d",
		"    at Object.executeQuery (/app/dist/services/falkordb.service.js:120:15)",
		"key other_graph exists",
		"graph t-1_users is locked",
	} {
		require.True(t, c.reveals(s), s)
	}
}
