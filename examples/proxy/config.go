package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgraph/tenantgraph/graphname"
)

// config is the proxy's whole configuration, built by parseConfig from
// command-line flags and environment variables. Fields hold parsed, checked
// values; newProxy does not re-validate what parseConfig checked.
type config struct {
	// HTTP.
	ListenAddr  string // host:port; port 0 picks a free port
	PublicURL   string // base URL clients use ("https://mcp.example.com"), or "" for the listener's
	TLSCertFile string
	TLSKeyFile  string
	Stateless   bool // Streamable HTTP without sessions (default)
	LogLevel    slog.Level
	LogFlush    time.Duration // log lines are written in batches this often; 0: each at once

	// Tokens. Dev is set when no BEARER_* variable is: the development
	// issuer runs, and only then.
	Dev              bool
	BearerJWKSURI    string
	BearerIssuer     string
	BearerAudiences  []string
	BearerAlgorithms []string
	BearerDiscovery  bool
	TenantClaim      string
	KeysWait         time.Duration // how long the start waits for the issuer's keys
	TokenCache       bool          // cache verified tokens (per replica)
	// The issuer's key set: fetched again at least every JWKSRefresh;
	// while fetches fail, the last good keys serve for JWKSMaxStaleness
	// after the last good fetch; each fetch takes at most JWKSTimeout.
	JWKSRefresh, JWKSMaxStaleness, JWKSTimeout time.Duration

	// Tenancy. SingleTenant, when set, maps every verified caller to this
	// one tenant namespace (TENANT_GRAPH_PREFIX=false); graphs are still
	// prefixed with it, never shared unprefixed.
	SingleTenant string

	// FalkorDB. FalkorDBURL "" starts an embedded FalkorDB (falkor/lite),
	// except in upstream mode.
	FalkorDBURL string
	// Cluster connects to a Redis Cluster of FalkorDB nodes: FalkorDBURL
	// (credentials, TLS, first seed) and ClusterAddrs (further seeds).
	Cluster      bool
	ClusterAddrs []string
	// Replicas are replicas of the FalkorDB server in FalkorDBURL (host:port,
	// same credentials): read-only queries are read from them.
	Replicas     []string
	QueryTimeout time.Duration
	MaxRows      int
	AllowLoadCSV bool
	// DBACL runs each tenant's data commands as a per-tenant FalkorDB ACL
	// user restricted to the tenant's keys: "auto" (when the FalkorDB user
	// may manage ACL users), "on" (required) or "off".
	DBACL string

	// Limits per tenant: a token bucket shared by all replicas (in the
	// FalkorDB server) and a cap on calls in flight in this process.
	RateLimit       float64 // calls per second; 0 means none
	RateBurst       int
	Concurrency     int // 0 means no cap
	RateLimitPrefix string

	// Revocation is "redis" (revoked token ids are read from the FalkorDB
	// server, shared by every replica, under RevocationPrefix) or "off".
	Revocation       string
	RevocationPrefix string

	// Hardening.
	MaxBodyBytes      int64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	SessionTimeout    time.Duration // idle stateful sessions

	// FastPath serves stateless tools/call POSTs without the go-sdk's
	// per-request session (fastpath.go); false sends everything through
	// the SDK's handler.
	FastPath bool

	// Tenant operations. PolicyFile holds per-tenant plans (reloaded on
	// SIGHUP and, every PolicyWatch, when it changed); Usage counts calls
	// per tenant in the FalkorDB server; AdminToken enables /admin/;
	// ResultCache is the TTL of the per-tenant result cache (0: off).
	PolicyFile  string
	PolicyWatch time.Duration
	Usage       bool
	AdminToken  string
	ResultCache time.Duration

	// Metrics.
	MetricsAddr    string // "" serves /metrics on the main listener
	MetricsTenants int    // tenants with their own metric label; the rest count as "_other"

	// Upstream mode (upstream.go): put authn and tenancy in front of another
	// MCP server instead of the in-process falkor tools. At most one of
	// UpstreamURL (Streamable HTTP) and UpstreamCmd (stdio command line) is
	// set. UpstreamAuthHeader is the complete Authorization header value to
	// send upstream ("Bearer " + UPSTREAM_TOKEN), or "": the proxy's own
	// credential, never a client's token.
	UpstreamURL        string
	UpstreamCmd        string
	UpstreamAuthHeader string
}

// upstream reports whether the proxy runs in upstream mode.
func (c *config) upstream() bool { return c.UpstreamURL != "" || c.UpstreamCmd != "" }

// upstreamSet reports whether upstream mode is configured in s (before
// build has read it into the config).
func (c *config) upstreamSet(s *settings) bool {
	return strings.TrimSpace(s.val["UPSTREAM_URL"]) != "" || strings.TrimSpace(s.val["UPSTREAM_CMD"]) != ""
}

// tls reports whether the proxy serves HTTPS.
func (c *config) tls() bool { return c.TLSCertFile != "" }

// errConfig is wrapped by every configuration error.
var errConfig = errors.New("configuration")

// option is one setting: a flag and the environment variable it overrides.
type option struct {
	flag, env, def, usage string
	isBool                bool
	secret                bool // never echoed in errors
}

// options, in the order of -help.
var options = []option{
	{flag: "listen", env: "LISTEN_ADDR", def: "127.0.0.1:3001", usage: "address to listen on (host:port; port 0 picks one)"},
	{flag: "public-url", env: "PUBLIC_URL", usage: "base URL clients use, e.g. https://mcp.example.com (default: the listener's)"},
	{flag: "tls-cert", env: "TLS_CERT_FILE", usage: "TLS certificate file (PEM); with -tls-key serves HTTPS"},
	{flag: "tls-key", env: "TLS_KEY_FILE", usage: "TLS private key file (PEM)"},
	{flag: "stateless", env: "STATELESS", def: "true", isBool: true, usage: "Streamable HTTP without sessions (replicas need no sticky sessions); false keeps sessions"},
	{flag: "log-level", env: "LOG_LEVEL", def: "info", usage: "debug, info, warn or error"},
	{flag: "log-flush", env: "LOG_FLUSH", def: "10ms", usage: "write log lines in batches, each at most this long after it was logged (one write per batch instead of one per line; a crash loses at most this much); 0: each line at once"},

	{flag: "bearer-jwks-uri", env: "BEARER_JWKS_URI", usage: "JWKS URL of the token issuer (https, or http to loopback)"},
	{flag: "bearer-issuer", env: "BEARER_ISSUER", usage: `exact "iss" of accepted tokens`},
	{flag: "bearer-audience", env: "BEARER_AUDIENCE", usage: `accepted "aud" values, comma-separated (this server's resource URL)`},
	{flag: "bearer-algorithm", env: "BEARER_ALGORITHM", usage: "accepted JWS algorithms, comma-separated (default RS256,ES256,EdDSA)"},
	{flag: "bearer-discovery", env: "BEARER_DISCOVERY", isBool: true, usage: "find the JWKS URL from the issuer's discovery document instead of -bearer-jwks-uri"},
	{flag: "token-cache", env: "TOKEN_CACHE", def: "true", isBool: true, usage: "cache verified tokens in this replica for up to 1 min (a token revoked elsewhere is refused within that time); false verifies every request"},
	{flag: "bearer-keys-wait", env: "BEARER_KEYS_WAIT", def: "10s", usage: "how long the start waits for the issuer's keys (then serves, and /readyz fails until they load)"},
	{flag: "bearer-jwks-refresh", env: "BEARER_JWKS_REFRESH", def: "1h", usage: "longest time between fetches of the issuer's key set (sooner when its Cache-Control max-age says so)"},
	{flag: "bearer-jwks-max-staleness", env: "BEARER_JWKS_MAX_STALENESS", def: "6h", usage: "while key fetches fail, the last good keys serve this long after the last good fetch (then tokens are refused and /readyz fails); at least -bearer-jwks-refresh"},
	{flag: "bearer-jwks-timeout", env: "BEARER_JWKS_TIMEOUT", def: "10s", usage: "longest fetch of the issuer's key set"},
	{flag: "tenant-claim", env: "TENANT_CLAIM", def: "sub", usage: `token claim holding the tenant id (dotted path allowed)`},
	{flag: "tenant-graph-prefix", env: "TENANT_GRAPH_PREFIX", def: "true", isBool: true, usage: "prefix graphs with the caller's tenant; false only with -single-tenant"},
	{flag: "single-tenant", env: "SINGLE_TENANT", usage: "map every verified caller to this one tenant namespace (single-tenant mode)"},

	{flag: "falkordb-url", env: "FALKORDB_URL", secret: true, usage: "FalkorDB to use (redis://, rediss://, unix://, falkor://); default: start an embedded one"},
	{flag: "falkordb-cluster", env: "FALKORDB_CLUSTER", def: "false", isBool: true, usage: "FALKORDB_URL is a seed of a Redis Cluster of FalkorDB nodes"},
	{flag: "falkordb-replicas", env: "FALKORDB_REPLICAS", usage: "replicas of the FalkorDB server in FALKORDB_URL, host:port comma-separated (same credentials): read-only queries are read from them"},
	{flag: "falkordb-cluster-addrs", env: "FALKORDB_CLUSTER_ADDRS", usage: "seed addresses of a FalkorDB Redis Cluster, host:port comma-separated (implies -falkordb-cluster; credentials and TLS come from FALKORDB_URL)"},
	{flag: "query-timeout", env: "QUERY_TIMEOUT", def: "30s", usage: "longest FalkorDB call"},
	{flag: "max-rows", env: "MAX_ROWS", def: "1000", usage: "rows returned per query at most (0: no cap)"},
	{flag: "allow-load-csv", env: "ALLOW_LOAD_CSV", def: "false", isBool: true, usage: "allow LOAD CSV (makes FalkorDB fetch URLs): off for tenant-facing servers"},
	{flag: "db-acl", env: "DB_ACL", def: "auto", usage: "per-tenant FalkorDB ACL users confined to the tenant's keys: auto (when the FalkorDB user may manage ACL users), on, off"},

	{flag: "rate-limit", env: "RATE_LIMIT", def: "10/s", usage: `tool calls per tenant, shared by all replicas: "10/s", "600/min", "5" (per second), "off"`},
	{flag: "rate-burst", env: "RATE_BURST", def: "20", usage: "tool calls a tenant may make at once"},
	{flag: "concurrency", env: "CONCURRENCY_LIMIT", def: "8", usage: "tool calls in flight per tenant in this process (0: no cap)"},
	{flag: "rate-limit-prefix", env: "RATE_LIMIT_PREFIX", def: "tenantgraph:ratelimit:", usage: "key prefix of the shared rate limiter"},

	{flag: "revocation", env: "REVOCATION", def: "off", usage: "revoked token ids (jti): redis (shared by all replicas, in the FalkorDB server) or off"},
	{flag: "revocation-prefix", env: "REVOCATION_PREFIX", def: "tenantgraph:revoked:", usage: "key prefix of the shared revocation list"},

	{flag: "max-body", env: "MAX_BODY_BYTES", def: "1048576", usage: "largest request body in bytes"},
	{flag: "read-header-timeout", env: "READ_HEADER_TIMEOUT", def: "10s", usage: "time to read request headers"},
	{flag: "read-timeout", env: "READ_TIMEOUT", def: "30s", usage: "time to read a request (streams exempt)"},
	{flag: "write-timeout", env: "WRITE_TIMEOUT", usage: "time to write a response (streams exempt); default query timeout + 30s"},
	{flag: "idle-timeout", env: "IDLE_TIMEOUT", def: "2m", usage: "keep-alive connections idle this long are closed"},
	{flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT", def: "30s", usage: "time calls in flight get to finish on SIGINT/SIGTERM"},
	{flag: "session-timeout", env: "SESSION_TIMEOUT", def: "30m", usage: "idle stateful sessions are closed after this"},

	{flag: "fast-path", env: "FAST_PATH", def: "true", isBool: true, usage: "answer stateless tools/call POSTs of the falkor tools without the go-sdk's per-request session (same replies, about a third of the CPU); false: always the SDK's handler"},
	{flag: "policy", env: "POLICY_FILE", usage: "per-tenant plans (JSON): allowed graphs, scopes, rate limits, quotas, timeouts, rows; replaces RATE_LIMIT, RATE_BURST and CONCURRENCY_LIMIT; reloaded on SIGHUP and when it changes"},
	{flag: "policy-watch", env: "POLICY_WATCH", def: "5s", usage: "how often to look for changes of POLICY_FILE (0: only on SIGHUP)"},
	{flag: "usage", env: "USAGE", def: "true", isBool: true, usage: "count calls, errors, rows and query time per tenant, tool and day in the FalkorDB server (shared by replicas); false: off"},
	{flag: "result-cache", env: "RESULT_CACHE", def: "off", usage: `cache read-only results per tenant for this long, e.g. "5s" (dropped on the tenant's writes; per replica); "off"`},

	{flag: "metrics-addr", env: "METRICS_ADDR", usage: "serve /metrics on this separate address instead of the main listener"},
	{flag: "metrics-tenants", env: "METRICS_TENANTS", def: "50", usage: `tenants with their own metric label (later ones count as "_other")`},

	{flag: "upstream", env: "UPSTREAM_URL", usage: "upstream mode: Streamable HTTP URL of an MCP server to put in front of"},
	{flag: "upstream-cmd", env: "UPSTREAM_CMD", usage: "upstream mode: command line of a stdio MCP server to run and put in front of"},
}

// optValue is the flag.Value of an option: it records whether the flag
// was given.
type optValue struct {
	val    string
	set    bool
	isBool bool
}

func (v *optValue) String() string     { return v.val }
func (v *optValue) Set(s string) error { v.val, v.set = s, true; return nil }
func (v *optValue) IsBoolFlag() bool   { return v.isBool }

// settings are the raw option values and where each came from.
type settings struct {
	val map[string]string // by env name
	src map[string]string // "-flag" or "ENV" (for messages)
	has map[string]bool   // given explicitly (flag or non-empty env)
}

// parseConfig builds the configuration from command-line arguments (without
// the program name) and an environment lookup. Flags win over environment
// variables. It is a pure function: it reads no files except the TLS key
// pair it checks, and starts nothing. On -h it returns flag.ErrHelp after
// writing the usage to usage (which may be nil). Errors wrap errConfig and
// are one line that names the setting.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := make(map[string]*optValue, len(options))
	for _, o := range options {
		v := &optValue{isBool: o.isBool}
		vals[o.env] = v
		fs.Var(v, o.flag, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if usage != nil {
				writeUsage(usage)
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v (see -help)", errConfig, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (settings are flags or environment variables; see -help)", errConfig, fs.Arg(0))
	}
	s := settings{val: map[string]string{}, src: map[string]string{}, has: map[string]bool{}}
	for _, o := range options {
		v := vals[o.env]
		switch {
		case v.set:
			s.val[o.env], s.src[o.env], s.has[o.env] = v.val, "-"+o.flag, true
		case getenv(o.env) != "":
			s.val[o.env], s.src[o.env], s.has[o.env] = getenv(o.env), o.env, true
		default:
			s.val[o.env], s.src[o.env] = o.def, o.env
		}
	}
	return s.build(getenv)
}

// writeUsage prints the options.
func writeUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: proxy [flags]\n\n")
	fmt.Fprintf(w, "tenantgraph's reference MCP server. Every flag has an environment variable;\n")
	fmt.Fprintf(w, "flags win. With no BEARER_* setting it runs a DEVELOPMENT-ONLY token issuer.\n\n")
	for _, o := range options {
		def := ""
		if o.def != "" {
			def = " (default " + o.def + ")"
		}
		fmt.Fprintf(w, "  -%s, %s\n    \t%s%s\n", o.flag, o.env, o.usage, def)
	}
	fmt.Fprintf(w, "  UPSTREAM_TOKEN (environment only)\n    \tbearer token the proxy sends upstream (its own credential)\n")
}

// bad returns a configuration error about setting env.
func (s *settings) bad(env, format string, args ...any) error {
	what := s.src[env]
	val := s.val[env]
	for _, o := range options {
		if o.env == env && o.secret {
			val = "…"
		}
	}
	if s.has[env] {
		what += "=" + strconv.Quote(val)
	}
	return fmt.Errorf("%w: %s: %s", errConfig, what, fmt.Sprintf(format, args...))
}

func (s *settings) bool(env string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s.val[env])) {
	case "":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, s.bad(env, "want true or false")
}

func (s *settings) duration(env string, min time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s.val[env]))
	if err != nil || d < min {
		return 0, s.bad(env, "want a duration of at least %v such as 30s or 2m", min)
	}
	return d, nil
}

func (s *settings) int(env string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s.val[env]), 10, 64)
	if err != nil || n < min || n > max {
		return 0, s.bad(env, "want a whole number from %d to %d", min, max)
	}
	return n, nil
}

// list splits a comma-separated value, dropping empty items.
func list(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// acceptedAlgorithms are the JWS algorithms package authn accepts.
var acceptedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "Ed25519"}

// build checks the raw settings and turns them into a config.
func (s *settings) build(getenv func(string) string) (*config, error) {
	c := &config{}
	var err error
	fail := func(e error) (*config, error) { return nil, e }

	// HTTP.
	c.ListenAddr = strings.TrimSpace(s.val["LISTEN_ADDR"])
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fail(s.bad("LISTEN_ADDR", "want host:port such as 127.0.0.1:3001 or :8080"))
	}
	if v := s.val["PUBLIC_URL"]; v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			return fail(s.bad("PUBLIC_URL", "want the base URL clients use, such as https://mcp.example.com (no path)"))
		}
		c.PublicURL = strings.TrimSuffix(u.String(), "/")
	}
	c.TLSCertFile, c.TLSKeyFile = s.val["TLS_CERT_FILE"], s.val["TLS_KEY_FILE"]
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		if c.TLSCertFile == "" {
			return fail(s.bad("TLS_CERT_FILE", "TLS_KEY_FILE is set: set both or neither"))
		}
		return fail(s.bad("TLS_KEY_FILE", "TLS_CERT_FILE is set: set both or neither"))
	case c.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return fail(s.bad("TLS_CERT_FILE", "cannot load the key pair with TLS_KEY_FILE: %v", err))
		}
	}
	if c.Stateless, err = s.bool("STATELESS"); err != nil {
		return fail(err)
	}
	if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(s.val["LOG_LEVEL"]))); err != nil {
		return fail(s.bad("LOG_LEVEL", "want debug, info, warn or error"))
	}
	if c.LogFlush, err = s.duration("LOG_FLUSH", 0); err != nil {
		return fail(err)
	}

	// Tokens.
	c.BearerJWKSURI = strings.TrimSpace(s.val["BEARER_JWKS_URI"])
	c.BearerIssuer = strings.TrimSpace(s.val["BEARER_ISSUER"])
	c.BearerAudiences = list(s.val["BEARER_AUDIENCE"])
	c.BearerAlgorithms = list(s.val["BEARER_ALGORITHM"])
	if c.BearerDiscovery, err = s.bool("BEARER_DISCOVERY"); err != nil {
		return fail(err)
	}
	if c.KeysWait, err = s.duration("BEARER_KEYS_WAIT", 0); err != nil {
		return fail(err)
	}
	if c.TokenCache, err = s.bool("TOKEN_CACHE"); err != nil {
		return fail(err)
	}
	if c.JWKSRefresh, err = s.duration("BEARER_JWKS_REFRESH", time.Second); err != nil {
		return fail(err)
	}
	if c.JWKSMaxStaleness, err = s.duration("BEARER_JWKS_MAX_STALENESS", time.Second); err != nil {
		return fail(err)
	}
	if c.JWKSMaxStaleness < c.JWKSRefresh {
		return fail(s.bad("BEARER_JWKS_MAX_STALENESS", "must be at least BEARER_JWKS_REFRESH (%v), or keys go stale between refreshes", c.JWKSRefresh))
	}
	if c.JWKSTimeout, err = s.duration("BEARER_JWKS_TIMEOUT", time.Millisecond); err != nil {
		return fail(err)
	}
	c.TenantClaim = strings.TrimSpace(s.val["TENANT_CLAIM"])
	if c.TenantClaim == "" {
		return fail(s.bad("TENANT_CLAIM", "want a claim name such as sub or org_id"))
	}
	bearer := s.has["BEARER_JWKS_URI"] || s.has["BEARER_ISSUER"] || s.has["BEARER_AUDIENCE"] ||
		s.has["BEARER_ALGORITHM"] || s.has["BEARER_DISCOVERY"] || s.has["BEARER_JWKS_REFRESH"] ||
		s.has["BEARER_JWKS_MAX_STALENESS"] || s.has["BEARER_JWKS_TIMEOUT"]
	c.Dev = !bearer
	if bearer {
		switch {
		case c.BearerIssuer == "":
			return fail(s.bad("BEARER_ISSUER", `required with the other BEARER_* settings: the exact "iss" of the tokens`))
		case strings.ContainsAny(c.BearerIssuer, " \t\r\n"):
			return fail(s.bad("BEARER_ISSUER", "must not contain white space"))
		case len(c.BearerAudiences) == 0:
			return fail(s.bad("BEARER_AUDIENCE", `required: the "aud" your issuer puts in tokens for this server (MCP servers must check it)`))
		case c.BearerJWKSURI == "" && !c.BearerDiscovery:
			return fail(s.bad("BEARER_JWKS_URI", "required (or BEARER_DISCOVERY=true to find it from the issuer)"))
		case c.BearerJWKSURI != "" && c.BearerDiscovery:
			return fail(s.bad("BEARER_DISCOVERY", "BEARER_JWKS_URI is set too: use one of them"))
		}
		if c.BearerJWKSURI != "" {
			u, err := url.Parse(c.BearerJWKSURI)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fail(s.bad("BEARER_JWKS_URI", "want an https URL (http only to a loopback host)"))
			}
			if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
				return fail(s.bad("BEARER_JWKS_URI", "http is allowed only to a loopback host: use https"))
			}
		}
		for _, a := range c.BearerAlgorithms {
			if !slices.Contains(acceptedAlgorithms, a) {
				return fail(s.bad("BEARER_ALGORITHM", "%q is not accepted; use some of %s (never none or HS256)", a, strings.Join(acceptedAlgorithms, ",")))
			}
		}
	}

	// Tenancy.
	prefix, err := s.bool("TENANT_GRAPH_PREFIX")
	if err != nil {
		return fail(err)
	}
	c.SingleTenant = strings.TrimSpace(s.val["SINGLE_TENANT"])
	if c.SingleTenant != "" {
		if err := graphname.Default().ValidateTenant(c.SingleTenant); err != nil {
			return fail(s.bad("SINGLE_TENANT", "%v", err))
		}
	} else if !prefix {
		return fail(s.bad("TENANT_GRAPH_PREFIX", "false needs SINGLE_TENANT=<tenant-id>: every caller then shares that one namespace; graphs are never served unprefixed"))
	}

	// FalkorDB.
	c.FalkorDBURL = strings.TrimSpace(s.val["FALKORDB_URL"])
	if c.FalkorDBURL != "" {
		u, err := url.Parse(c.FalkorDBURL)
		if err != nil || !slices.Contains([]string{"redis", "rediss", "unix", "falkor", "falkors"}, u.Scheme) {
			return fail(s.bad("FALKORDB_URL", "want redis://[user:password@]host:port, rediss://, unix:///path or falkor://"))
		}
	}
	if c.Cluster, err = s.bool("FALKORDB_CLUSTER"); err != nil {
		return fail(err)
	}
	c.ClusterAddrs = list(s.val["FALKORDB_CLUSTER_ADDRS"])
	for _, a := range c.ClusterAddrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fail(s.bad("FALKORDB_CLUSTER_ADDRS", "want host:port seed addresses, comma-separated, such as 10.0.0.1:6379,10.0.0.2:6379"))
		}
	}
	if len(c.ClusterAddrs) > 0 {
		c.Cluster = true
	}
	if c.Cluster {
		switch {
		case c.FalkorDBURL == "" && len(c.ClusterAddrs) == 0:
			return fail(s.bad("FALKORDB_CLUSTER", "needs FALKORDB_URL or FALKORDB_CLUSTER_ADDRS: the embedded FalkorDB is a single server, not a cluster"))
		case strings.HasPrefix(strings.ToLower(c.FalkorDBURL), "unix:"):
			return fail(s.bad("FALKORDB_URL", "a cluster is reached over TCP: use redis://host:port (or rediss://), not a unix socket"))
		case c.FalkorDBURL == "":
			// The first seed; no credentials (give them in FALKORDB_URL).
			c.FalkorDBURL = "redis://" + c.ClusterAddrs[0]
			c.ClusterAddrs = c.ClusterAddrs[1:]
		}
	}
	c.Replicas = list(s.val["FALKORDB_REPLICAS"])
	for _, a := range c.Replicas {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fail(s.bad("FALKORDB_REPLICAS", "want host:port replica addresses, comma-separated, such as 10.0.0.2:6379,10.0.0.3:6379"))
		}
	}
	switch {
	case len(c.Replicas) > 0 && c.Cluster:
		return fail(s.bad("FALKORDB_REPLICAS", "not with a cluster: a cluster's replicas are found through the cluster"))
	case len(c.Replicas) > 0 && c.FalkorDBURL == "":
		return fail(s.bad("FALKORDB_REPLICAS", "needs FALKORDB_URL, the primary: the embedded FalkorDB has no replicas"))
	}
	if c.QueryTimeout, err = s.duration("QUERY_TIMEOUT", time.Millisecond); err != nil {
		return fail(err)
	}
	n, err := s.int("MAX_ROWS", 0, math.MaxInt32)
	if err != nil {
		return fail(err)
	}
	c.MaxRows = int(n)
	if c.AllowLoadCSV, err = s.bool("ALLOW_LOAD_CSV"); err != nil {
		return fail(err)
	}
	c.DBACL = strings.ToLower(strings.TrimSpace(s.val["DB_ACL"]))
	if !slices.Contains([]string{"auto", "on", "off"}, c.DBACL) {
		return fail(s.bad("DB_ACL", "want auto, on or off"))
	}

	// Limits.
	if c.RateLimit, err = parseRate(s.val["RATE_LIMIT"]); err != nil {
		return fail(s.bad("RATE_LIMIT", "%v", err))
	}
	if n, err = s.int("RATE_BURST", 1, 1_000_000); err != nil {
		return fail(err)
	}
	c.RateBurst = int(n)
	if n, err = s.int("CONCURRENCY_LIMIT", 0, 1_000_000); err != nil {
		return fail(err)
	}
	c.Concurrency = int(n)
	c.RateLimitPrefix = s.val["RATE_LIMIT_PREFIX"]
	if c.RateLimitPrefix == "" {
		return fail(s.bad("RATE_LIMIT_PREFIX", "must not be empty"))
	}

	c.Revocation = strings.ToLower(strings.TrimSpace(s.val["REVOCATION"]))
	switch c.Revocation {
	case "off":
	case "redis":
		if c.FalkorDBURL == "" && c.upstreamSet(s) {
			return fail(s.bad("REVOCATION", "redis needs FALKORDB_URL in upstream mode (the list lives in the FalkorDB server); or set REVOCATION=off"))
		}
	default:
		return fail(s.bad("REVOCATION", "want redis or off"))
	}
	c.RevocationPrefix = s.val["REVOCATION_PREFIX"]
	if c.RevocationPrefix == "" {
		return fail(s.bad("REVOCATION_PREFIX", "must not be empty"))
	}

	// Hardening.
	if c.MaxBodyBytes, err = s.int("MAX_BODY_BYTES", 1024, 1<<30); err != nil {
		return fail(err)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{
		{"READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout}, {"READ_TIMEOUT", &c.ReadTimeout},
		{"IDLE_TIMEOUT", &c.IdleTimeout}, {"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"SESSION_TIMEOUT", &c.SessionTimeout},
	} {
		if *d.to, err = s.duration(d.env, time.Millisecond); err != nil {
			return fail(err)
		}
	}
	if s.val["WRITE_TIMEOUT"] == "" {
		c.WriteTimeout = c.QueryTimeout + 30*time.Second
	} else {
		if c.WriteTimeout, err = s.duration("WRITE_TIMEOUT", time.Millisecond); err != nil {
			return fail(err)
		}
		if c.WriteTimeout <= c.QueryTimeout {
			return fail(s.bad("WRITE_TIMEOUT", "must be longer than QUERY_TIMEOUT (%v), or answers to long queries are cut off", c.QueryTimeout))
		}
	}

	if c.FastPath, err = s.bool("FAST_PATH"); err != nil {
		return fail(err)
	}

	// Tenant operations.
	c.PolicyFile = strings.TrimSpace(s.val["POLICY_FILE"])
	if c.PolicyWatch, err = s.duration("POLICY_WATCH", 0); err != nil {
		return fail(err)
	}
	if c.Usage, err = s.bool("USAGE"); err != nil {
		return fail(err)
	}
	if v := strings.TrimSpace(s.val["RESULT_CACHE"]); v != "off" && v != "" && v != "0" {
		if c.ResultCache, err = s.duration("RESULT_CACHE", time.Millisecond); err != nil {
			return fail(err)
		}
		if c.ResultCache > 5*time.Minute {
			return fail(s.bad("RESULT_CACHE", "at most 5m: results may be that old on other replicas"))
		}
	}
	if tok := getenv("ADMIN_TOKEN"); tok != "" {
		if len(tok) < 32 || strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("%w: ADMIN_TOKEN must be at least 32 characters without white space (e.g. openssl rand -hex 32)", errConfig)
		}
		c.AdminToken = tok
	}

	// Metrics.
	c.MetricsAddr = strings.TrimSpace(s.val["METRICS_ADDR"])
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fail(s.bad("METRICS_ADDR", "want host:port such as 127.0.0.1:9090"))
		}
	}
	if n, err = s.int("METRICS_TENANTS", 0, 10_000); err != nil {
		return fail(err)
	}
	c.MetricsTenants = int(n)

	// Upstream.
	c.UpstreamURL = strings.TrimSpace(s.val["UPSTREAM_URL"])
	c.UpstreamCmd = strings.TrimSpace(s.val["UPSTREAM_CMD"])
	switch {
	case c.UpstreamURL != "" && c.UpstreamCmd != "":
		return fail(s.bad("UPSTREAM_CMD", "UPSTREAM_URL is set too: use one of them"))
	case c.UpstreamURL != "":
		u, err := url.Parse(c.UpstreamURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fail(s.bad("UPSTREAM_URL", "want the http(s) URL of an MCP endpoint, without credentials (use UPSTREAM_TOKEN)"))
		}
	}
	if tok := strings.TrimSpace(getenv("UPSTREAM_TOKEN")); tok != "" {
		if !c.upstream() {
			return nil, fmt.Errorf("%w: UPSTREAM_TOKEN is set without UPSTREAM_URL or UPSTREAM_CMD", errConfig)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("%w: UPSTREAM_TOKEN must not contain white space", errConfig)
		}
		c.UpstreamAuthHeader = "Bearer " + tok
	}

	// The development issuer prints tokens anyone may use: it serves only
	// on loopback, to the person who started it.
	if c.Dev {
		host, _, _ := net.SplitHostPort(c.ListenAddr)
		if !loopbackHost(host) {
			return fail(s.bad("LISTEN_ADDR", "the development issuer (no BEARER_* settings) listens only on loopback; configure BEARER_ISSUER, BEARER_AUDIENCE and BEARER_JWKS_URI to listen elsewhere"))
		}
		if c.PublicURL != "" {
			return fail(s.bad("PUBLIC_URL", "is for production: configure BEARER_ISSUER, BEARER_AUDIENCE and BEARER_JWKS_URI too"))
		}
	}
	return c, nil
}

// parseRate reads "10", "10/s", "600/min", "36000/h" or "off" as calls per
// second.
func parseRate(v string) (float64, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "off" || v == "0" || v == "none" {
		return 0, nil
	}
	num, unit, slash := strings.Cut(v, "/")
	if slash && strings.TrimSpace(unit) == "" {
		return 0, errors.New(`a rate needs a unit after "/": s, min or h`)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, errors.New(`want a rate such as "10/s", "600/min", "5" (per second) or "off"`)
	}
	switch strings.TrimSpace(unit) {
	case "", "s", "sec", "second":
		return n, nil
	case "m", "min", "minute":
		return n / 60, nil
	case "h", "hour":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("unknown unit %q: use s, min or h", unit)
}

// loopbackHost reports whether host (a name or an IP, no port) is loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
