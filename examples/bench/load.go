package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FalkorDB/falkordb-go/v2"
)

// workload is one kind of call, the same for every system.
type workload struct {
	Name  string
	Query string
	Write bool
	Rows  int // rows every call returns (checked once per system)
}

// The workloads on the 1,000-node graph (see seedGraph): each node has ten
// outgoing R edges, so two hops give 100 paths, cut to 50 rows.
var workloads = []workload{
	{Name: "lookup", Query: "MATCH (n:N {id: $id}) RETURN n.id AS id, n.name AS name", Rows: 1},
	{Name: "hop2", Query: "MATCH (a:N {id: $id})-[:R]->(:N)-[:R]->(c:N) RETURN c.id AS id, c.name AS name LIMIT 50", Rows: 50},
	{Name: "write", Query: "MATCH (n:N {id: $id}) SET n.v = $v RETURN n.v AS v", Write: true, Rows: 1},
}

// bodyPool is how many different parameter sets (node ids) the calls cycle
// through; every system gets the same sequence.
const bodyPool = 200

// callParams are the query parameters of call k.
func callParams(wl workload, k int) map[string]any {
	p := map[string]any{"id": (k % bodyPool * 389) % graphNodes}
	if wl.Write {
		p["v"] = k % bodyPool
	}
	return p
}

// worker makes calls one at a time; a phase runs one worker per simulated
// client. Workers are not safe for concurrent use.
type worker interface {
	// call makes call k (which picks the parameters) with the given
	// Authorization header value ("" for the worker's own). With check it
	// decodes the whole answer and returns its row count.
	call(ctx context.Context, k int, auth string, check bool) (rows int, err error)
	close()
}

// runPhase makes calls calls over the workers, each worker taking the next
// call number as soon as it is free. lat, when not nil, receives each
// call's latency by call number. authFor, when not nil, gives call n its
// Authorization header. The first error stops the phase.
func runPhase(ctx context.Context, workers []worker, calls, first int, lat []time.Duration, authFor func(n int) string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= calls || ctx.Err() != nil {
					return
				}
				auth := ""
				if authFor != nil {
					auth = authFor(n)
				}
				t0 := time.Now()
				_, err := w.call(ctx, first+n, auth, false)
				d := time.Since(t0)
				if err != nil {
					cancel(fmt.Errorf("call %d: %w", first+n, err))
					return
				}
				if lat != nil {
					lat[n] = d
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// (a): falkordb-go straight to FalkorDB.

// directWorker is one falkordb-go client (its own connection pool and
// *Graph: a Graph is not safe for concurrent use).
type directWorker struct {
	db     *falkordb.FalkorDB
	g      *falkordb.Graph
	wl     workload
	params []map[string]any
}

func newDirectWorker(addr, password, graph string, wl workload) (*directWorker, error) {
	db, err := falkordb.FalkorDBNew(&falkordb.ConnectionOption{
		Addr: addr, Password: password,
		// go-redis would send a query again after a read timeout (3 s by
		// default): never repeat writes.
		MaxRetries: -1, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		PoolSize: 1,
	})
	if err != nil {
		return nil, err
	}
	w := &directWorker{db: db, g: db.SelectGraph(graph), wl: wl, params: make([]map[string]any, bodyPool)}
	for k := range w.params {
		w.params[k] = callParams(wl, k)
	}
	return w, nil
}

func (w *directWorker) call(_ context.Context, k int, _ string, check bool) (int, error) {
	p := w.params[k%bodyPool]
	var (
		res *falkordb.QueryResult
		err error
	)
	if w.wl.Write {
		res, err = w.g.Query(w.wl.Query, p, nil)
	} else {
		res, err = w.g.ROQuery(w.wl.Query, p, nil)
	}
	if err != nil {
		return 0, err
	}
	if !check {
		return 0, nil
	}
	n := 0
	for res.Next() {
		n++
	}
	return n, nil
}

func (w *directWorker) close() { w.db.Conn.Close() }

// (b)-(e): MCP over Streamable HTTP.

// mcpFlavor is how one system's clients call the query tools.
type mcpFlavor struct {
	ReadTool, WriteTool string
	Graph               string // the graph name as the client sends it
	ParamsKey           string // "parameters" (falkor tools) or "params" (official server)
	// Stateless: protocol 2026-07-28 with no initialize (the go-sdk
	// stateless proxy); otherwise initialize once per worker and reuse the
	// session (the official server and FastMCP are stateful).
	Stateless bool
}

// Protocol versions the load generator speaks.
const (
	protoStateless = "2026-07-28"
	protoStateful  = "2025-11-25"
)

// mcpTarget is an MCP endpoint with pre-encoded tools/call bodies.
type mcpTarget struct {
	url       *url.URL
	flavor    mcpFlavor
	auth      string // default Authorization header value
	transport *http.Transport
}

func newMCPTarget(endpoint string, f mcpFlavor, auth string, conc int) (*mcpTarget, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	return &mcpTarget{url: u, flavor: f, auth: auth, transport: &http.Transport{
		MaxIdleConns:        conc + 8,
		MaxIdleConnsPerHost: conc + 8,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}, nil
}

// bodies pre-encodes the JSON-RPC tools/call requests of wl, one per
// parameter set.
func (t *mcpTarget) bodies(wl workload) ([][]byte, string, error) {
	f := t.flavor
	tool := f.ReadTool
	if wl.Write {
		tool = f.WriteTool
	}
	out := make([][]byte, bodyPool)
	for k := range out {
		params := map[string]any{
			"name":      tool,
			"arguments": map[string]any{"graphName": f.Graph, "query": wl.Query, f.ParamsKey: callParams(wl, k)},
		}
		if f.Stateless {
			params["_meta"] = map[string]any{
				"io.modelcontextprotocol/protocolVersion":    protoStateless,
				"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "tenantgraph-bench", "version": "0"},
				"io.modelcontextprotocol/clientCapabilities": map[string]any{},
			}
		}
		b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": k + 1, "method": "tools/call", "params": params})
		if err != nil {
			return nil, "", err
		}
		out[k] = b
	}
	return out, tool, nil
}

// mcpWorker is one simulated MCP client: its own headers, buffer and (for
// stateful servers) session, over the target's shared keep-alive transport.
type mcpWorker struct {
	t       *mcpTarget
	bodies  [][]byte
	hdr     http.Header
	buf     bytes.Buffer
	session string
}

// newWorker makes a worker for wl; for a stateful server it initializes a
// session (initialize, then notifications/initialized).
func (t *mcpTarget) newWorker(ctx context.Context, wl workload, bodies [][]byte, tool string) (*mcpWorker, error) {
	w := &mcpWorker{t: t, bodies: bodies, hdr: http.Header{
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json, text/event-stream"},
		"Authorization": {t.auth},
	}}
	if t.flavor.Stateless {
		w.hdr["Mcp-Protocol-Version"] = []string{protoStateless}
		w.hdr["Mcp-Method"] = []string{"tools/call"}
		w.hdr["Mcp-Name"] = []string{tool}
		return w, nil
	}
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"tenantgraph-bench","version":"0"}}}`, protoStateful)
	resp, body, err := w.post(ctx, []byte(init))
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"result"`)) {
		return nil, fmt.Errorf("initialize: HTTP %d: %.300s", resp.StatusCode, body)
	}
	w.session = resp.Header.Get("Mcp-Session-Id")
	if w.session == "" {
		return nil, errors.New("initialize: no Mcp-Session-Id in the answer")
	}
	w.hdr["Mcp-Session-Id"] = []string{w.session}
	w.hdr["Mcp-Protocol-Version"] = []string{protoStateful}
	resp, body, err = w.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d: %.300s", resp.StatusCode, body)
	}
	return w, nil
}

// post sends one body and reads the whole answer into the worker's buffer
// (valid until the next post).
func (w *mcpWorker) post(ctx context.Context, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.t.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = w.hdr
	resp, err := w.t.transport.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	return resp, w.buf.Bytes(), nil
}

func (w *mcpWorker) call(ctx context.Context, k int, auth string, check bool) (int, error) {
	if auth != "" {
		w.hdr["Authorization"][0] = auth
	}
	resp, body, err := w.post(ctx, w.bodies[k%bodyPool])
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, body)
	}
	// The tool's own text is a JSON string inside the answer, so its quotes
	// are escaped: these markers can only be the answer's own.
	if bytes.Contains(body, []byte(`"isError":true`)) || !bytes.Contains(body, []byte(`"result":`)) {
		return 0, fmt.Errorf("not a successful tool result: %.400s", body)
	}
	if !check {
		return 0, nil
	}
	return countRows(body)
}

// countRows decodes a tools/call answer (JSON or an event stream) and
// counts the rows of the query result in it: StructuredContent.rows of the
// falkor tools, or the "data" array in the text of the official server's.
func countRows(body []byte) (int, error) {
	msg := body
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		msg = nil
		for line := range strings.Lines(string(body)) {
			if data, ok := strings.CutPrefix(line, "data:"); ok && strings.Contains(data, `"result"`) {
				msg = []byte(data)
			}
		}
		if msg == nil {
			return 0, fmt.Errorf("no result in the event stream: %.300s", body)
		}
	}
	var m struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent *struct {
				Rows []json.RawMessage `json:"rows"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return 0, fmt.Errorf("decoding the answer: %w", err)
	}
	if sc := m.Result.StructuredContent; sc != nil && sc.Rows != nil {
		return len(sc.Rows), nil
	}
	if len(m.Result.Content) == 0 {
		return 0, fmt.Errorf("no content: %.300s", msg)
	}
	var official struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(m.Result.Content[0].Text), &official); err != nil {
		return 0, fmt.Errorf("decoding the result text: %w: %.300s", err, m.Result.Content[0].Text)
	}
	return len(official.Data), nil
}

// close ends a stateful session (DELETE), so the server can free it.
func (w *mcpWorker) close() {
	if w.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.t.url.String(), nil)
	if err != nil {
		return
	}
	req.Header = http.Header{"Mcp-Session-Id": {w.session}, "Authorization": {w.t.auth},
		"Mcp-Protocol-Version": {protoStateful}}
	if resp, err := w.t.transport.RoundTrip(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
