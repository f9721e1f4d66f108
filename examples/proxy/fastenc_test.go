package main

import (
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// encoderUnderTest is a fast path with just what encodeCallResult reads.
func encoderUnderTest(t testing.TB) *fastPath {
	impl := &mcp.Implementation{Name: "tenantgraph-proxy", Version: "v1 <&>"}
	meta, err := json.Marshal(mcp.Meta{mcp.MetaKeyServerInfo: impl})
	require.NoError(t, err)
	return &fastPath{impl: impl, implMeta: meta}
}

// checkEncoding requires encodeCallResult to write MarshalJSON's bytes, or
// to decline when wantOK is false.
func checkEncoding(t *testing.T, f *fastPath, res *mcp.CallToolResult, wantOK bool) {
	t.Helper()
	got, ok := f.encodeCallResult(res)
	require.Equal(t, wantOK, ok)
	if !ok {
		return
	}
	want, err := res.MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func TestEncodeCallResult(t *testing.T) {
	f := encoderUnderTest(t)
	meta := func() mcp.Meta { return mcp.Meta{mcp.MetaKeyServerInfo: f.impl} }
	text := func(s string) []mcp.Content { return []mcp.Content{&mcp.TextContent{Text: s}} }
	tests := []struct {
		name string
		res  *mcp.CallToolResult
		ok   bool
	}{
		{"rows", &mcp.CallToolResult{Meta: meta(), Content: text("1 row. Columns: [\"id\"]\n[7]"), StructuredContent: json.RawMessage(`{"columns":["id"],"rows":[[7]]}`)}, true},
		{"no structured content", &mcp.CallToolResult{Meta: meta(), Content: text("x")}, true},
		{"tool error", &mcp.CallToolResult{Meta: meta(), Content: text(`graph "g": boom`), IsError: true}, true},
		{"HTML and line separators", &mcp.CallToolResult{Meta: meta(), Content: text("<a href='x'>&\u2028\u2029</a>"),
			StructuredContent: json.RawMessage(`{"s":"<b>&\u2028</b>","t":"\u003c"}`)}, true},
		{"invalid UTF-8 and controls", &mcp.CallToolResult{Meta: meta(), Content: text("\xff\x00\t\"\\")}, true},
		{"structured content with spaces", &mcp.CallToolResult{Meta: meta(), Content: text(""), StructuredContent: json.RawMessage(" {\n \"a\" : [ 1 , 2 ] } ")}, true},
		{"empty text", &mcp.CallToolResult{Meta: meta(), Content: text("")}, true},
		{"request state", &mcp.CallToolResult{Meta: meta(), Content: text("x"), RequestState: "s"}, true},

		{"other meta", &mcp.CallToolResult{Meta: mcp.Meta{mcp.MetaKeyServerInfo: f.impl, "x": 1}, Content: text("x")}, false},
		{"another identity", &mcp.CallToolResult{Meta: mcp.Meta{mcp.MetaKeyServerInfo: &mcp.Implementation{Name: "n"}}, Content: text("x")}, false},
		{"no meta", &mcp.CallToolResult{Content: text("x")}, false},
		{"two contents", &mcp.CallToolResult{Meta: meta(), Content: append(text("a"), text("b")...)}, false},
		{"no content", &mcp.CallToolResult{Meta: meta()}, false},
		{"annotated text", &mcp.CallToolResult{Meta: meta(), Content: []mcp.Content{&mcp.TextContent{Text: "x", Annotations: &mcp.Annotations{Priority: 1}}}}, false},
		{"structured content as a value", &mcp.CallToolResult{Meta: meta(), Content: text("x"), StructuredContent: map[string]any{"a": 1}}, false},
		{"image", &mcp.CallToolResult{Meta: meta(), Content: []mcp.Content{&mcp.ImageContent{Data: []byte{1}, MIMEType: "image/png"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkEncoding(t, f, tt.res, tt.ok) })
	}
}

// FuzzEncodeCallResult: for any text and any structured JSON,
// encodeCallResult writes MarshalJSON's bytes.
func FuzzEncodeCallResult(f *testing.F) {
	f.Add("1 row", `{"rows":[[1]]}`, false)
	f.Add("<&>\u2028", ` { "a" : "<\u2029>" } `, true)
	f.Add("\xff", `"\ud800"`, false)
	f.Add("", ``, true)
	fp := encoderUnderTest(f)
	f.Fuzz(func(t *testing.T, text, structured string, isErr bool) {
		res := &mcp.CallToolResult{Meta: mcp.Meta{mcp.MetaKeyServerInfo: fp.impl}, Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: isErr}
		if structured != "" {
			if !json.Valid([]byte(structured)) {
				return
			}
			res.StructuredContent = json.RawMessage(structured)
		}
		checkEncoding(t, fp, res, true)
	})
}
