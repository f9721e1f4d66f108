package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
	"github.com/tenantgraph/tenantgraph/graphname"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// version is reported to MCP clients.
const version = "0.1.0"

// streamGrace is how long shutdown lets the last replies reach open event
// streams before it ends them.
const streamGrace = 200 * time.Millisecond

// proxy is the reference server: FalkorDB (embedded or remote), a token
// verifier, an MCP server with the falkor tools (or an upstream's) behind
// the tenancy middleware, and the HTTP endpoints. newProxy builds it and
// binds its listener; Serve serves; Shutdown drains; Close releases all.
type proxy struct {
	cfg *config
	log *slog.Logger

	lite     *lite.Server   // embedded FalkorDB, or nil
	db       *falkor.Client // nil in upstream mode without FALKORDB_URL
	dbACL    bool           // tools run as per-tenant FalkorDB ACL users
	resolver *graphname.Resolver
	dev      *devIssuer // nil unless cfg.Dev
	verifier *authn.Verifier
	server   *mcp.Server
	upstream io.Closer // upstream mode only
	metrics  *metrics
	calls    *inflight

	// Tenant operations (ops.go, admin.go).
	policy    *tenancy.PolicyFile  // POLICY_FILE, or nil
	usage     *tenancy.Usage       // usage counters, or nil
	cache     *tenancy.ResultCache // RESULT_CACHE, or nil
	ops       *tenantOps           // backup, restore, erase; nil without a FalkorDB
	replicaID string

	ln, metricsLn      net.Listener
	httpSrv, metricSrv *http.Server
	handler            http.Handler
	baseURL            string // "http://127.0.0.1:PORT" or PUBLIC_URL

	stopStreams context.CancelFunc
	openStreams atomic.Int64
	draining    atomic.Bool

	closers   []func() error // in the order of creation
	closeOnce sync.Once
	closeErr  error

	// toolHook, when set (tests only), runs just before the tools, after
	// the tenancy middleware.
	toolHook mcp.Middleware
}

// newProxy builds the proxy for cfg and binds its listener (so URL is known
// at once); call Serve to serve and Close to release everything. log
// receives the structured logs. On error, whatever was started is stopped.
func newProxy(ctx context.Context, cfg *config, log *slog.Logger, hook ...mcp.Middleware) (_ *proxy, err error) {
	p := &proxy{cfg: cfg, log: log, calls: newInflight(), resolver: graphname.Default()}
	if len(hook) > 0 {
		p.toolHook = hook[0]
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	// Listener first: the resource URL (and the development audience)
	// depend on the port.
	p.ln, err = net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	p.closers = append(p.closers, func() error { p.ln.Close(); return nil })
	p.baseURL = cfg.PublicURL
	if p.baseURL == "" {
		scheme := "http"
		if cfg.tls() {
			scheme = "https"
		}
		p.baseURL = scheme + "://" + p.ln.Addr().String()
	}
	if cfg.MetricsAddr != "" {
		if p.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listening on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		p.closers = append(p.closers, func() error { p.metricsLn.Close(); return nil })
	}

	if err := p.openFalkorDB(ctx); err != nil {
		return nil, err
	}
	if err := p.openOperations(ctx); err != nil {
		return nil, err
	}
	policy := tenancy.FalkorTools()
	if cfg.upstream() {
		policy = tenancy.MergeTools(tenancy.FalkorTools(), tenancy.OfficialFalkorTools())
	}
	if p.usage != nil {
		policy = tenancy.MergeTools(policy, tenancy.UsageTools())
	}
	known := make(map[string]bool, len(policy))
	for name := range policy {
		known[name] = true
	}
	p.metrics = newMetrics(known, cfg.MetricsTenants)

	if err := p.openVerifier(ctx); err != nil {
		return nil, err
	}

	// The MCP server: tools, then the middleware, outermost first: in-flight
	// tracking, result fix-up, tenancy, then the test hook (added earlier,
	// so it runs inside).
	p.server = mcp.NewServer(proxyImplementation,
		&mcp.ServerOptions{Capabilities: &mcp.ServerCapabilities{}})
	if cfg.upstream() {
		c, err := addUpstreamTools(ctx, p.server, cfg)
		if err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
		if c != nil {
			p.upstream = c
			p.closers = append(p.closers, c.Close)
		}
	} else {
		topts := falkor.ToolOptions{MaxRows: planRows}
		if p.dbACL {
			topts.Scope = p.tenantScope
		}
		falkor.AddTools(p.server, p.db, &topts)
	}
	if p.usage != nil {
		tenancy.AddUsageTool(p.server, p.usage)
	}
	if p.toolHook != nil {
		p.server.AddReceivingMiddleware(p.toolHook)
	}
	mw, err := tenancy.New(p.tenancyConfig(policy))
	if err != nil {
		return nil, err
	}
	p.server.AddReceivingMiddleware(p.calls.middleware, mw)
	p.closers = append(p.closers, func() error {
		for ss := range p.server.Sessions() {
			ss.Close()
		}
		return nil
	})

	if err := p.buildHTTP(); err != nil {
		return nil, err
	}
	return p, nil
}

// planRows is the row cap of the caller's plan (POLICY_FILE), or 0.
func planRows(ctx context.Context) int {
	if pl := tenancy.PlanFromContext(ctx); pl != nil {
		return pl.MaxRows
	}
	return 0
}

// openOperations loads POLICY_FILE and starts the usage counters, the
// result cache and the tenant operations.
func (p *proxy) openOperations(ctx context.Context) error {
	cfg := p.cfg
	p.replicaID = replicaName(p.ln.Addr().String())
	if cfg.PolicyFile != "" {
		f, err := tenancy.OpenPolicyFile(cfg.PolicyFile)
		if err != nil {
			return fmt.Errorf("POLICY_FILE: %w", err)
		}
		p.policy = f
		p.log.Info("policy loaded", "file", cfg.PolicyFile, "version", f.Version(), "plans", len(f.Policy().Plans))
		p.publishPolicyVersion(ctx)
		if cfg.PolicyWatch > 0 {
			wctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.Watch(wctx, cfg.PolicyWatch, p.reloadPolicy)
			}()
			p.closers = append(p.closers, func() error { stop(); <-done; return nil })
		}
	}
	if cfg.Usage && p.db != nil {
		p.usage = tenancy.NewUsage(p.db.Redis(), &tenancy.UsageOptions{Logger: p.log.With("component", "usage")})
		p.closers = append(p.closers, func() error {
			cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := p.usage.Close(cctx); err != nil {
				// FalkorDB is gone: the last second's counts are lost.
				p.log.Warn("usage counters not written at shutdown", "err", err.Error())
			}
			return nil
		})
	}
	if cfg.ResultCache > 0 {
		p.cache = tenancy.NewResultCache(&tenancy.CacheOptions{TTL: cfg.ResultCache})
	}
	if p.db != nil {
		p.ops = &tenantOps{db: p.db, r: p.resolver, usage: p.usage, cache: p.cache, ratePref: cfg.RateLimitPrefix}
	}
	return nil
}

// openFalkorDB connects to FALKORDB_URL or starts the embedded FalkorDB.
func (p *proxy) openFalkorDB(ctx context.Context) error {
	url := p.cfg.FalkorDBURL
	if url == "" {
		if p.cfg.upstream() {
			p.log.Warn("upstream mode without FALKORDB_URL: rate limits are kept per replica, and /readyz does not check FalkorDB")
			return nil
		}
		pw := make([]byte, 16)
		rand.Read(pw)
		srv, err := lite.Start(ctx, lite.Options{UnixSocket: true, Password: hex.EncodeToString(pw)})
		if err != nil {
			return fmt.Errorf("starting the embedded FalkorDB (or set FALKORDB_URL): %w", err)
		}
		p.lite = srv
		p.closers = append(p.closers, srv.Close)
		url = srv.URL()
		p.log.Info("embedded FalkorDB started", "network", srv.Network())
	}
	pool := 4
	if p.cfg.Concurrency > 0 {
		pool = min(p.cfg.Concurrency, 16)
	}
	db, err := falkor.Open(ctx, url, falkor.Options{
		MaxTimeout:   p.cfg.QueryTimeout,
		MaxRows:      p.cfg.MaxRows,
		DenyLoadCSV:  !p.cfg.AllowLoadCSV,
		Scopes:       falkor.ScopeOptions{PoolSize: pool},
		Cluster:      p.cfg.Cluster,
		ClusterAddrs: p.cfg.ClusterAddrs,
		// Scoped (DB_ACL) calls read from the primary, where their users are.
		Replicas:         p.cfg.Replicas,
		ReadFromReplicas: len(p.cfg.Replicas) > 0,
	})
	if err != nil {
		return fmt.Errorf("connecting to FalkorDB (FALKORDB_URL): %w", err)
	}
	p.db = db
	p.closers = append(p.closers, db.Close)
	return p.setupDBACL(ctx)
}

// aclUserPrefix starts the names of the per-tenant FalkorDB ACL users:
// "tg-" followed by the tenant's key prefix ("tg-acme_").
const aclUserPrefix = "tg-"

// setupDBACL decides whether the tools run as per-tenant ACL users
// (DB_ACL): "on" requires the FalkorDB user to be able to manage ACL users,
// "auto" uses them when it can, "off" never. Upstream mode has no
// in-process tools to confine.
func (p *proxy) setupDBACL(ctx context.Context) error {
	mode := p.cfg.DBACL
	if mode == "off" || mode == "" {
		return nil
	}
	if p.cfg.upstream() {
		if mode == "on" {
			return errors.New("DB_ACL=on: per-tenant FalkorDB users confine the in-process tools; upstream mode has none (set DB_ACL=off)")
		}
		return nil
	}
	if err := p.db.CheckScopes(ctx); err != nil {
		if mode == "on" {
			return fmt.Errorf("DB_ACL=on: the FalkorDB user cannot manage ACL users (give it +acl or set DB_ACL=off): %w", err)
		}
		p.log.Warn("DB_ACL=auto: the FalkorDB user cannot manage ACL users; tenants are kept apart by the name mapping only, not by the database", "err", err)
		return nil
	}
	p.dbACL = true
	p.log.Info("per-tenant FalkorDB ACL users on: each tenant's queries run as a database user confined to its own keys")
	return nil
}

// tenantScope is the database user of the call's tenant: "tg-" + prefix,
// confined to the keys prefix + "*". graphname guarantees that the prefix
// holds no glob character and that no other tenant's key starts with it.
func (p *proxy) tenantScope(ctx context.Context) (falkor.Scope, error) {
	id, ok := tenancy.FromContext(ctx)
	if !ok {
		return falkor.Scope{}, errors.New("no verified tenant")
	}
	prefix, err := p.resolver.Prefix(id.Tenant)
	if err != nil {
		return falkor.Scope{}, errors.New("invalid tenant")
	}
	return falkor.Scope{User: aclUserPrefix + prefix, KeyPattern: prefix + "*"}, nil
}

// openVerifier starts the development issuer (only without BEARER_*
// settings) and the token verifier, and waits a little for its keys.
func (p *proxy) openVerifier(ctx context.Context) error {
	cfg := p.cfg
	iss := authn.Issuer{
		Issuer:      cfg.BearerIssuer,
		Audiences:   cfg.BearerAudiences,
		JWKSURL:     cfg.BearerJWKSURI,
		Discovery:   cfg.BearerDiscovery,
		Algorithms:  cfg.BearerAlgorithms,
		TenantClaim: cfg.TenantClaim,
		JWKS: authn.JWKSOptions{
			MinRefresh:   min(authn.DefaultMinRefresh, cfg.JWKSRefresh),
			MaxRefresh:   cfg.JWKSRefresh,
			MaxStaleness: cfg.JWKSMaxStaleness,
			Timeout:      cfg.JWKSTimeout,
		},
	}
	if cfg.Dev {
		d, err := startDevIssuer(p.baseURL+"/mcp", cfg.TenantClaim)
		if err != nil {
			return err
		}
		p.dev = d
		p.closers = append(p.closers, d.Close)
		iss = authn.Issuer{
			Issuer:       d.Issuer(),
			Audiences:    []string{p.baseURL + "/mcp"},
			JWKSURL:      d.JWKSURL(),
			Algorithms:   []string{"RS256"},
			TenantClaim:  cfg.TenantClaim,
			RequiredType: "at+jwt",
			MaxLifetime:  devTokenTTL,
			JWKS:         iss.JWKS,
		}
		p.log.Warn("DEVELOPMENT ONLY: a development token issuer is running with a key generated at start; " +
			"anyone holding its printed tokens acts as their tenants. Set BEARER_ISSUER, BEARER_AUDIENCE and BEARER_JWKS_URI for real use.")
	}
	ac := authn.Config{
		Issuers: []authn.Issuer{iss},
		Hooks:   p.metrics.hooks(),
	}
	if cfg.TokenCache {
		ac.Cache = &authn.CacheConfig{}
	}
	if cfg.Revocation == "redis" && p.db != nil {
		rev, err := authn.NewRedisRevocation(p.db.Redis(), authn.RedisRevocationOptions{Prefix: cfg.RevocationPrefix})
		if err != nil {
			return fmt.Errorf("REVOCATION=redis: %w", err)
		}
		ac.Revocation = rev
	}
	if cfg.SingleTenant != "" {
		// Every caller maps to cfg.SingleTenant: the tenant claim only has
		// to be present, not to be a valid tenant id.
		ac.TenantValidator = anyTenant{}
	}
	v, err := authn.New(ac)
	if err != nil {
		return err
	}
	p.verifier = v
	p.closers = append(p.closers, v.Close)
	// Wait a little for the keys; then serve anyway (tokens are refused and
	// /readyz fails until they load), so that an issuer outage does not
	// keep the proxy from starting.
	wait := cfg.KeysWait
	if cfg.Dev {
		wait = 10 * time.Second // its own loopback JWKS: a matter of milliseconds
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := v.WaitReady(wctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn("the token issuer's keys are not loaded yet; tokens are refused and /readyz fails until they are", "err", err)
	}
	return nil
}

// anyTenant accepts any tenant claim (single-tenant mode).
type anyTenant struct{}

func (anyTenant) ValidateTenant(t string) error {
	if t == "" {
		return errors.New("empty tenant")
	}
	return nil
}

// tenancyConfig is the middleware's configuration.
func (p *proxy) tenancyConfig(policy map[string]tenancy.ToolPolicy) tenancy.Config {
	cfg := p.cfg
	tc := tenancy.Config{
		Resolver: p.resolver,
		Tools:    policy,
		Cache:    p.cache,
	}
	auditors := multiAuditor{tenancy.NewSlogAuditor(p.log, nil), p.metrics}
	if p.usage != nil {
		auditors = append(auditors, p.usage)
	}
	tc.Auditor = auditors
	if p.db != nil {
		tc.Store = p.db
		// Buckets in the FalkorDB server: every replica shares them.
		var s redis.Scripter = p.db.Redis()
		tc.Limiter = tenancy.NewRedisLimiter(s, &tenancy.RedisLimiterOptions{Prefix: cfg.RateLimitPrefix})
	}
	if p.policy != nil {
		// Rates, caps and quotas come from the tenants' plans.
		tc.Plans = p.policy
		return tc
	}
	if cfg.SingleTenant != "" {
		tenant := cfg.SingleTenant
		tc.Identify = func(ctx context.Context, req mcp.Request) (*tenancy.Identity, error) {
			id, err := tenancy.DefaultIdentify(ctx, req)
			if err != nil {
				return nil, err
			}
			one := *id
			one.Tenant = tenant
			return &one, nil
		}
	}
	if cfg.RateLimit > 0 || cfg.Concurrency > 0 {
		lim := tenancy.Limit{Rate: cfg.RateLimit, Burst: cfg.RateBurst, Concurrent: cfg.Concurrency}
		tc.Limits = func(*tenancy.Identity) tenancy.Limit { return lim }
	}
	return tc
}

// buildHTTP assembles the endpoints and the HTTP server.
func (p *proxy) buildHTTP() error {
	cfg := p.cfg
	getServer := func(*http.Request) *mcp.Server { return p.server }
	publicHost := ""
	if cfg.PublicURL != "" {
		u, _ := url.Parse(cfg.PublicURL)
		publicHost = u.Host
	}
	sopts := mcp.StreamableHTTPOptions{
		Stateless:                  cfg.Stateless,
		MaxRequestBodyBytes:        cfg.MaxBodyBytes,
		SessionTimeout:             cfg.SessionTimeout,
		DisableLocalhostProtection: publicHost != "", // checkHost does it
	}
	streamable := mcp.NewStreamableHTTPHandler(getServer, &sopts)
	sse := mcp.NewSSEHandler(getServer, &mcp.SSEOptions{
		MaxRequestBodyBytes:        cfg.MaxBodyBytes,
		DisableLocalhostProtection: publicHost != "",
	})

	mcpResource, sseResource := p.baseURL+"/mcp", p.baseURL+"/sse"
	mcpMeta, err := authn.MetadataURL(mcpResource)
	if err != nil {
		return err
	}
	sseMeta, err := authn.MetadataURL(sseResource)
	if err != nil {
		return err
	}
	scopes := []string{tenancy.ScopeRead, tenancy.ScopeWrite, tenancy.ScopeAdmin}
	meta := func(resource string) http.Handler {
		return auth.ProtectedResourceMetadataHandler(p.verifier.ProtectedResourceMetadata(resource, scopes...))
	}

	mux := http.NewServeMux()
	mux.Handle("/mcp", p.metrics.countMissingTokens(
		authn.RequireBearer(p.verifier, &authn.BearerOptions{ResourceMetadataURL: mcpMeta})(p.newProxyFastPath(streamable, sopts))))
	mux.Handle("/sse", p.metrics.countMissingTokens(
		authn.RequireBearer(p.verifier, &authn.BearerOptions{ResourceMetadataURL: sseMeta})(tenancy.GuardSSE(sse, nil))))
	mux.Handle("/.well-known/oauth-protected-resource", meta(p.baseURL))
	mux.Handle("/.well-known/oauth-protected-resource/mcp", meta(mcpResource))
	mux.Handle("/.well-known/oauth-protected-resource/sse", meta(sseResource))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", p.readyz)
	if p.metricsLn == nil {
		mux.Handle("GET /metrics", p.metrics.Handler())
	}

	var h http.Handler = http.MaxBytesHandler(mux, cfg.MaxBodyBytes)
	if cfg.AdminToken != "" {
		// The operator's endpoints take backup files: their own body limit.
		admin, limited := http.MaxBytesHandler(p.adminHandler(), adminMaxBody), h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/admin/") {
				admin.ServeHTTP(w, r)
				return
			}
			limited.ServeHTTP(w, r)
		})
	}
	if publicHost != "" {
		h = checkHost(publicHost, h)
	}
	streamCtx, stop := context.WithCancel(context.Background())
	p.stopStreams = stop
	h = accessLog(p.log, streams(streamCtx, &p.openStreams, h))
	p.handler = h

	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)
	p.httpSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	if cfg.tls() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
		}
		p.httpSrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if p.metricsLn != nil {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", p.metrics.Handler())
		p.metricSrv = &http.Server{Handler: mm, ReadHeaderTimeout: cfg.ReadHeaderTimeout, ErrorLog: errLog}
	}
	return nil
}

// readyz answers 200 when FalkorDB answers a PING (if the proxy uses one;
// every primary of a cluster), the upstream is ready (if it says), the
// issuer's keys are loaded and not stale, and no shutdown has begun; 503
// otherwise. While key fetches fail but the last good keys still serve, it
// stays 200 and the "keys" check says when they go stale. The body names
// the checks and their state, never addresses or error texts.
func (p *proxy) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ok := true
	fail := func(name, state string) { checks[name], ok = state, false }
	if p.draining.Load() {
		fail("shutdown", "draining")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if p.db != nil {
		if err := p.pingFalkorDB(ctx); err != nil {
			fail("falkordb", "unreachable")
		} else {
			checks["falkordb"] = "ok"
		}
	}
	if rd, isReady := p.upstream.(interface{ Ready(context.Context) error }); isReady {
		if err := rd.Ready(ctx); err != nil {
			fail("upstream", "unavailable")
		} else {
			checks["upstream"] = "ok"
		}
	}
	if err := p.verifier.Ready(); err != nil {
		fail("keys", "missing or stale")
	} else {
		checks["keys"] = p.keysState(time.Now())
	}
	status, code := "ready", http.StatusOK
	if !ok {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
}

// pingFalkorDB checks that FalkorDB answers: the server, or in cluster mode
// every primary of the client's slot map (a primary down means some tenants'
// graphs are unavailable).
func (p *proxy) pingFalkorDB(ctx context.Context) error {
	cc, isCluster := p.db.Redis().(*redis.ClusterClient)
	if !isCluster {
		return p.db.Ping(ctx)
	}
	if err := p.db.Ping(ctx); err != nil {
		return err
	}
	ping := func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }
	if cc.ForEachMaster(ctx, ping) == nil {
		return nil
	}
	// The slot map may name a primary that a replica has replaced since.
	cc.ReloadState(ctx)
	return cc.ForEachMaster(ctx, ping)
}

// keysState is the "keys" check of usable keys: "ok", or, when the last
// fetch of an issuer's key set failed, how long its last good keys still
// serve ("stale in 4m0s: last fetch failed").
func (p *proxy) keysState(now time.Time) string {
	for _, h := range p.verifier.Health() {
		if h.Remote && h.LastError != "" {
			left := max(h.LastSuccess.Add(p.cfg.JWKSMaxStaleness).Sub(now), 0)
			return "stale in " + left.Round(time.Second).String() + ": last fetch failed"
		}
	}
	return "ok"
}

// Handler is the proxy's HTTP handler (all endpoints).
func (p *proxy) Handler() http.Handler { return p.handler }

// URL is the base URL of the proxy: PUBLIC_URL, or the listener's.
func (p *proxy) URL() string { return p.baseURL }

// Addr is the address the proxy listens on.
func (p *proxy) Addr() net.Addr { return p.ln.Addr() }

// Serve serves until Shutdown or Close; it returns nil after them.
func (p *proxy) Serve() error {
	if p.metricSrv != nil {
		go p.metricSrv.Serve(p.metricsLn)
	}
	p.log.Info("listening", "url", p.baseURL+"/mcp", "stateless", p.cfg.Stateless,
		"tls", p.cfg.tls(), "development_issuer", p.cfg.Dev, "upstream", p.cfg.upstream(),
		"single_tenant", p.cfg.SingleTenant != "")
	var err error
	if p.cfg.tls() {
		err = p.httpSrv.ServeTLS(p.ln, "", "")
	} else {
		err = p.httpSrv.Serve(p.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, lets the tool calls in flight
// finish (on every transport), then ends event streams and waits for the
// remaining requests, or until ctx ends.
func (p *proxy) Shutdown(ctx context.Context) error {
	p.draining.Store(true)
	done := make(chan error, 1)
	go func() { done <- p.httpSrv.Shutdown(ctx) }() // closes the listener at once
	err := p.calls.wait(ctx)
	if err == nil && p.openStreams.Load() > 0 {
		// Replies to SSE calls travel on the streams, written just after
		// the call returns: give them a moment before ending the streams.
		t := time.NewTimer(streamGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	p.stopStreams()
	if serr := <-done; serr != nil {
		err = serr
	}
	if p.metricSrv != nil {
		p.metricSrv.Shutdown(ctx)
	}
	return err
}

// Close stops serving at once (calls in flight fail) and releases
// everything: sessions, upstream, verifier, development issuer, FalkorDB
// client and embedded server. It is idempotent.
func (p *proxy) Close() error {
	p.closeOnce.Do(func() {
		p.draining.Store(true)
		if p.stopStreams != nil {
			p.stopStreams()
		}
		if p.httpSrv != nil {
			p.httpSrv.Close()
		}
		if p.metricSrv != nil {
			p.metricSrv.Close()
		}
		var errs []error
		for i := len(p.closers) - 1; i >= 0; i-- {
			if err := p.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
