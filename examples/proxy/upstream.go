package main

// Upstream mode: authn and tenancy in front of an existing MCP server.
//
// With -upstream URL (Streamable HTTP) or -upstream-cmd "…" (stdio) the proxy
// serves the tools of another MCP server instead of the in-process falkor
// tools, for example the official FalkorDB MCP server (npm
// @falkordb/mcpserver: query_graph, query_graph_readonly, list_graphs, …).
// The proxy connects to it once, as an MCP client, mirrors its tools and
// forwards each call; the tenancy middleware on the proxy's server maps graph
// names before the call and cleans the answer after it, exactly as for the
// in-process tools.
//
// What crosses to the upstream, and what does not:
//
//   - The client's bearer token never does. The proxy authenticates upstream
//     with its own credential (UPSTREAM_TOKEN, sent as "Authorization: Bearer
//     <token>") added by an http.RoundTripper to the requests the proxy's MCP
//     client builds; redirects are not followed, so the credential goes to the
//     configured origin only.
//   - Each call is sent with fresh parameters: the tool name and the arguments
//     (as the tenancy middleware rewrote them), nothing else; no _meta, so no
//     progress tokens and no io.modelcontextprotocol/ keys of the client's
//     session reach a stateful upstream.
//   - Arguments named "parameters" are renamed "params" for upstream tools whose
//     input schema has a "params" property and no "parameters" one (the
//     official server's query tools): the seed's clients send "parameters", and
//     the official server silently drops unknown arguments, so a query would
//     otherwise run without its parameters. Sending both is refused.
//   - Nor does anything else of the client's request: upstream calls and
//     sessions start from an empty context, not the request's (which holds
//     its verified token and its negotiated protocol version).
//   - Upstream notifications (log messages, progress, list changes) are never
//     passed to clients: the official server sends one session's error logs,
//     with query fragments, to whichever session it created last.
//
// Failures: when the upstream cannot be reached, or its session dies (the
// official server answers 400, not 404, for a session it no longer knows, for
// example after a restart), the proxy drops the session and connects again.
// A call is sent a second time only when it certainly did not reach the
// upstream (the request was never written, or the upstream refused the
// session), or when the tool is read-only (the official server's
// query_graph_readonly, list_graphs and get_*_schema, or a tool annotated
// readOnlyHint or idempotentHint); a write that may have run is never
// repeated, and the client is told so. Clients see a tool error, "upstream MCP
// server unavailable; retry later", with no internal address; the log has the
// detail. /readyz pings the upstream (Ready).
//
// With -upstream-cmd the command line is split into words as a shell would,
// without expansions, and runs with the proxy's environment and stderr; a
// child that exits is started again on the next call.
//
// The tools are mirrored once, at start: tools the upstream adds later are not
// served until the proxy restarts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Messages of the tool errors that upstream failures produce. They name no
// address and no internal detail.
const (
	msgUpstreamUnavailable = "upstream MCP server unavailable; retry later"
	msgUpstreamMayHaveRun  = msgUpstreamUnavailable +
		" (the connection broke while the call was running: it may or may not have taken effect, so check before repeating a write)"
)

// Limits and delays of the upstream connection.
const (
	upstreamConnectTimeout   = 15 * time.Second // connect and initialize, or list tools
	upstreamDialTimeout      = 10 * time.Second
	upstreamTerminateTimeout = time.Second // stdio: SIGTERM this long after closing stdin
	upstreamMaxTools         = 1000        // tools mirrored at most
)

// upstreamReadOnlyTools are the read-only tools of the official FalkorDB MCP
// server (it declares no annotations): calls to them may be sent again after
// a broken connection. Tools of other servers qualify through their
// ReadOnlyHint or IdempotentHint annotations.
var upstreamReadOnlyTools = map[string]bool{
	"query_graph_readonly":    true,
	"list_graphs":             true,
	"get_graph_schema":        true,
	"get_node_schema":         true,
	"get_relationship_schema": true,
}

var errUpstreamClosed = errors.New("upstream connection closed")

// addUpstreamTools connects to the upstream MCP server named by cfg
// (UpstreamURL or UpstreamCmd), mirrors its tools onto s and returns the
// connection; Close it when the server stops. ctx bounds the start only.
func addUpstreamTools(ctx context.Context, s *mcp.Server, cfg *config) (io.Closer, error) {
	u, err := newUpstreamConn(cfg, slog.Default().With("component", "upstream"))
	if err != nil {
		return nil, err
	}
	if err := u.mirror(ctx, s); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// upstreamConn is the proxy's connection to the upstream server, shared by
// all calls. It holds at most one client session and replaces it when it
// breaks. It is safe for concurrent use.
type upstreamConn struct {
	dial   func(ctx context.Context) (*mcp.ClientSession, error)
	http   bool   // Streamable HTTP (calls are traced), else stdio
	target string // the upstream, for log lines: URL without credentials, or the program
	log    *slog.Logger

	dropped atomic.Int64 // upstream notifications dropped

	mu         sync.Mutex
	cur        *upstreamSession // nil: connect on next use
	connecting *upstreamDialing // non-nil while a connect runs
	closed     bool
	bg         sync.WaitGroup // session watchers and background closes
}

// upstreamSession is one client session and its end.
type upstreamSession struct {
	cs   *mcp.ClientSession
	done chan struct{} // closed when the session has ended
}

func (s *upstreamSession) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// upstreamDialing is a connect in progress; waiters get its outcome.
type upstreamDialing struct {
	done chan struct{} // closed when sess or err is set
	sess *upstreamSession
	err  error
}

// newUpstreamConn checks cfg and prepares the connection without connecting.
func newUpstreamConn(cfg *config, log *slog.Logger) (*upstreamConn, error) {
	u := &upstreamConn{log: log}
	// Upstream log messages and progress notifications end here: they are
	// counted, never forwarded (nor logged: they may hold other sessions'
	// queries).
	drop := func() { u.dropped.Add(1) }
	client := mcp.NewClient(&mcp.Implementation{Name: "tenantgraph-proxy", Version: "1"}, &mcp.ClientOptions{
		// Advertise nothing: the proxy answers no roots, sampling or
		// elicitation requests.
		Capabilities:                &mcp.ClientCapabilities{},
		LoggingMessageHandler:       func(context.Context, *mcp.LoggingMessageRequest) { drop() },
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { drop() },
	})
	switch {
	case cfg.UpstreamURL != "" && cfg.UpstreamCmd != "":
		return nil, errors.New("set either UPSTREAM_URL (-upstream) or UPSTREAM_CMD (-upstream-cmd), not both")
	case cfg.UpstreamURL != "":
		endpoint, err := url.Parse(cfg.UpstreamURL)
		if err != nil || (endpoint.Scheme != "http" && endpoint.Scheme != "https") || endpoint.Host == "" {
			return nil, errors.New("UPSTREAM_URL (-upstream) must be the http:// or https:// URL of a Streamable HTTP MCP endpoint, such as http://127.0.0.1:3000/mcp")
		}
		if endpoint.User != nil {
			return nil, errors.New("UPSTREAM_URL (-upstream) must not hold credentials; set UPSTREAM_TOKEN instead")
		}
		hc := &http.Client{
			Transport: &upstreamTransport{base: newUpstreamHTTPTransport(), authorization: cfg.UpstreamAuthHeader},
			// Never follow redirects: the transport adds the upstream
			// credential to every request, wherever it goes.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		u.http = true
		u.target = endpoint.Scheme + "://" + endpoint.Host + endpoint.Path
		u.dial = func(ctx context.Context) (*mcp.ClientSession, error) {
			return client.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint:   cfg.UpstreamURL,
				HTTPClient: hc,
				// Nothing to receive outside calls: no standalone stream
				// (which would also keep the official server from
				// shutting down while the proxy is connected).
				DisableStandaloneSSE: true,
			}, nil)
		}
	case cfg.UpstreamCmd != "":
		argv, err := splitCommandLine(cfg.UpstreamCmd)
		if err != nil {
			return nil, fmt.Errorf("UPSTREAM_CMD (-upstream-cmd): %w", err)
		}
		if _, err := exec.LookPath(argv[0]); err != nil {
			return nil, fmt.Errorf("UPSTREAM_CMD (-upstream-cmd): %w", err)
		}
		u.target = argv[0]
		u.dial = func(ctx context.Context) (*mcp.ClientSession, error) {
			// Not CommandContext: the process outlives the call that
			// started it. The child inherits the environment (the official
			// server reads FALKORDB_HOST and the like from it).
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stderr = os.Stderr
			return client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: upstreamTerminateTimeout}, nil)
		}
	default:
		return nil, errors.New("no upstream configured: set UPSTREAM_URL (-upstream) or UPSTREAM_CMD (-upstream-cmd)")
	}
	return u, nil
}

// newUpstreamHTTPTransport is http.DefaultTransport with bounded dialing.
func newUpstreamHTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = upstreamDialTimeout
	// Every tenant's calls share this one upstream: keep as many idle
	// connections as calls in flight, or Go's default of 2 per host makes
	// every other call at concurrency 16 open a new connection (measured by
	// examples/bench: 920 TIME_WAIT sockets per 2,300 calls).
	t.MaxIdleConnsPerHost = upstreamIdleConns
	return t
}

// upstreamIdleConns is the number of idle connections kept to the upstream.
const upstreamIdleConns = 64

// mirror lists the upstream tools (all pages) and adds a forwarding tool to s
// for each. Tools whose input schema is not an object, which s.AddTool would
// refuse by panicking, are repaired when the schema merely lacks its type, and
// otherwise skipped with a log line.
func (u *upstreamConn) mirror(ctx context.Context, s *mcp.Server) error {
	ctx, cancel := context.WithTimeout(ctx, upstreamConnectTimeout)
	defer cancel()
	sess, err := u.session(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", u.target, err)
	}
	var tools []*mcp.Tool
	for t, err := range sess.cs.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("list tools of %s: %w", u.target, err)
		}
		if len(tools) == upstreamMaxTools {
			u.log.Warn("upstream lists too many tools; ignoring the rest", "max", upstreamMaxTools)
			break
		}
		tools = append(tools, t)
	}
	added := 0
	for _, t := range tools {
		m, err := mirrorTool(t)
		if err != nil {
			u.log.Warn("upstream tool skipped", "tool", t.Name, "reason", err.Error())
			continue
		}
		if m.repaired {
			u.log.Warn("upstream tool's input schema has no type; serving it as an object schema", "tool", t.Name)
		}
		if err := addToolSafely(s, m.tool, u.handler(m)); err != nil {
			u.log.Warn("upstream tool skipped", "tool", t.Name, "reason", err.Error())
			continue
		}
		added++
	}
	if added == 0 {
		return fmt.Errorf("%s offers no tool the proxy can serve", u.target)
	}
	u.log.Info("upstream tools mirrored", "upstream", u.target, "tools", added)
	return nil
}

// addToolSafely is s.AddTool, with its panics (invalid schemas) as errors.
func addToolSafely(s *mcp.Server, t *mcp.Tool, h mcp.ToolHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("refused by the MCP server: %v", r)
		}
	}()
	s.AddTool(t, h)
	return nil
}

// mirroredTool is an upstream tool as the proxy serves it.
type mirroredTool struct {
	tool        *mcp.Tool
	aliasParams bool // rename the argument "parameters" to "params"
	readOnly    bool // may be sent again after a broken connection
	repaired    bool // the input schema lacked "type": "object"
}

// mirrorTool copies an upstream tool for the proxy's server. Its input schema
// must be a JSON object whose type is "object" or absent (then set).
func mirrorTool(t *mcp.Tool) (mirroredTool, error) {
	if t == nil || t.Name == "" {
		return mirroredTool{}, errors.New("tool without a name")
	}
	raw, err := json.Marshal(t.InputSchema)
	if err != nil {
		return mirroredTool{}, fmt.Errorf("input schema: %w", err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil || schema == nil {
		return mirroredTool{}, errors.New("input schema is not a JSON object")
	}
	m := mirroredTool{}
	switch typ, ok := schema["type"]; {
	case !ok:
		schema["type"] = "object"
		m.repaired = true
	case typ != "object":
		return mirroredTool{}, fmt.Errorf(`input schema has type %v, not "object"`, typ)
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		_, hasParams := props["params"]
		_, hasParameters := props["parameters"]
		m.aliasParams = hasParams && !hasParameters
	}
	m.readOnly = upstreamReadOnlyTools[t.Name] ||
		(t.Annotations != nil && (t.Annotations.ReadOnlyHint || t.Annotations.IdempotentHint))
	copied := &mcp.Tool{
		Name:         t.Name,
		Title:        t.Title,
		Description:  t.Description,
		InputSchema:  schema,
		OutputSchema: t.OutputSchema,
		Icons:        t.Icons,
		Meta:         withoutReservedMeta(t.Meta),
	}
	if t.Annotations != nil {
		a := *t.Annotations
		copied.Annotations = &a
	}
	m.tool = copied
	return m, nil
}

// withoutReservedMeta returns meta without the keys whose prefix the MCP
// specification reserves for itself (a label "modelcontextprotocol" or "mcp",
// as in io.modelcontextprotocol/related-task): they describe the upstream's
// session, not the proxy's.
func withoutReservedMeta(meta mcp.Meta) mcp.Meta {
	out := maps.Clone(meta)
	maps.DeleteFunc(out, func(k string, _ any) bool {
		prefix, _, ok := strings.Cut(k, "/")
		if !ok {
			return false
		}
		for label := range strings.SplitSeq(prefix, ".") {
			if label == "modelcontextprotocol" || label == "mcp" {
				return true
			}
		}
		return false
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// upstreamArguments prepares the arguments of a forwarded call: a JSON object
// (absent arguments are {}), with "parameters" renamed "params" when alias is
// set. Re-encoding also means the upstream sees exactly the members the
// proxy saw (for duplicate keys, the last one, as in JavaScript).
func upstreamArguments(raw json.RawMessage, alias bool) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return json.RawMessage("{}"), nil
	}
	var args map[string]json.RawMessage
	if err := json.Unmarshal(raw, &args); err != nil || args == nil {
		return nil, errors.New("tool arguments must be a JSON object")
	}
	if alias {
		if p, ok := args["parameters"]; ok {
			if _, both := args["params"]; both {
				return nil, errors.New(`give the query parameters once, as "params" ("parameters" is accepted as another name for it)`)
			}
			delete(args, "parameters")
			args["params"] = p
		}
	}
	out, err := json.Marshal(args)
	if err != nil {
		return nil, errors.New("tool arguments must be a JSON object")
	}
	return out, nil
}

// handler returns the tool handler that forwards calls of m to the upstream.
func (u *upstreamConn) handler(m mirroredTool) mcp.ToolHandler {
	name, alias, readOnly := m.tool.Name, m.aliasParams, m.readOnly
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var raw json.RawMessage
		if req.Params != nil {
			raw = req.Params.Arguments
		}
		args, err := upstreamArguments(raw, alias)
		if err != nil {
			return toolError(err.Error()), nil
		}
		return u.call(ctx, name, args, readOnly)
	}
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// callOutcome classifies a forwarded call.
type callOutcome int

const (
	callOK         callOutcome = iota // result received
	callAnswered                      // the upstream answered with a JSON-RPC error
	callCanceled                      // the caller's context ended
	callRefused                       // the upstream refused the proxy's credential (401, 403)
	callNotSent                       // the call certainly did not reach the upstream's tools
	callMayHaveRun                    // the connection broke after the call was sent
)

// call forwards one tool call, connecting (again) when needed. A call whose
// first attempt failed for want of a connection is sent once more on a new
// session when it did not reach the upstream, or when readOnly is set.
func (u *upstreamConn) call(ctx context.Context, name string, args json.RawMessage, readOnly bool) (*mcp.CallToolResult, error) {
	for attempt := 1; ; attempt++ {
		sess, err := u.session(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			u.log.Warn("upstream unavailable", "upstream", u.target, "tool", name, "err", err.Error())
			return toolError(msgUpstreamUnavailable), nil
		}
		res, outcome, err := u.callOnce(ctx, sess, name, args)
		switch outcome {
		case callOK:
			return res, nil
		case callAnswered, callCanceled:
			return nil, err
		}
		u.drop(sess)
		if outcome == callRefused {
			u.log.Error("upstream refused the proxy's credential; check UPSTREAM_TOKEN", "upstream", u.target, "tool", name)
			return toolError(msgUpstreamUnavailable), nil
		}
		retry := attempt == 1 && (outcome == callNotSent || readOnly)
		u.log.Warn("upstream call failed", "upstream", u.target, "tool", name,
			"sent", outcome == callMayHaveRun, "retry", retry, "err", errString(err))
		if retry {
			continue
		}
		if outcome == callMayHaveRun && !readOnly {
			return toolError(msgUpstreamMayHaveRun), nil
		}
		return toolError(msgUpstreamUnavailable), nil
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// callOnce sends one call on sess and classifies the result.
func (u *upstreamConn) callOnce(ctx context.Context, sess *upstreamSession, name string, args json.RawMessage) (*mcp.CallToolResult, callOutcome, error) {
	if sess.ended() {
		return nil, callNotSent, errors.New("session ended before the call")
	}
	tr := &callTrace{}
	cctx, cancel := detach(ctx)
	defer cancel()
	// An answer stream that breaks ends the call with an error (the go-sdk
	// reports "request terminated without response"), so no call waits for
	// an answer that cannot come.
	res, err := sess.cs.CallTool(context.WithValue(cctx, callTraceKey{}, tr), &mcp.CallToolParams{Name: name, Arguments: args})
	switch {
	case err == nil:
		return res, callOK, nil
	case ctx.Err() != nil:
		return nil, callCanceled, ctx.Err()
	}
	wrote, status := tr.snapshot()
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return nil, callRefused, err
	}
	if werr := rpcAnswer(err); werr != nil {
		// A JSON-RPC error is the upstream's answer to this call. Pass its
		// code and message on (the tenancy middleware cleans the message),
		// not its data.
		return nil, callAnswered, &jsonrpc.Error{Code: werr.Code, Message: werr.Message}
	}
	if u.http && (!wrote || (status >= 400 && status < 500)) {
		// Never written, or refused before any tool ran: a 4xx other than
		// 401/403 is a session the upstream does not know (404 per the
		// spec, 400 from the official server) or a request it would not
		// take.
		return nil, callNotSent, err
	}
	return nil, callMayHaveRun, err
}

// detach returns a context with the cancellation and deadline of parent but
// none of its values: the upstream call must not see the values of the
// client's request (its verified token, its negotiated protocol version,
// the server's request state), which the go-sdk client would otherwise act
// on.
func detach(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancelDeadline := context.Background(), context.CancelFunc(func() {})
	if d, ok := parent.Deadline(); ok {
		ctx, cancelDeadline = context.WithDeadline(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(parent, func() { cancel(context.Cause(parent)) })
	return ctx, func() {
		stop()
		cancel(nil)
		cancelDeadline()
	}
}

// codeRejected is the code of the go-sdk's own "rejected by transport"
// error, which wraps local transport failures (a refused connection, an HTTP
// error status): not an answer of the upstream.
const codeRejected = -32005

// rpcAnswer returns the JSON-RPC error that the upstream answered, if err
// holds one.
func rpcAnswer(err error) *jsonrpc.Error {
	switch e := err.(type) {
	case nil:
		return nil
	case *jsonrpc.Error:
		if e.Code != codeRejected {
			return e
		}
		return nil
	case interface{ Unwrap() error }:
		return rpcAnswer(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			if w := rpcAnswer(x); w != nil {
				return w
			}
		}
	}
	return nil
}

// session returns the current session, connecting when there is none or it
// has ended. Concurrent callers share one connect, which runs on its own:
// a caller whose ctx ends stops waiting, the connect goes on for the others.
func (u *upstreamConn) session(ctx context.Context) (*upstreamSession, error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, errUpstreamClosed
	}
	if s := u.cur; s != nil && !s.ended() {
		u.mu.Unlock()
		return s, nil
	}
	d := u.connecting
	if d == nil {
		if old := u.cur; old != nil {
			u.cur = nil
			u.closeLocked(old.cs)
		}
		d = &upstreamDialing{done: make(chan struct{})}
		u.connecting = d
		u.bg.Add(1)
		go u.connect(d)
	}
	u.mu.Unlock()
	select {
	case <-d.done:
		return d.sess, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// connect dials the upstream for d. The session must not carry any caller's
// context values (the client's request: its token, its protocol version)
// for the rest of its life, so the dial starts from an empty context.
func (u *upstreamConn) connect(d *upstreamDialing) {
	defer u.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), upstreamConnectTimeout)
	cs, err := u.dial(ctx)
	cancel()

	u.mu.Lock()
	defer u.mu.Unlock()
	u.connecting = nil
	switch {
	case err != nil:
		d.err = err
	case u.closed:
		d.err = errUpstreamClosed
		u.closeLocked(cs)
	default:
		s := &upstreamSession{cs: cs, done: make(chan struct{})}
		u.cur, d.sess = s, s
		u.bg.Add(1)
		go func() {
			defer u.bg.Done()
			_ = cs.Wait()
			close(s.done)
		}()
	}
	close(d.done)
}

// drop retires sess after a failed call, so that the next call connects anew.
func (u *upstreamConn) drop(sess *upstreamSession) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur == sess {
		u.cur = nil
		u.closeLocked(sess.cs)
	}
}

// closeLocked closes a retired session in the background (the streamable
// client sends a DELETE; stdio waits for the process). u.mu must be held.
func (u *upstreamConn) closeLocked(cs *mcp.ClientSession) {
	u.bg.Add(1)
	go func() {
		defer u.bg.Done()
		_ = cs.Close()
	}()
}

// Ready reports whether the upstream answers a ping, connecting first if
// needed; the proxy's /readyz calls it. A session that fails the ping is
// replaced once (after an upstream restart the old one is unknown there).
func (u *upstreamConn) Ready(ctx context.Context) error {
	var err error
	for range 2 {
		var sess *upstreamSession
		if sess, err = u.session(ctx); err != nil {
			return err
		}
		pctx, cancel := detach(ctx)
		err = sess.cs.Ping(pctx, nil)
		cancel()
		if err == nil || rpcAnswer(err) != nil {
			return nil // it answered
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		u.drop(sess)
	}
	return err
}

// Close ends the upstream session (for stdio, the process) and waits for
// the connection's goroutines, including a connect in progress. Calls in
// flight fail; later calls are refused.
func (u *upstreamConn) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	cur := u.cur
	u.cur = nil
	u.mu.Unlock()
	if cur != nil {
		// An upstream that is already gone cannot be told goodbye: that
		// is no failure of Close.
		if err := cur.cs.Close(); err != nil {
			u.log.Debug("upstream session close", "err", err.Error())
		}
	}
	u.bg.Wait()
	return nil
}

// callTraceKey keys the callTrace of a forwarded call in its context, where
// upstreamTransport finds it.
type callTraceKey struct{}

// callTrace records what became of a call's HTTP request.
type callTrace struct {
	mu     sync.Mutex
	wrote  bool // a request was written in full to a connection
	status int  // status of the first answer, 0 if none
}

func (tr *callTrace) setWrote() {
	tr.mu.Lock()
	tr.wrote = true
	tr.mu.Unlock()
}

func (tr *callTrace) setStatus(code int) {
	tr.mu.Lock()
	if tr.status == 0 {
		tr.status = code
	}
	tr.mu.Unlock()
}

func (tr *callTrace) snapshot() (wrote bool, status int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.wrote, tr.status
}

// upstreamTransport sets the upstream credential on every request (and
// removes any other Authorization) and traces the requests of forwarded calls.
type upstreamTransport struct {
	base          http.RoundTripper
	authorization string // full header value, "" for none
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tr, _ := ctx.Value(callTraceKey{}).(*callTrace)
	if tr != nil && req.Method == http.MethodPost {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					tr.setWrote()
				}
			},
		})
	} else {
		tr = nil
	}
	out := req.Clone(ctx)
	if t.authorization != "" {
		out.Header.Set("Authorization", t.authorization)
	} else {
		out.Header.Del("Authorization")
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil || tr == nil {
		return resp, err
	}
	tr.setStatus(resp.StatusCode)
	return resp, nil
}

// splitCommandLine splits an -upstream-cmd value into program and arguments
// the way a POSIX shell splits words, without any expansion: blanks separate
// words; single quotes keep everything up to the next single quote; double
// quotes keep everything up to the next unescaped double quote, where a
// backslash escapes \, ", $ and ` (and is kept before other characters);
// outside quotes a backslash keeps the next character. No shell runs: $VAR,
// globs, pipes and redirections are plain text.
func splitCommandLine(s string) ([]string, error) {
	var (
		args   []string
		word   []byte
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r':
			if inWord {
				args = append(args, string(word))
				word, inWord = word[:0], false
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote in the command")
			}
			word, inWord = append(word, s[i+1:i+1+end]...), true
			i += end + 1
		case '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New("unterminated double quote in the command")
				}
				c := s[i]
				if c == '"' {
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
					c = s[i]
				}
				word = append(word, c)
			}
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("the command ends with a backslash")
			}
			i++
			word, inWord = append(word, s[i]), true
		default:
			word, inWord = append(word, c), true
		}
	}
	if inWord {
		args = append(args, string(word))
	}
	if len(args) == 0 || args[0] == "" {
		return nil, errors.New("empty command")
	}
	return args, nil
}
