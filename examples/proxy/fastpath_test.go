package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// fastBench is one proxy (real FalkorDB, real RS256 tokens) served twice
// over loopback: through the SDK's streamable handler alone (sdkURL) and
// through the fast path in front of it (fastURL), with the proxy's own
// wrappers (access log, body cap, missing-token metrics, bearer check)
// around both, on the same mcp.Server, tenancy middleware and tools.
type fastBench struct {
	tp              *testProxy
	iss             *issuer
	fp              *fastPath
	sdkURL, fastURL string
	ta, tb          string // tenants
}

func newFastBench(t *testing.T, env map[string]string, hook ...mcp.Middleware) *fastBench {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"RATE_LIMIT": "off", "CONCURRENCY_LIMIT": "0"}, env), hook...)
	cfg := tp.cfg
	opts := mcp.StreamableHTTPOptions{Stateless: true, MaxRequestBodyBytes: cfg.MaxBodyBytes, SessionTimeout: cfg.SessionTimeout}
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return tp.server }, &opts)
	fp := tp.newProxyFastPath(sdk, opts)
	require.Empty(t, fp.Reason(), "the fast path is on")
	t.Cleanup(func() { fp.Close() })
	meta, err := authn.MetadataURL(tp.URL() + "/mcp")
	require.NoError(t, err)
	wrap := func(h http.Handler) string {
		mux := http.NewServeMux()
		mux.Handle("/mcp", tp.metrics.countMissingTokens(
			authn.RequireBearer(tp.verifier, &authn.BearerOptions{ResourceMetadataURL: meta})(h)))
		srv := httptest.NewServer(accessLog(tp.log, http.MaxBytesHandler(mux, cfg.MaxBodyBytes)))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ta, tb := tenants(db)
	return &fastBench{tp: tp, iss: iss, fp: fp, sdkURL: wrap(sdk), fastURL: wrap(fp), ta: ta, tb: tb}
}

// reply is what a client sees of an answer.
type reply struct {
	status int
	header http.Header
	te     []string
	length int64
	body   string
}

// do sends one request and reads the whole reply.
func do(t *testing.T, method, url string, hdr http.Header, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := httpClient(t, "").Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Header.Del("Date")
	return reply{status: resp.StatusCode, header: resp.Header, te: resp.TransferEncoding, length: resp.ContentLength, body: string(b)}
}

// sameFraming checks that got has the headers and framing of want, the
// SDK's reply, but for the one difference by design: the fast path sends
// an SSE reply with its length where the SDK sends it chunked.
func sameFraming(t *testing.T, want, got reply, fast bool) {
	t.Helper()
	if fast && got.header.Get("Content-Type") == "text/event-stream" {
		require.Equal(t, []string{"chunked"}, want.te, "SDK's transfer encoding")
		require.Empty(t, got.te, "transfer encoding")
		require.EqualValues(t, len(got.body), got.length, "content length")
		require.Equal(t, strconv.Itoa(len(got.body)), got.header.Get("Content-Length"))
		got.header = got.header.Clone()
		got.header.Del("Content-Length")
		got.te, got.length = want.te, want.length
	}
	require.Equal(t, want.header, got.header, "headers")
	require.Equal(t, want.te, got.te, "transfer encoding")
	require.Equal(t, want.length, got.length, "content length")
}

// volatile matches the parts of replies that differ from call to call:
// FalkorDB's execution times and plan-cache flags, request ids.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"executionTimeMs":[-0-9.eE+]+`), `"executionTimeMs":T`},
	{regexp.MustCompile(`execution time: [0-9.eE+-]+ ms( \(cached plan\))?`), `execution time: T ms`},
	{regexp.MustCompile(`"cached":(true|false)`), `"cached":C`},
	{regexp.MustCompile(`request id [0-9A-Za-z-]+`), `request id R`},
	{regexp.MustCompile(`"retryAfterMs":[0-9]+`), `"retryAfterMs":N`},
	{regexp.MustCompile(`retry after [0-9]+ s`), `retry after N s`},
}

func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// fastCase is one request of the differential test and the path that must
// serve it: "fast", "pass" (the fast path hands it to the SDK) or "none"
// (refused before the fast path, by the bearer check).
type fastCase struct {
	name   string
	want   string
	method string // default POST
	header http.Header
	body   string
}

const stdMeta = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`

// rpc is a tools/call body with id, tool name, arguments and _meta.
func rpc(id, name, args, meta string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"_meta":` + meta + `,"name":"` + name + `","arguments":` + args + `}}`
}

// headers are a stateless client's headers for a call of tool with token.
func headers(token, tool string) http.Header {
	h := http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {"2026-07-28"},
		"Mcp-Method":           {"tools/call"},
		"Mcp-Name":             {tool},
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func with(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			h.Del(kv[i])
		} else {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// errorHook runs inside the tenancy middleware (the proxy's test hook) and
// answers calls whose arguments hold a marker with the errors and results
// of odd tools, to compare how both paths encode them.
func errorHook(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		ctr, ok := req.(*mcp.CallToolRequest)
		if !ok {
			return next(ctx, method, req)
		}
		switch a := string(ctr.Params.Arguments); {
		case strings.Contains(a, "HOOK-plain"):
			return nil, errors.New("plain failure")
		case strings.Contains(a, "HOOK-notfound"):
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "gone"}
		case strings.Contains(a, "HOOK-wrapped"):
			return nil, fmt.Errorf("wrapped: %w", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "inner"})
		case strings.Contains(a, "HOOK-custom"):
			return nil, &jsonrpc.Error{Code: -32050, Message: "custom <b>&</b>", Data: json.RawMessage(`{"x":1}`)}
		case strings.Contains(a, "HOOK-unsupported"):
			return nil, &jsonrpc.Error{Code: mcp.CodeUnsupportedProtocolVersion, Message: "old"}
		case strings.Contains(a, "HOOK-toolerr"):
			r := &mcp.CallToolResult{} // no resultType: the SDK adds it
			r.SetError(errors.New("hook tool error <&>"))
			return r, nil
		case strings.Contains(a, "HOOK-meta"):
			return &mcp.CallToolResult{Meta: mcp.Meta{"x": 1.5, mcp.MetaKeyServerInfo: "mine"},
				Content: []mcp.Content{&mcp.TextContent{Text: "hi \u2028  "}}, StructuredContent: map[string]any{"k": []any{1, "<"}}}, nil
		case strings.Contains(a, "HOOK-empty"):
			return &mcp.CallToolResult{}, nil
		}
		return next(ctx, method, req)
	}
}

// TestFastPathDifferential sends the same requests, valid, invalid and
// hostile, through the SDK's handler and through the fast path, and
// requires the same status, headers and body (up to execution times), and
// that each was served by the path expected.
func TestFastPathDifferential(t *testing.T) {
	b := newFastBench(t, nil, errorHook)
	rw := b.iss.token(b.ta, "read write")
	ro := b.iss.token(b.ta, "read")
	adm := b.iss.token(b.ta, "read write admin")
	other := b.iss.token(b.tb, "read write")

	// The tenant's graph "g": 50 nodes with an index.
	for _, q := range []string{
		`CREATE INDEX FOR (n:N) ON (n.id)`,
		`UNWIND range(0, 49) AS i CREATE (:N {id: i, name: 'n' + toString(i), tags: ['x', 'y'], w: i * 1.5})`,
		`MERGE (n:P {k: 1}) SET n.v = 2 RETURN n.k AS k, n.v AS v`,
	} {
		r := do(t, "POST", b.sdkURL+"/mcp", headers(rw, "falkordb_query"), rpc("1", "falkordb_query", `{"graphName":"g","query":"`+q+`"}`, stdMeta))
		require.Equal(t, 200, r.status, r.body)
		require.NotContains(t, r.body, `"isError":true`, r.body)
	}
	// The other tenant's graph, to be out of reach.
	r := do(t, "POST", b.sdkURL+"/mcp", headers(other, "falkordb_query"), rpc("1", "falkordb_query", `{"graphName":"secret","query":"CREATE (:S {v: 'other-tenant-marker'})"}`, stdMeta))
	require.Equal(t, 200, r.status, r.body)

	ro1 := func(args string) string { return rpc("7", "falkordb_ro_query", args, stdMeta) }
	h := headers(rw, "falkordb_ro_query")
	lookup := `{"graphName":"g","query":"MATCH (n:N {id: $id}) RETURN n.id AS id, n.name AS name, n.tags AS tags, n.w AS w, n AS node","parameters":{"id":7}}`
	bigQuery := `{"graphName":"g","query":"MATCH (n:N) WHERE n.name <> '` + strings.Repeat("z", 100_000) + `' RETURN count(n) AS c"}`
	tooBig := `{"graphName":"g","query":"RETURN 1","pad":"` + strings.Repeat("p", int(b.tp.cfg.MaxBodyBytes)) + `"}`

	cases := []fastCase{
		// Served by the fast path: valid calls.
		{name: "lookup", want: "fast", header: h, body: ro1(lookup)},
		{name: "hop2 rows", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"MATCH (a:N)-[*0..1]-(b) WHERE a.id < $n RETURN a.id, b.name ORDER BY a.id LIMIT 50","parameters":{"n":50}}`)},
		{name: "write", want: "fast", header: headers(rw, "falkordb_query"), body: rpc("8", "falkordb_query", `{"graphName":"g","query":"MERGE (n:P {k: 1}) SET n.v = 2 RETURN n.k AS k, n.v AS v"}`, stdMeta)},
		{name: "list graphs", want: "fast", header: headers(rw, "falkordb_list_graphs"), body: rpc("9", "falkordb_list_graphs", `{}`, stdMeta)},
		{name: "schema", want: "fast", header: headers(rw, "falkordb_graph_schema"), body: rpc("10", "falkordb_graph_schema", `{"graphName":"g"}`, stdMeta)},
		{name: "explain", want: "fast", header: headers(rw, "falkordb_explain"), body: rpc("11", "falkordb_explain", `{"graphName":"g","query":"MATCH (n:N {id: 1}) RETURN n"}`, stdMeta)},
		{name: "string id", want: "fast", header: h, body: rpc(`"req-1"`, "falkordb_ro_query", lookup, stdMeta)},
		{name: "negative id", want: "fast", header: h, body: rpc(`-42`, "falkordb_ro_query", lookup, stdMeta)},
		{name: "zero id", want: "fast", header: h, body: rpc(`0`, "falkordb_ro_query", lookup, stdMeta)},
		{name: "15-digit id", want: "fast", header: h, body: rpc(`999999999999999`, "falkordb_ro_query", lookup, stdMeta)},
		{name: "pretty printed", want: "fast", header: h, body: "{\n  \"jsonrpc\": \"2.0\",\r\n\t\"id\": 3, \"method\": \"tools/call\",\n \"params\": {\"arguments\": " + lookup + ", \"name\": \"falkordb_ro_query\", \"_meta\": " + stdMeta + "}}\n"},
		{name: "unicode and escapes", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN $s AS s, 'é\u00e9\n\"\\/' AS t","parameters":{"s":"日本語 ok \u00fc\t\u0000"}}`)},
		{name: "no clientInfo, log level", want: "fast", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true},"sampling":{}},"io.modelcontextprotocol/logLevel":"debug"}`)},
		{name: "big query", want: "fast", header: h, body: ro1(bigQuery)},
		{name: "numbers", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN $a AS a, $b AS b, $c AS c, $d AS d","parameters":{"a":12345678901234567890,"b":1e308,"c":-0.5e-3,"d":[1,2.5,true,null,{"x":"y"}]}}`)},
		{name: "deep parameters", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":{"p":` + nested(25) + `}}`)},
		// Served by the fast path: refusals and errors from the tenancy
		// middleware, the SDK's validation and the tools.
		{name: "graphName not a string", want: "fast", header: h, body: ro1(`{"graphName":5,"query":"RETURN 1"}`)},
		{name: "extra field", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","foo":1}`)},
		{name: "missing query", want: "fast", header: h, body: ro1(`{"graphName":"g"}`)},
		{name: "missing graphName", want: "fast", header: h, body: ro1(`{"query":"RETURN 1"}`)},
		{name: "empty query", want: "fast", header: h, body: ro1(`{"graphName":"g","query":""}`)},
		{name: "parameters a string", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":"x"}`)},
		{name: "parameters null", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":null}`)},
		{name: "bad parameter name", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":{"a b":1}}`)},
		{name: "graph name twice", want: "fast", header: h, body: ro1(`{"graphName":"g","GraphName":"x","query":"RETURN 1"}`)},
		{name: "other tenant's physical name", want: "fast", header: h, body: ro1(`{"graphName":"` + b.tb + `_secret","query":"MATCH (n) RETURN n"}`)},
		{name: "other tenant's graph by its name", want: "fast", header: h, body: ro1(`{"graphName":"secret","query":"MATCH (n) RETURN n"}`)},
		{name: "invalid graph names", want: "fast", header: h, body: ro1(`{"graphName":"../x*{a}","query":"RETURN 1"}`)},
		{name: "underscore graph name", want: "fast", header: h, body: ro1(`{"graphName":"a_b","query":"RETURN 1"}`)},
		{name: "cypher error", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"MATCH (n RETURN n"}`)},
		{name: "write in read-only", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"CREATE (:X)"}`)},
		{name: "missing graph", want: "fast", header: h, body: ro1(`{"graphName":"nosuch","query":"MATCH (n) RETURN n"}`)},
		{name: "write with read scope", want: "fast", header: headers(ro, "falkordb_query"), body: rpc("1", "falkordb_query", `{"graphName":"g","query":"CREATE (:X)"}`, stdMeta)},
		{name: "delete without admin", want: "fast", header: headers(rw, "falkordb_delete_graph"), body: rpc("1", "falkordb_delete_graph", `{"graphName":"g","confirm":true}`, stdMeta)},
		{name: "delete unconfirmed", want: "fast", header: headers(adm, "falkordb_delete_graph"), body: rpc("1", "falkordb_delete_graph", `{"graphName":"g","confirm":false}`, stdMeta)},
		{name: "other tenant's token", want: "fast", header: headers(other, "falkordb_ro_query"), body: ro1(lookup)},
		{name: "load csv", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"LOAD CSV FROM 'http://169.254.169.254/' AS r RETURN r"}`)},
		{name: "NaN and infinity", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 0.0/0.0 AS nan, 1.0/0.0 AS inf"}`)},
		{name: "graph.list in cypher", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"CALL db.labels()"}`)},
		// Served by the fast path: errors and results of the test hook.
		{name: "hook plain error", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-plain'"}`)},
		{name: "hook method not found", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-notfound'"}`)},
		{name: "hook wrapped error", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-wrapped'"}`)},
		{name: "hook custom error", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-custom'"}`)},
		{name: "hook unsupported version", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-unsupported'"}`)},
		{name: "hook tool error", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-toolerr'"}`)},
		{name: "hook meta", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-meta'"}`)},
		{name: "hook empty result", want: "fast", header: h, body: ro1(`{"graphName":"g","query":"RETURN 'HOOK-empty'"}`)},
		{name: "hook error, string id", want: "fast", header: h, body: rpc(`"s<&>"`, "falkordb_ro_query", `{"graphName":"g","query":"RETURN 'HOOK-plain'"}`, stdMeta)},
		{name: "hook result, string id", want: "fast", header: h, body: rpc(`"s<&> "`, "falkordb_ro_query", `{"graphName":"g","query":"RETURN 'HOOK-meta'"}`, stdMeta)},
		// Passed to the SDK: outside the fast path's subset or refused
		// by the SDK's own checks.
		{name: "tool not served", want: "pass", header: headers(rw, "nope"), body: rpc("1", "nope", `{}`, stdMeta)},
		{name: "no protocol header", want: "pass", header: with(h, "Mcp-Protocol-Version", ""), body: ro1(lookup)},
		{name: "older protocol header", want: "pass", header: with(h, "Mcp-Protocol-Version", "2025-11-25"), body: ro1(lookup)},
		{name: "unknown protocol header", want: "pass", header: with(h, "Mcp-Protocol-Version", "2099-01-01"), body: ro1(lookup)},
		{name: "name header mismatch", want: "pass", header: with(h, "Mcp-Name", "falkordb_query"), body: ro1(lookup)},
		{name: "no name header", want: "pass", header: with(h, "Mcp-Name", ""), body: ro1(lookup)},
		{name: "no method header", want: "pass", header: with(h, "Mcp-Method", ""), body: ro1(lookup)},
		{name: "method header mismatch", want: "pass", header: with(h, "Mcp-Method", "tools/list"), body: ro1(lookup)},
		{name: "param header", want: "pass", header: with(h, "Mcp-Param-Graph", "g"), body: ro1(lookup)},
		{name: "last event id", want: "pass", header: with(h, "Last-Event-ID", "x_1"), body: ro1(lookup)},
		{name: "content type", want: "pass", header: with(h, "Content-Type", "text/plain"), body: ro1(lookup)},
		{name: "accept json only", want: "pass", header: with(h, "Accept", "application/json"), body: ro1(lookup)},
		{name: "foreign host", want: "pass", header: with(h, "Host", "evil.example"), body: ro1(lookup)},
		{name: "GET", want: "pass", method: "GET", header: h},
		{name: "DELETE", want: "pass", method: "DELETE", header: h},
		{name: "empty body", want: "pass", header: h, body: ""},
		{name: "not json", want: "pass", header: h, body: "{nope"},
		{name: "batch", want: "pass", header: h, body: "[" + ro1(lookup) + "]"},
		{name: "trailing data", want: "pass", header: h, body: ro1(lookup) + ` {"x":1}`},
		{name: "two messages", want: "pass", header: h, body: ro1(lookup) + ro1(lookup)},
		{name: "duplicate name", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_query","name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "duplicate arguments", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","arguments":{"graphName":"secret","query":"MATCH (n) RETURN n"},"arguments":` + lookup + `}}`},
		{name: "duplicate id", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "unknown top-level key", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"x":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "Method in capitals", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "escaped key", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"\u006eame":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "escaped name", want: "pass", header: h, body: rpc("1", `falkordb_ro\u005fquery`, lookup, stdMeta)},
		{name: "requestState", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","requestState":"x","arguments":` + lookup + `}}`},
		{name: "fractional id", want: "pass", header: h, body: rpc("1.5", "falkordb_ro_query", lookup, stdMeta)},
		{name: "exponent id", want: "pass", header: h, body: rpc("1e2", "falkordb_ro_query", lookup, stdMeta)},
		{name: "16-digit id", want: "pass", header: h, body: rpc("9999999999999999", "falkordb_ro_query", lookup, stdMeta)},
		{name: "null id", want: "pass", header: h, body: rpc("null", "falkordb_ro_query", lookup, stdMeta)},
		{name: "bool id", want: "pass", header: h, body: rpc("true", "falkordb_ro_query", lookup, stdMeta)},
		{name: "no id", want: "pass", header: h, body: `{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "jsonrpc 1.0", want: "pass", header: h, body: strings.Replace(ro1(lookup), `"2.0"`, `"1.0"`, 1)},
		{name: "tools/list body", want: "pass", header: with(h, "Mcp-Method", "tools/list"), body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":` + stdMeta + `}}`},
		{name: "no _meta", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"falkordb_ro_query","arguments":` + lookup + `}}`},
		{name: "meta version mismatch", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, strings.Replace(stdMeta, "2026-07-28", "2025-11-25", 1))},
		{name: "no capabilities", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`)},
		{name: "capabilities null", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":null}`)},
		{name: "capabilities wrong type", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":5}}`)},
		{name: "clientInfo wrong type", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":5}}`)},
		{name: "progress token", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", lookup, `{"progressToken":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`)},
		{name: "arguments an array", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", `[]`, stdMeta)},
		{name: "arguments a string", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", `"x"`, stdMeta)},
		{name: "arguments null", want: "pass", header: h, body: rpc("1", "falkordb_ro_query", `null`, stdMeta)},
		{name: "no arguments", want: "pass", header: h, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":` + stdMeta + `,"name":"falkordb_ro_query"}}`},
		{name: "too deep", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":{"p":` + nested(40) + `}}`)},
		{name: "very deep", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN 1","parameters":{"p":` + nested(1200) + `}}`)},
		{name: "invalid utf-8", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN '` + "\xff\xfe" + `' AS x"}`)},
		{name: "lone surrogate", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN '\ud800' AS x"}`)},
		{name: "bad escape", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN '\q' AS x"}`)},
		{name: "control character", want: "pass", header: h, body: ro1("{\"graphName\":\"g\",\"query\":\"RETURN '\x01' AS x\"}")},
		{name: "long number", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN $a","parameters":{"a":` + strings.Repeat("9", 50) + `}}`)},
		{name: "leading zero", want: "pass", header: h, body: ro1(`{"graphName":"g","query":"RETURN $a","parameters":{"a":01}}`)},
		{name: "body too large", want: "pass", header: h, body: ro1(tooBig)},
		// Refused before either path.
		{name: "no token", want: "none", header: headers("", "falkordb_ro_query"), body: ro1(lookup)},
		{name: "bad token", want: "none", header: headers("x.y.z", "falkordb_ro_query"), body: ro1(lookup)},
		{name: "expired token", want: "none", header: headers(b.iss.key.Mint(authntest.Claims(b.iss.jwks.URL, b.iss.aud, b.ta, time.Now().Add(-2*time.Hour), time.Hour)), "falkordb_ro_query"), body: ro1(lookup)},
		{name: "token for another audience", want: "none", header: headers(b.iss.key.Mint(authntest.Claims(b.iss.jwks.URL, "https://elsewhere/mcp", b.ta, time.Now(), time.Hour)), "falkordb_ro_query"), body: ro1(lookup)},
	}
	// The falkor tools' results, which encodeCallResult writes itself (the
	// body check proves the bytes are MarshalJSON's).
	directCases := map[string]bool{"lookup": true, "hop2 rows": true, "write": true}
	seen := map[string]bool{}
	for _, c := range cases {
		require.False(t, seen[c.name], "duplicate case %q", c.name)
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = "POST"
			}
			want := do(t, method, b.sdkURL+"/mcp", c.header, c.body)
			served, passed, direct := b.fp.served.Load(), b.fp.passed.Load(), b.fp.direct.Load()
			got := do(t, method, b.fastURL+"/mcp", c.header, c.body)
			if directCases[c.name] {
				require.Equal(t, direct+1, b.fp.direct.Load(), "the tool result was encoded by encodeCallResult")
			}
			path := "none"
			switch {
			case b.fp.served.Load() > served:
				path = "fast"
			case b.fp.passed.Load() > passed:
				path = "pass"
			}
			require.Equal(t, c.want, path, "served by")
			require.Equal(t, want.status, got.status, "status\nsdk:  %s\nfast: %s", want.body, got.body)
			sameFraming(t, want, got, path == "fast")
			require.Equal(t, normalize(want.body), normalize(got.body), "body")
			require.NotContains(t, got.body, "other-tenant-marker")
			if !strings.Contains(c.body, b.tb) { // a name the caller sent may be echoed
				require.NotContains(t, got.body, b.tb)
			}
			if testing.Verbose() {
				t.Logf("%s %d %s", path, got.status, shorten(got.body, 300))
			}
		})
	}
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// TestFastPathClient runs a go-sdk client (protocol 2026-07-28, stateless)
// against the fast path: its calls are served by the fast path and read as
// from the SDK.
func TestFastPathClient(t *testing.T) {
	b := newFastBench(t, nil)
	cs := connect(t, b.fastURL, "streamable", b.iss.token(b.ta, "read write"))
	before := b.fp.served.Load()
	res := mustCall(t, cs, "falkordb_query", map[string]any{"graphName": "c", "query": createQuery, "parameters": map[string]any{"name": "ünï"}})
	require.Contains(t, text(res), `["ünï"]`)
	require.Contains(t, structured(t, res), `"rows":[["ünï"]]`)
	require.Equal(t, []string{"c"}, listGraphs(t, cs))
	bad, err := call(t, cs, "falkordb_ro_query", map[string]any{"graphName": "c", "query": "CREATE (:X)"})
	require.NoError(t, err)
	require.True(t, bad.IsError)
	_, err = call(t, cs, "falkordb_ro_query", map[string]any{"graphName": 5, "query": "RETURN 1"})
	if err == nil {
		t.Log("a graphName of the wrong type is a tool error")
	}
	require.GreaterOrEqual(t, b.fp.served.Load()-before, int64(3), "the client's calls took the fast path")
	// tools/list goes to the SDK.
	require.NotEmpty(t, toolNames(t, cs))
}

// TestFastPathConcurrent runs calls of two tenants at once through the fast
// path (a race-detector test of the shared session and chain): each sees
// its own rows only.
func TestFastPathConcurrent(t *testing.T) {
	b := newFastBench(t, nil)
	toks := map[string]string{b.ta: b.iss.token(b.ta, "read write"), b.tb: b.iss.token(b.tb, "read write")}
	for tenant, tok := range toks {
		r := do(t, "POST", b.fastURL+"/mcp", headers(tok, "falkordb_query"),
			rpc("1", "falkordb_query", `{"graphName":"g","query":"CREATE (:T {who: $w})","parameters":{"w":"`+tenant+`"}}`, stdMeta))
		require.Equal(t, 200, r.status, r.body)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		tenant := b.ta
		if i%2 == 1 {
			tenant = b.tb
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 10 {
				r := do(t, "POST", b.fastURL+"/mcp", headers(toks[tenant], "falkordb_ro_query"),
					rpc(fmt.Sprint(k), "falkordb_ro_query", `{"graphName":"g","query":"MATCH (t:T) RETURN t.who AS who"}`, stdMeta))
				want := `[\"` + tenant + `\"]`
				if r.status != 200 || !strings.Contains(r.body, want) || strings.Count(r.body, "who") != 2 {
					errs <- fmt.Errorf("tenant %s: %d %s", tenant, r.status, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var msgs []string
	for err := range errs {
		msgs = append(msgs, err.Error())
	}
	sort.Strings(msgs)
	require.Empty(t, msgs)
}

// TestFastPathOff: configurations the fast path does not reproduce make it
// pass everything.
func TestFastPathOff(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "x", Version: "1"}, nil)
	sdk := http.NotFoundHandler()
	base := fastPathConfig{Impl: proxyImplementation, Tools: fastPathTools,
		Options: mcp.StreamableHTTPOptions{Stateless: true, MaxRequestBodyBytes: 1 << 20}}
	on := newFastPath(s, sdk, base)
	require.Empty(t, on.Reason())
	on.Close()
	for name, mod := range map[string]func(*fastPathConfig){
		"stateful":      func(c *fastPathConfig) { c.Options.Stateless = false },
		"json":          func(c *fastPathConfig) { c.Options.JSONResponse = true },
		"cancellation":  func(c *fastPathConfig) { c.Options.PropagateRequestCancellation = true },
		"no body limit": func(c *fastPathConfig) { c.Options.MaxRequestBodyBytes = -1 },
		"no tools":      func(c *fastPathConfig) { c.Tools = nil },
		"disabled":      func(c *fastPathConfig) { c.Disabled = true },
	} {
		cfg := base
		mod(&cfg)
		f := newFastPath(s, sdk, cfg)
		require.NotEmpty(t, f.Reason(), name)
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest("POST", "/mcp", strings.NewReader(rpc("1", "falkordb_ro_query", `{}`, stdMeta))))
		require.Equal(t, http.StatusNotFound, rec.Code, name)
		require.Equal(t, int64(1), f.passed.Load(), name)
	}
	// A closed session: everything passes.
	f := newFastPath(s, sdk, base)
	require.Empty(t, f.Reason())
	f.Close()
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader(rpc("1", "falkordb_ro_query", `{}`, stdMeta)))
	req.Header = headers("", "falkordb_ro_query")
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	require.Equal(t, int64(1), f.passed.Load())
}

// TestFastParse checks the envelope parser on its own.
func TestFastParse(t *testing.T) {
	c, ok := parseFastCall([]byte(rpc("12", "falkordb_ro_query", `{"graphName":"g","query":"RETURN 1"}`, stdMeta)))
	require.True(t, ok)
	require.Equal(t, "falkordb_ro_query", c.name)
	require.Equal(t, `{"graphName":"g","query":"RETURN 1"}`, string(c.args))
	f := &fastPath{metas: map[string]mcp.Meta{}}
	for range 2 { // decoded, then from the cache: a copy each time
		meta, ok := f.checkMeta(c.metaRaw)
		require.True(t, ok)
		require.Equal(t, "2026-07-28", meta["io.modelcontextprotocol/protocolVersion"])
		require.Equal(t, map[string]any{"name": "t", "version": "1"}, meta["io.modelcontextprotocol/clientInfo"])
		meta["io.modelcontextprotocol/clientInfo"].(map[string]any)["name"] = "changed"
	}
	require.Len(t, f.metas, 1)
	id, ok := c.id.Raw().(int64)
	require.True(t, ok)
	require.Equal(t, int64(12), id)
	for _, bad := range []string{
		``, `{}`, `[]`, `null`, `{"jsonrpc":"2.0"}`,
		rpc("1", "x", `{}`, `{}`),
		rpc("01", "x", `{}`, stdMeta),
		rpc("-0", "x", `{}`, stdMeta),
		rpc("1", "", `{}`, stdMeta),
		rpc("1", "x", `{"a":tru}`, stdMeta),
		rpc("1", "x", `{"a":1.}`, stdMeta),
		rpc("1", "x", `{"a":-}`, stdMeta),
		rpc("1", "x", `{"a":[1,]}`, stdMeta),
		rpc("1", "x", `{"a":1,}`, stdMeta),
		rpc("1", "x", `{"a" 1}`, stdMeta),
		rpc("1", "x", `{"a":"\u12"}`, stdMeta),
		rpc("1", "x", `{"a":"\udc00"}`, stdMeta),
		rpc("1", "x", `{"a":"x`, stdMeta),
	} {
		c, ok := parseFastCall([]byte(bad))
		if ok {
			_, ok = checkMeta(c.metaRaw)
		}
		require.False(t, ok, bad)
	}
}

// TestFastPathLimited compares the refusals of the tenancy limits (rate
// limit in FalkorDB, concurrency cap) on both paths.
func TestFastPathLimited(t *testing.T) {
	b := newFastBench(t, map[string]string{"RATE_LIMIT": "1/min", "RATE_BURST": "1"})
	tok := b.iss.token(b.ta, "read write")
	body := rpc("5", "falkordb_ro_query", `{"graphName":"g","query":"RETURN 1"}`, stdMeta)
	first := do(t, "POST", b.sdkURL+"/mcp", headers(tok, "falkordb_ro_query"), body)
	require.Equal(t, 200, first.status, first.body)
	for range 2 {
		want := do(t, "POST", b.sdkURL+"/mcp", headers(tok, "falkordb_ro_query"), body)
		served := b.fp.served.Load()
		got := do(t, "POST", b.fastURL+"/mcp", headers(tok, "falkordb_ro_query"), body)
		require.Equal(t, served+1, b.fp.served.Load())
		require.Contains(t, got.body, "rate", got.body)
		require.Equal(t, want.status, got.status)
		sameFraming(t, want, got, true)
		require.Equal(t, normalize(want.body), normalize(got.body))
	}
}

// FuzzParseFastCall: whatever the fast path's parser accepts, encoding/json
// (the SDK's reading, up to its decoder's details) reads as the same call:
// valid JSON, the same id, method, tool name, arguments and _meta.
func FuzzParseFastCall(f *testing.F) {
	for _, s := range []string{
		rpc("12", "falkordb_ro_query", `{"graphName":"g","query":"RETURN 1"}`, stdMeta),
		rpc(`"a-1"`, "falkordb_query", `{"graphName":"g","query":"CREATE ()","parameters":{"x":[1,2.5,"é",null,true]}}`, stdMeta),
		rpc("-7", "x", `{"a":{"b":{"c":[{}]}}}`, `{"io.modelcontextprotocol/logLevel":"info"}`),
		rpc("1", "x", `{"a":"\u00e9\n"}`, stdMeta),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{},"_meta":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","name":"y","arguments":{},"_meta":{}}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"x","arguments":{},"_meta":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, ok := parseFastCall(body)
		if !ok {
			return
		}
		require.True(t, json.Valid(body))
		var env struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      any             `json:"id"`
			Method  string          `json:"method"`
			Params  json.RawMessage `json:"params"`
		}
		require.NoError(t, json.Unmarshal(body, &env))
		require.Equal(t, "2.0", env.JSONRPC)
		require.Equal(t, "tools/call", env.Method)
		var params map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(env.Params, &params))
		require.Len(t, params, 3, "name, arguments and _meta, nothing else")
		var name string
		require.NoError(t, json.Unmarshal(params["name"], &name))
		require.Equal(t, name, c.name)
		require.JSONEq(t, string(params["arguments"]), string(c.args))
		require.JSONEq(t, string(params["_meta"]), string(c.metaRaw))
		switch id := c.id.Raw().(type) {
		case int64:
			require.Equal(t, float64(id), env.ID)
		case string:
			require.Equal(t, id, env.ID)
		default:
			t.Fatalf("id %T", id)
		}
	})
}
