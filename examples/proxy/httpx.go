package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// statusWriter records the status of a response. It passes Flush and
// Unwrap through, so streams and http.ResponseController keep working.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok { // net/http's own: no controller to allocate
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hasBearer reports whether r carries an Authorization: Bearer header.
func hasBearer(r *http.Request) bool {
	f := strings.Fields(r.Header.Get("Authorization"))
	return len(f) == 2 && strings.EqualFold(f[0], "bearer")
}

// accessLog logs one line per request: method, path (never the query
// string, which could hold a token someone put there), status, bytes and
// duration. Probes and scrapes are logged at debug level.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			level = slog.LevelDebug
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		h := log.Handler()
		if !h.Enabled(r.Context(), level) {
			return
		}
		// Straight to the handler, without Logger.LogAttrs' search for the
		// caller (always this line): a third of the line's cost.
		rec := slog.NewRecord(time.Now(), level, "http.request", 0)
		rec.AddAttrs(
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
		_ = h.Handle(r.Context(), rec)
	})
}

// isStream reports whether r opens a long-lived server-sent event stream:
// a GET of the legacy SSE endpoint, or the standalone GET stream of a
// stateful Streamable HTTP session.
func isStream(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/sse" || r.URL.Path == "/mcp")
}

// streams exempts event streams from the server's read and write timeouts
// (which would cut them off) and ends them when stop is done (they would
// otherwise keep http.Server.Shutdown waiting forever). open counts the
// streams being served.
func streams(stop context.Context, open *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isStream(r) {
			next.ServeHTTP(w, r)
			return
		}
		open.Add(1)
		defer open.Add(-1)
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		unhook := context.AfterFunc(stop, cancel)
		defer unhook()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// checkHost is the DNS-rebinding protection for a server behind a reverse
// proxy: a request that arrives on a loopback address must name a loopback
// host or the host of PUBLIC_URL. (The SDK's own check, which it replaces
// when PUBLIC_URL is set, would refuse the public host.)
func checkHost(publicHost string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
			host, _, err := net.SplitHostPort(la.String())
			if err == nil && loopbackHost(host) {
				rh := r.Host
				if h, _, err := net.SplitHostPort(rh); err == nil {
					rh = h
				}
				if !loopbackHost(rh) && !strings.EqualFold(r.Host, publicHost) && !strings.EqualFold(rh, publicHost) {
					http.Error(w, "Forbidden: invalid Host header", http.StatusForbidden)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// inflight counts tool calls in progress, so that shutdown can wait for
// them (those on SSE sessions too, whose replies travel on streams that
// shutdown has to end).
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0
}

func newInflight() *inflight {
	c := make(chan struct{})
	close(c)
	return &inflight{idle: c}
}

func (f *inflight) enter() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
	}
	f.mu.Unlock()
}

// wait returns when no call is in flight, or ctx ends.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// middleware tracks tools/call requests.
func (f *inflight) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "tools/call" {
			return next(ctx, method, req)
		}
		f.enter()
		defer f.leave()
		return next(ctx, method, req)
	}
}
