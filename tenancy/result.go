package tenancy

import (
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// protocolResultType is the first MCP protocol version whose tool results
// carry "resultType" (multi round-trip requests); clients of that version,
// such as the Python SDK, refuse a result without it.
const protocolResultType = "2026-07-28"

// completeTemplate is an empty tool result whose resultType is "complete".
// The go-sdk keeps that field unexported and sets it only on the result a
// tool handler returned; a JSON round trip, done once here, is the only way
// to set it from outside the SDK. Results the middleware builds itself start
// from a copy of it.
var completeTemplate = func() (r mcp.CallToolResult) {
	if err := json.Unmarshal([]byte(`{"content":[],"resultType":"complete"}`), &r); err != nil {
		panic("tenancy: " + err.Error())
	}
	r.Content = nil
	return r
}()

// wantsResultType reports whether the client of req expects resultType in
// tool results, by the SDK's own rule: the negotiated protocol version, or
// the latest when there was no initialize (stateless requests).
func wantsResultType(req mcp.Request) bool {
	ss, ok := req.GetSession().(*mcp.ServerSession)
	if !ok || ss == nil {
		return false
	}
	ip := ss.InitializeParams()
	return ip == nil || ip.ProtocolVersion >= protocolResultType
}

// newResult returns an empty tool result marked as the SDK would mark a
// tool handler's result for this call's client.
func (c *call) newResult() *mcp.CallToolResult {
	if c.complete {
		r := completeTemplate
		return &r
	}
	return &mcp.CallToolResult{}
}

// toolError returns a tool error result with text msg.
func (c *call) toolError(msg string) *mcp.CallToolResult {
	r := c.newResult()
	r.IsError = true
	r.Content = []mcp.Content{&mcp.TextContent{Text: msg}}
	return r
}

// inherit returns a copy of orig, the tool's own result, with the visible
// fields of repl: a result built by a ListFilter keeps what the SDK set on
// the original (such as resultType).
func inherit(orig, repl *mcp.CallToolResult) *mcp.CallToolResult {
	cp := *orig
	cp.Meta, cp.Content, cp.StructuredContent, cp.IsError = repl.Meta, repl.Content, repl.StructuredContent, repl.IsError
	return &cp
}
