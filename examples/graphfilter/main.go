// Command graphfilter serves the FalkorDB graph list of one tenant, using
// package graphname alone: no other package of this module is imported.
//
// It sits behind a trusted gateway that has already authenticated the caller
// and names the tenant in a request header (X-Tenant-ID by default). The
// server asks FalkorDB for every graph key, then returns only the caller's
// graphs, with the tenant prefix removed:
//
//	GET /graphs   X-Tenant-ID: acme   ->   {"tenant":"acme","graphs":["users","orders"]}
//
// A request without the header, or with a tenant id graphname refuses, gets
// 400 and no list: the server fails closed. Never expose this server
// directly to clients: the header is trusted as it arrives.
//
// Usage:
//
//	FALKORDB_URL=redis://127.0.0.1:6379 go run ./examples/graphfilter -listen 127.0.0.1:3002
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantgraph/tenantgraph/graphname"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3002", "address to listen on")
	header := flag.String("tenant-header", "X-Tenant-ID", "request header that carries the tenant id, set by a trusted gateway")
	flag.Parse()

	url := os.Getenv("FALKORDB_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err == nil {
		err = run(ctx, ln, url, *header)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "graphfilter:", err)
		os.Exit(1)
	}
}

// run serves on ln until ctx is done, then shuts down gracefully.
func run(ctx context.Context, ln net.Listener, falkorURL, header string) error {
	opt, err := redis.ParseURL(falkorURL)
	if err != nil {
		return fmt.Errorf("FALKORDB_URL: %w", err)
	}
	opt.MaxRetries = -1 // never send a command twice
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	srv := &http.Server{
		Handler:           newHandler(graphLister(rdb), graphname.Default(), header),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("graphfilter listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// graphLister returns every graph key through GRAPH.LIST.
func graphLister(rdb *redis.Client) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		return rdb.Do(ctx, "GRAPH.LIST").StringSlice()
	}
}

// newHandler serves GET /graphs for the tenant named in header.
func newHandler(list func(context.Context) ([]string, error), r *graphname.Resolver, header string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /graphs", func(w http.ResponseWriter, req *http.Request) {
		tenant := req.Header.Get(header)
		if err := r.ValidateTenant(tenant); err != nil {
			// Fail closed: no tenant, no list. The message says what is
			// allowed; it never falls back to an unfiltered list.
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		keys, err := list(req.Context())
		if err != nil {
			slog.Error("listing graphs", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "graph store unavailable"})
			return
		}
		graphs := r.Filter(tenant, keys)
		if graphs == nil {
			graphs = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "graphs": graphs})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		slog.Debug("writing response", "err", err)
	}
}
