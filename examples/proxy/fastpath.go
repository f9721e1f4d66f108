package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tenantgraph/tenantgraph/falkor"
)

// The fast path serves the common request of a stateless deployment, a
// Streamable HTTP POST of one tools/call in protocol 2026-07-28, without the
// go-sdk's per-request machinery, and hands every other request to the
// SDK's handler unchanged.
//
// Why: for such a request the go-sdk v1.8.0 decodes the body about a dozen
// times (each decode allocates a 32 KiB buffer), re-encodes the tool's input
// schema to look for x-mcp-header annotations, and connects, runs and closes
// a whole server session with its goroutines; examples/bench measured that
// at about two thirds of the proxy's CPU per call.
//
// What stays the SDK's: the fast path calls the server's own receiving
// middleware chain (captured with a pass-through middleware installed
// outermost), so the in-flight tracking, the tenancy middleware (identity,
// policy, graph-name mapping, limits, audit, result cleaning), the SDK's
// tools/call handler (tool lookup, input schema validation with defaults,
// decoding, the tool, output handling) all run exactly as on the SDK path,
// with a *mcp.CallToolRequest built as the SDK builds it. The fast path
// replaces only the HTTP and JSON-RPC framing around that call: it checks
// the request as the SDK would, decodes the envelope, and encodes the reply
// as the SDK does (the result with its own MarshalJSON, the envelope as
// jsonrpc.EncodeMessage writes it, the SDK's SSE framing and headers), so
// that replies are byte for byte the SDK's.
//
// When in doubt it passes: the envelope parser accepts only a strict subset
// of JSON (no duplicate or unknown keys, no escapes in the keys and names it
// reads, valid UTF-8, no surrogate escapes, bounded depth and number
// length), and any request outside that subset, or failing any check the SDK
// makes before the call (headers, protocol version, _meta fields), goes to
// the SDK's handler with its body intact, before anything has run. Once the
// middleware chain has run, the fast path answers itself: errors from the
// chain are encoded as the SDK encodes them (HTTP 400/404 for the codes
// SEP-2575 maps, SSE otherwise). fastpath_test.go compares both paths on
// valid, invalid and hostile requests.
//
// Differences that remain, by design: an SSE reply is one event sent with
// a Content-Length, where the SDK sends it chunked (same body); the call runs on the HTTP request's
// goroutine with a context that keeps the request's values but not its
// cancellation (as the SDK's default, where a client's disconnect does not
// cancel the tool); a panic in a tool is recovered by net/http (on the SDK
// path it ends the process); req.Session is one persistent session, listed
// by Server.Sessions, whose InitializeParams are nil (the SDK's per-request
// session holds the _meta's protocol version, capabilities and client info;
// the tenancy middleware reads nil as the latest protocol, as the SDK does,
// and the falkor tools do not read it); and only tools that send nothing to
// the client during a call qualify (the falkor tools).
//
// newFastPath captures the middleware chain when it is called: middleware
// added to the server afterwards would not run on the fast path, so it must
// be the last AddReceivingMiddleware of the server.

// fastPathSDKVersion is the go-sdk version whose behaviour the fast path
// reproduces; with any other version (or a replaced module) it passes
// everything to the SDK.
const fastPathSDKVersion = "v1.8.0"

// fastProtocol is the only protocol version the fast path serves.
const fastProtocol = "2026-07-28"

// fastMaxDepth bounds the nesting of the JSON it accepts (the SDK's bound is
// 1000); fastMaxNumber the length of a number literal.
const (
	fastMaxDepth  = 32
	fastMaxNumber = 40
)

// fastPathConfig configures newFastPath.
type fastPathConfig struct {
	// Impl is the server's mcp.Implementation, the very value given to
	// mcp.NewServer: the SDK names it in each result's _meta.
	Impl *mcp.Implementation
	// Tools are the tools the fast path serves; calls of other tools pass.
	// Only tools whose input schemas have no x-mcp-header annotations
	// qualify (the falkor tools).
	Tools []string
	// Options are the options of the SDK's streamable handler.
	Options mcp.StreamableHTTPOptions
	// Disabled makes the fast path pass everything.
	Disabled bool
}

// fastPath is an http.Handler in front of the SDK's streamable handler.
type fastPath struct {
	sdk      http.Handler
	impl     *mcp.Implementation
	tools    map[string]bool
	maxBody  int64
	loopback bool // the SDK's DNS-rebinding check is on
	enabled  bool
	why      string // why it is disabled
	chain    mcp.MethodHandler
	session  *mcp.ServerSession
	conn     *fastConn
	served   atomic.Int64 // requests answered by the fast path
	passed   atomic.Int64 // requests passed to the SDK
	direct   atomic.Int64 // tool results written by encodeCallResult

	implMeta []byte // {"<serverInfo key>": impl} as the SDK encodes it

	metaMu sync.RWMutex
	metas  map[string]mcp.Meta // _meta blocks that passed checkMeta, decoded
}

// Clients send the same _meta with every call: the fast path remembers up
// to metaCacheSize blocks of at most metaCacheBytes that passed checkMeta.
const (
	metaCacheSize  = 256
	metaCacheBytes = 4 << 10
)

// newFastPath returns the fast path in front of sdk, the streamable handler
// of server. Call it after every receiving middleware has been added to
// server: it adds its own, outermost, to reach the whole chain. When the
// configuration is one it does not reproduce (stateful, JSON responses, an
// event store, cross-origin protection, request cancellation, MCPGODEBUG
// settings, another go-sdk version) it returns a handler that passes
// everything, and says why in Reason.
func newFastPath(server *mcp.Server, sdk http.Handler, cfg fastPathConfig) *fastPath {
	f := &fastPath{sdk: sdk, impl: cfg.Impl, tools: map[string]bool{}, maxBody: cfg.Options.MaxRequestBodyBytes,
		loopback: !cfg.Options.DisableLocalhostProtection, metas: map[string]mcp.Meta{}}
	for _, t := range cfg.Tools {
		f.tools[t] = true
	}
	o := cfg.Options
	switch {
	case cfg.Disabled:
		f.why = "disabled"
	case !o.Stateless:
		f.why = "stateful sessions"
	case o.JSONResponse, o.EventStore != nil, o.CrossOriginProtection != nil, o.PropagateRequestCancellation:
		f.why = "streamable handler options it does not reproduce"
	case o.MaxRequestBodyBytes <= 0:
		f.why = "no request body limit"
	case cfg.Impl == nil || len(cfg.Tools) == 0:
		f.why = "no server implementation or no tools"
	case os.Getenv("MCPGODEBUG") != "":
		f.why = "MCPGODEBUG is set"
	default:
		f.why = sdkVersionMismatch()
	}
	if f.why != "" {
		return f
	}
	var err error
	if f.implMeta, err = json.Marshal(mcp.Meta{mcp.MetaKeyServerInfo: cfg.Impl}); err != nil {
		f.why = "encoding the server's identity: " + err.Error()
		return f
	}
	f.conn = newFastConn()
	ss, err := server.Connect(context.Background(), &fastTransport{f.conn}, nil)
	if err != nil {
		f.why = "connecting its session: " + err.Error()
		return f
	}
	f.session = ss
	server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		f.chain = next
		return next
	})
	f.enabled = true
	return f
}

// sdkVersionMismatch returns why the linked go-sdk is not the one the fast
// path reproduces, or "" when it is (or the build does not say).
func sdkVersionMismatch() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path != "github.com/modelcontextprotocol/go-sdk" {
			continue
		}
		if m.Replace != nil {
			return "the go-sdk module is replaced"
		}
		if m.Version != fastPathSDKVersion {
			return "go-sdk " + m.Version + " (the fast path reproduces " + fastPathSDKVersion + ")"
		}
	}
	return ""
}

// Reason is why the fast path passes everything, or "" when it is on.
func (f *fastPath) Reason() string { return f.why }

// Close releases the fast path's session (the server's Close does too).
func (f *fastPath) Close() error {
	if f.session != nil {
		return f.session.Close()
	}
	return nil
}

func (f *fastPath) pass(w http.ResponseWriter, r *http.Request) {
	f.passed.Add(1)
	f.sdk.ServeHTTP(w, r)
}

func (f *fastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.enabled || f.conn.closed() || r.Method != http.MethodPost || !f.headersOK(r) {
		f.pass(w, r)
		return
	}
	body, ok := f.readBody(r)
	if !ok {
		f.pass(w, r) // r.Body replays what was read
		return
	}
	c, ok := parseFastCall(body)
	if ok && f.tools[c.name] && r.Header.Get("Mcp-Name") == c.name {
		c.meta, ok = f.checkMeta(c.metaRaw)
	} else {
		ok = false
	}
	if !ok {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.pass(w, r)
		return
	}
	f.served.Add(1)
	f.serve(w, r, c)
}

// headersOK makes the SDK's checks of a request's headers, in the SDK's
// words where they are the SDK's, and accepts only what the SDK accepts.
func (f *fastPath) headersOK(r *http.Request) bool {
	h := r.Header
	if f.loopback {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
			if isLoopback(la.String()) && !isLoopback(r.Host) {
				return false
			}
		}
	}
	if v := h.Values("Mcp-Protocol-Version"); len(v) != 1 || v[0] != fastProtocol {
		return false
	}
	if baseMediaType(h.Get("Content-Type")) != "application/json" {
		return false
	}
	if jsonOK, streamOK := streamableAccepts(h.Values("Accept")); !jsonOK || !streamOK {
		return false
	}
	if len(h.Values("Last-Event-ID")) > 0 || h.Get("Mcp-Method") != "tools/call" || h.Get("Mcp-Name") == "" {
		return false
	}
	for k := range h {
		if len(k) >= len("Mcp-Param-") && strings.EqualFold(k[:len("Mcp-Param-")], "Mcp-Param-") {
			return false
		}
	}
	return true
}

// readBody reads the whole body, up to the SDK's limit. When it cannot (too
// large, a read error), r.Body is set to replay what was read followed by
// the rest (or the error), so that the SDK meets the same condition.
func (f *fastPath) readBody(r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, f.maxBody+1))
	if err != nil {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), errReader{err}), r.Body}
		return nil, false
	}
	if int64(len(body)) > f.maxBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		return nil, false
	}
	return body, true
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// methodNotFound is jsonrpc2.ErrMethodNotFound of the SDK (same code and
// message); errors.Is matches *jsonrpc.Error values by code.
var methodNotFound = &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found"}

// serve runs the call through the server's middleware chain and writes the
// reply as the SDK would.
func (f *fastPath) serve(w http.ResponseWriter, r *http.Request, c *fastCall) {
	req := &mcp.CallToolRequest{
		Session: f.session,
		Params:  &mcp.CallToolParamsRaw{Meta: c.meta, Name: c.name, Arguments: c.args},
		Extra: &mcp.RequestExtra{
			TokenInfo: auth.TokenInfoFromContext(r.Context()),
			Header:    r.Header,
			// The SDK's closes nothing in protocol 2026-07-28.
			CloseSSEStream: func(mcp.CloseSSEStreamArgs) {},
		},
	}
	res, err := f.chain(context.WithoutCancel(r.Context()), "tools/call", req)
	if err == nil && res != nil {
		if n, isInt := c.id.Raw().(int64); isInt {
			if raw, merr := f.encodeResult(res); merr == nil {
				// jsonrpc.EncodeMessage's bytes, without its second pass
				// over the result.
				data := make([]byte, 0, len(`{"jsonrpc":"2.0","id":,"result":}`)+20+len(raw))
				data = append(data, `{"jsonrpc":"2.0","id":`...)
				data = strconv.AppendInt(data, n, 10)
				data = append(data, `,"result":`...)
				data = append(data, raw...)
				data = append(data, '}')
				f.write(w, data, 0)
				return
			}
		}
	}
	resp := &jsonrpc.Response{ID: c.id}
	switch {
	case err != nil:
		// jsonrpc2's processResult: a result that comes with an error is dropped.
		if errors.Is(err, methodNotFound) {
			err = fmt.Errorf("%w: %q", methodNotFound, "tools/call")
		}
		resp.Error = err
	case res == nil:
		resp.Error = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "internal error: the tools/call handler returned no result"}
	default:
		raw, merr := f.encodeResult(res)
		if merr != nil {
			resp.Error = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "internal error: " + merr.Error()}
		} else {
			resp.Result = raw
		}
	}
	data, err := jsonrpc.EncodeMessage(resp)
	if err != nil {
		http.Error(w, "failed to encode the reply", http.StatusInternalServerError)
		return
	}
	f.write(w, data, errorStatus(resp.Error))
}

// write writes a JSON-RPC response as the SDK's streamable transport does:
// one SSE event, or with status a plain JSON body.
func (f *fastPath) write(w http.ResponseWriter, data []byte, status int) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache, no-transform")
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Connection", "keep-alive")
	if status != 0 {
		// SEP-2575: protocol errors are plain JSON with an HTTP status.
		hdr.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(data)
		return
	}
	// The whole stream is this one event, so it goes out with its length,
	// in one write, where the SDK flushes the event and then ends the
	// chunked body: the same bytes, one system call less per call.
	ev := make([]byte, 0, len("event: message\ndata: \n\n")+len(data))
	ev = append(ev, "event: message\ndata: "...)
	ev = append(ev, data...)
	ev = append(ev, "\n\n"...)
	hdr.Set("Content-Length", strconv.Itoa(len(ev)))
	w.Write(ev)
}

// encodeResult does what ServerSession.handle does to a result of the new
// protocol (the server's identity in _meta; its setCompleteResultType does
// not apply to tool results, whose resultType only the SDK's tools/call
// handler sets) and encodes it as jsonrpc2's marshalToRaw does.
func (f *fastPath) encodeResult(res mcp.Result) (json.RawMessage, error) {
	ctr, isCall := res.(*mcp.CallToolResult)
	m := res.GetMeta()
	if m == nil {
		m = map[string]any{}
	}
	if _, ok := m[mcp.MetaKeyServerInfo]; !ok {
		m[mcp.MetaKeyServerInfo] = f.impl
		res.SetMeta(m)
	}
	var b []byte
	if isCall && ctr != nil {
		// What the SDK's encoder writes for it: MarshalJSON's output, which
		// is compact already.
		if b, ok := f.encodeCallResult(ctr); ok {
			f.direct.Add(1)
			return b, nil
		}
		var err error
		if b, err = ctr.MarshalJSON(); err != nil {
			return nil, err
		}
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return nil, err
		}
		b = bytes.TrimRight(buf.Bytes(), "\n")
	}
	return json.RawMessage(b), nil
}

// encodeCallResult writes what CallToolResult.MarshalJSON writes for the
// results of the falkor tools and of the tenancy middleware's refusals,
// without its reflection and its second pass over the content: it handles
// a result whose _meta is the server's identity alone and whose content is
// one plain text, with structured content as JSON or none, and reports
// false for anything else. The fields after isError (the SDK's unexported
// resultType among them) are the SDK's own encoding of the rest of the
// result. fastpath_test.go compares it with MarshalJSON.
func (f *fastPath) encodeCallResult(res *mcp.CallToolResult) ([]byte, bool) {
	if len(res.Meta) != 1 || res.Meta[mcp.MetaKeyServerInfo] != any(f.impl) || len(res.Content) != 1 {
		return nil, false
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok || tc.Meta != nil || tc.Annotations != nil {
		return nil, false
	}
	var structured json.RawMessage
	switch v := res.StructuredContent.(type) {
	case nil:
	case json.RawMessage:
		if structured = v; v == nil {
			return nil, false
		}
	default:
		return nil, false
	}
	rest := *res
	rest.Meta, rest.Content, rest.StructuredContent, rest.IsError = nil, nil, nil, false
	tail, err := rest.MarshalJSON()
	if err != nil || !bytes.HasPrefix(tail, []byte(`{"content":null`)) {
		return nil, false
	}
	text, err := json.Marshal(tc.Text)
	if err != nil {
		return nil, false
	}
	b := make([]byte, 0, len(f.implMeta)+len(text)+len(structured)+len(tail)+64)
	b = append(b, `{"_meta":`...)
	b = append(b, f.implMeta...)
	b = append(b, `,"content":[{"type":"text","text":`...)
	b = append(b, text...)
	b = append(b, "}]"...)
	if structured != nil {
		b = append(b, `,"structuredContent":`...)
		n := len(b)
		buf := bytes.NewBuffer(b)
		if json.Compact(buf, structured) != nil {
			return nil, false
		}
		b = buf.Bytes()
		if bytes.ContainsAny(b[n:], "<>&\u2028\u2029") {
			var esc bytes.Buffer
			json.HTMLEscape(&esc, b[n:])
			b = append(b[:n], esc.Bytes()...)
		}
	}
	if res.IsError {
		b = append(b, `,"isError":true`...)
	}
	return append(b, tail[len(`{"content":null`):]...), true
}

// errorStatus is the SDK's extractErrorStatus for protocol 2026-07-28.
func errorStatus(err error) int {
	var jerr *jsonrpc.Error
	if err == nil || !errors.As(err, &jerr) {
		return 0
	}
	switch jerr.Code {
	case jsonrpc.CodeMethodNotFound:
		return http.StatusNotFound
	case jsonrpc.CodeInvalidParams, mcp.CodeUnsupportedProtocolVersion, mcp.CodeMissingRequiredClientCapabilities:
		return http.StatusBadRequest
	}
	return 0
}

// isLoopback is the SDK's internal/util.IsLoopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.IsLoopback()
}

// streamableAccepts is the SDK's check of the Accept header.
func streamableAccepts(values []string) (jsonOK, streamOK bool) {
	for _, value := range values {
		for _, raw := range strings.Split(value, ",") {
			token := strings.TrimSpace(raw)
			base, _, _ := strings.Cut(token, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK = true
				streamOK = true
			}
		}
	}
	return jsonOK, streamOK
}

// baseMediaType is the SDK's check of the Content-Type header.
func baseMediaType(value string) string {
	mediaType, _, err := mime.ParseMediaType(value)
	if err != nil {
		return ""
	}
	return mediaType
}

// fastConn is the connection of the fast path's session: nothing arrives
// on it, and the server may send nothing on it (stateless servers cannot
// make requests; the in-process tools send no notifications).
type fastConn struct {
	done chan struct{}
	once sync.Once
}

func newFastConn() *fastConn { return &fastConn{done: make(chan struct{})} }

func (c *fastConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, io.EOF
	}
}

func (c *fastConn) Write(context.Context, jsonrpc.Message) error {
	return errors.New("fast path: this session sends nothing")
}

func (c *fastConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fastConn) SessionID() string { return "" }

func (c *fastConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

type fastTransport struct{ c *fastConn }

func (t *fastTransport) Connect(context.Context) (mcp.Connection, error) { return t.c, nil }

// fastCall is a parsed tools/call request.
type fastCall struct {
	id      jsonrpc.ID
	name    string
	args    json.RawMessage
	metaRaw []byte
	meta    mcp.Meta
}

// The _meta keys the fast path accepts (SEP-2575's triple and the log
// level); any other key (progressToken, ...) sends the request to the SDK.
var fastMetaKeys = map[string]bool{
	mcp.MetaKeyProtocolVersion:    true,
	mcp.MetaKeyClientCapabilities: true,
	mcp.MetaKeyClientInfo:         true,
	mcp.MetaKeyLogLevel:           true,
}

// clientCapabilitiesV2 is the shape the SDK decodes
// io.modelcontextprotocol/clientCapabilities into.
type clientCapabilitiesV2 struct {
	mcp.ClientCapabilities
	Roots *mcp.RootCapabilities `json:"roots,omitempty"`
}

// parseFastCall parses body as one JSON-RPC tools/call request of protocol
// 2026-07-28 that the SDK would accept and read the same way, or reports
// false.
func parseFastCall(body []byte) (*fastCall, bool) {
	s := &jscan{b: body}
	var (
		c                          fastCall
		haveID, haveVer, haveMeth  bool
		haveParams, haveName, args bool
		metaRaw                    []byte
	)
	ok := s.object(func(key string) bool {
		switch key {
		case "jsonrpc":
			v, ok := s.plainString()
			haveVer = ok && v == "2.0"
			return haveVer
		case "id":
			id, ok := s.id()
			c.id, haveID = id, ok
			return ok
		case "method":
			v, ok := s.plainString()
			haveMeth = ok && v == "tools/call"
			return haveMeth
		case "params":
			haveParams = true
			return s.object(func(key string) bool {
				switch key {
				case "name":
					v, ok := s.plainString()
					c.name, haveName = v, ok && v != ""
					return haveName
				case "arguments":
					start := s.ws()
					if start >= len(s.b) || s.b[start] != '{' || !s.value() {
						return false
					}
					c.args, args = json.RawMessage(s.b[start:s.i]), true
					return true
				case "_meta":
					start := s.ws()
					if start >= len(s.b) || s.b[start] != '{' || !s.value() {
						return false
					}
					metaRaw = s.b[start:s.i]
					return true
				}
				return false
			})
		}
		return false
	})
	if !ok || s.ws() != len(s.b) || !haveID || !haveVer || !haveMeth || !haveParams || !haveName || !args || metaRaw == nil {
		return nil, false
	}
	c.metaRaw = metaRaw
	return &c, true
}

// checkMeta is checkMeta with a cache; each request gets its own copy of
// the decoded _meta, as from the SDK's decoder.
func (f *fastPath) checkMeta(raw []byte) (mcp.Meta, bool) {
	f.metaMu.RLock()
	m, ok := f.metas[string(raw)]
	f.metaMu.RUnlock()
	if !ok {
		if m, ok = checkMeta(raw); !ok {
			return nil, false
		}
		if len(raw) <= metaCacheBytes {
			f.metaMu.Lock()
			if len(f.metas) >= metaCacheSize {
				clear(f.metas)
			}
			f.metas[string(raw)] = m
			f.metaMu.Unlock()
		}
	}
	return copyJSON(map[string]any(m)).(map[string]any), true
}

// copyJSON copies a decoded JSON value.
func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyJSON(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = copyJSON(e)
		}
		return a
	}
	return v
}

// checkMeta decodes the request's _meta and makes the SDK's checks of it
// (validateRequestMeta), accepting only what passes them.
func checkMeta(raw []byte) (mcp.Meta, bool) {
	// Only the known keys, each once, with plain keys.
	var fields = map[string][]byte{}
	s := &jscan{b: raw}
	if !s.object(func(key string) bool {
		if !fastMetaKeys[key] {
			return false
		}
		start := s.ws()
		if !s.value() {
			return false
		}
		fields[key] = s.b[start:s.i]
		return true
	}) {
		return nil, false
	}
	var version, level string
	if err := json.Unmarshal(fields[mcp.MetaKeyProtocolVersion], &version); err != nil || version != fastProtocol {
		return nil, false
	}
	caps := fields[mcp.MetaKeyClientCapabilities]
	if len(caps) == 0 || caps[0] != '{' || json.Unmarshal(caps, new(clientCapabilitiesV2)) != nil {
		return nil, false
	}
	if info, ok := fields[mcp.MetaKeyClientInfo]; ok {
		if info[0] != '{' || json.Unmarshal(info, new(mcp.Implementation)) != nil {
			return nil, false
		}
	}
	if l, ok := fields[mcp.MetaKeyLogLevel]; ok && json.Unmarshal(l, &level) != nil {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	return mcp.Meta(m), true
}

// jscan is a strict JSON scanner for the fast path's subset: RFC 8259 with
// valid UTF-8, no surrogate escapes, bounded depth and number length.
type jscan struct {
	b     []byte
	i     int
	depth int
}

// ws skips whitespace and returns the position of the next byte.
func (s *jscan) ws() int {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

// object scans an object whose keys are plain strings, each once, calling
// member with the scanner at each value (member must consume it).
func (s *jscan) object(member func(key string) bool) bool {
	seen := map[string]bool{}
	return s.members(func() (string, bool) {
		key, ok := s.plainString()
		if !ok || seen[key] {
			return "", false
		}
		seen[key] = true
		return key, true
	}, member)
}

// members scans an object: key reads each key (the scanner at its opening
// quote), member each value (the scanner at it; it must consume it).
func (s *jscan) members(key func() (string, bool), member func(key string) bool) bool {
	if s.ws() >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	if s.depth++; s.depth > fastMaxDepth {
		return false
	}
	if s.ws() < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.ws() >= len(s.b) {
			return false
		}
		k, ok := key()
		if !ok || s.ws() >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if !member(k) || s.ws() >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// plainString scans a string without escapes or control characters and
// returns its value.
func (s *jscan) plainString() (string, bool) {
	if s.ws() >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[start:j]
			if !utf8.Valid(v) {
				return "", false
			}
			s.i = j + 1
			return string(v), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// id scans a request id: an integer of at most 15 digits (exact as the
// float64 the SDK decodes it to) or a plain string.
func (s *jscan) id() (jsonrpc.ID, bool) {
	if s.ws() < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.plainString()
		if !ok {
			return jsonrpc.ID{}, false
		}
		id, err := jsonrpc.MakeID(v)
		return id, err == nil
	}
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 15 || (s.b[digits] == '0' && (n > 1 || digits > start)) {
		return jsonrpc.ID{}, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return jsonrpc.ID{}, false
		}
	}
	var v int64
	for _, c := range s.b[digits:s.i] {
		v = v*10 + int64(c-'0')
	}
	if digits > start {
		v = -v
	}
	id, err := jsonrpc.MakeID(float64(v))
	return id, err == nil
}

// value scans any JSON value of the subset.
func (s *jscan) value() bool {
	if s.ws() >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		// Any keys, escaped and repeated ones too (the SDK reads such
		// arguments); strings are checked by str.
		return s.members(func() (string, bool) {
			return "", s.b[s.i] == '"' && s.str()
		}, func(string) bool { return s.value() })
	case c == '[':
		s.i++
		if s.depth++; s.depth > fastMaxDepth {
			return false
		}
		if s.ws() < len(s.b) && s.b[s.i] == ']' {
			s.i++
			s.depth--
			return true
		}
		for {
			if !s.value() || s.ws() >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case ',':
				s.i++
			case ']':
				s.i++
				s.depth--
				return true
			default:
				return false
			}
		}
	case c == '"':
		return s.str()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

func (s *jscan) lit(w string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}

// str scans a string: valid UTF-8, no control characters, the standard
// escapes, \u escapes outside the surrogate range.
func (s *jscan) str() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				var r rune
				for _, h := range s.b[s.i+2 : s.i+6] {
					switch {
					case h >= '0' && h <= '9':
						r = r<<4 | rune(h-'0')
					case h >= 'a' && h <= 'f':
						r = r<<4 | rune(h-'a'+10)
					case h >= 'A' && h <= 'F':
						r = r<<4 | rune(h-'A'+10)
					default:
						return false
					}
				}
				if r >= 0xD800 && r <= 0xDFFF {
					return false
				}
				s.i += 6
			default:
				return false
			}
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return false
			}
			s.i += n
		}
	}
	return false
}

// number scans a number of the JSON grammar of at most fastMaxNumber bytes.
func (s *jscan) number() bool {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i >= len(s.b) {
		return false
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return s.i-start <= fastMaxNumber
}

// proxyImplementation is the proxy's mcp.Implementation: server.go gives it
// to mcp.NewServer, and the fast path names it in results as the SDK does.
var proxyImplementation = &mcp.Implementation{Name: "tenantgraph-proxy", Title: "tenantgraph FalkorDB proxy", Version: version}

// fastPathTools are the tools the proxy's fast path serves: the in-process
// falkor tools (their input schemas carry no x-mcp-header annotations).
var fastPathTools = []string{falkor.ToolQuery, falkor.ToolROQuery, falkor.ToolListGraphs,
	falkor.ToolDeleteGraph, falkor.ToolGraphSchema, falkor.ToolExplain}

// newProxyFastPath puts the fast path in front of streamable, the SDK's
// handler built with opts, for the proxy's in-process tools (none in
// upstream mode, where it passes everything). Call it in buildHTTP, after
// the middleware is in place.
func (p *proxy) newProxyFastPath(streamable http.Handler, opts mcp.StreamableHTTPOptions) *fastPath {
	cfg := fastPathConfig{Impl: proxyImplementation, Options: opts, Disabled: !p.cfg.FastPath}
	if !p.cfg.upstream() {
		cfg.Tools = fastPathTools
	}
	fp := newFastPath(p.server, streamable, cfg)
	if r := fp.Reason(); r != "" {
		p.log.Info("fast path for tools/call off: every request goes through the go-sdk's handler", "reason", r)
	}
	return fp
}
