package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// System f, the floor of any Go proxy here: the bench binary itself, run as
// a server (floorEnv set), answering each tools/call POST with one go-redis
// round trip to FalkorDB on net/http, and nothing else: no token, no MCP
// SDK, no tenancy, no log line. It decodes the JSON-RPC body with
// encoding/json, runs the query with its integer parameters, and writes the
// rows as JSON in one SSE event. What (b) spends above (f) is what
// examples/proxy adds; (f) is what net/http and go-redis cost on this
// machine whatever a proxy does.

// floorEnv holds "listen-addr falkordb-addr password graph" for the floor
// server; when it is set, the bench binary serves instead of measuring.
const floorEnv = "TENANTGRAPH_BENCH_FLOOR"

// floorRequest is what the floor server reads of a tools/call.
type floorRequest struct {
	ID     int64 `json:"id"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Query      string           `json:"query"`
			Parameters map[string]int64 `json:"parameters"`
		} `json:"arguments"`
	} `json:"params"`
}

// serveFloor runs the floor server until ctx ends; it prints its endpoint
// on stdout.
func serveFloor(ctx context.Context, spec string, stdout io.Writer) error {
	f := strings.Fields(spec)
	if len(f) != 4 {
		return errors.New(floorEnv + ": want listen-addr falkordb-addr password graph")
	}
	listen, fdbAddr, password, graph := f[0], f[1], f[2], f[3]
	if password == "-" {
		password = ""
	}
	debug.SetGCPercent(400) // as examples/proxy sets it
	rdb := redis.NewClient(&redis.Options{Addr: fdbAddr, Password: password, MaxRetries: -1, PoolSize: 64})
	defer rdb.Close()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req floorRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd := "GRAPH.RO_QUERY"
		if req.Params.Name == "falkordb_query" {
			cmd = "GRAPH.QUERY"
		}
		q := []byte("CYPHER ")
		for k, v := range req.Params.Arguments.Parameters {
			q = strconv.AppendInt(append(append(q, k...), '='), v, 10)
			q = append(q, ' ')
		}
		q = append(q, req.Params.Arguments.Query...)
		res, err := rdb.Do(r.Context(), cmd, graph, string(q), "--compact").Slice()
		if err != nil || len(res) < 2 {
			http.Error(w, fmt.Sprint("query failed: ", err), http.StatusBadGateway)
			return
		}
		rows, err := json.Marshal(res[1])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ev := fmt.Appendf(nil, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":{\"content\":[],\"structuredContent\":{\"rows\":%s}}}\n\n", req.ID, rows)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(ev)))
		w.Write(ev)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(stdout, "floor listening on http://%s/mcp\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var reFloorEndpoint = regexp.MustCompile(`floor listening on (http://\S+)`)

// setupFloor starts the floor server (system f) from the bench's own binary.
func (b *bench) setupFloor(ctx context.Context) (*target, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "cannot find the bench's own binary: " + err.Error(), nil
	}
	pass := b.fdbPass
	if pass == "" {
		pass = "-"
	}
	env := childEnv(floorEnv + "=127.0.0.1:0 " + b.fdbAddr + " " + pass + " " + b.physical)
	c, ep, err := b.startServer(ctx, "floor", self, env, reFloorEndpoint, 30*time.Second)
	if err != nil {
		return nil, "", err
	}
	nw, closeIdle, err := mcpWorkers(ep, mcpFlavor{ReadTool: "falkordb_ro_query", WriteTool: "falkordb_query", Graph: b.graph, ParamsKey: "parameters", Stateless: true}, "", 16)
	if err != nil {
		c.stop()
		return nil, "", err
	}
	return &target{
		procs:     []tracked{{"floor", c.Pid()}, b.fdbTracked()},
		newWorker: nw,
		close:     func() { closeIdle(); c.stop() },
	}, "", nil
}
