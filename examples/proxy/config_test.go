package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, envFunc(nil), nil)
	require.NoError(t, err)
	require.True(t, c.Dev, "no BEARER_* setting: development issuer")
	require.Equal(t, "127.0.0.1:3001", c.ListenAddr)
	require.True(t, c.Stateless)
	require.Equal(t, "sub", c.TenantClaim)
	require.Empty(t, c.SingleTenant)
	require.Empty(t, c.FalkorDBURL, "embedded FalkorDB")
	require.Equal(t, 10.0, c.RateLimit)
	require.Equal(t, 20, c.RateBurst)
	require.Equal(t, 8, c.Concurrency)
	require.Equal(t, int64(1<<20), c.MaxBodyBytes)
	require.Equal(t, 30*time.Second, c.QueryTimeout)
	require.Equal(t, 60*time.Second, c.WriteTimeout, "query timeout + 30s")
	require.Equal(t, slog.LevelInfo, c.LogLevel)
	require.False(t, c.AllowLoadCSV)
	require.False(t, c.upstream())
	require.True(t, c.TokenCache)

	c, err = parseConfig([]string{"-token-cache=false"}, envFunc(nil), nil)
	require.NoError(t, err)
	require.False(t, c.TokenCache)
}

func TestParseConfig(t *testing.T) {
	prod := map[string]string{
		"BEARER_ISSUER":   "https://issuer.example",
		"BEARER_AUDIENCE": "https://mcp.example/mcp, https://mcp2.example/mcp",
		"BEARER_JWKS_URI": "https://issuer.example/jwks.json",
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *config)
	}{
		{"flag wins over environment", []string{"-listen", "127.0.0.1:2"}, map[string]string{"LISTEN_ADDR": "127.0.0.1:1"},
			func(t *testing.T, c *config) { require.Equal(t, "127.0.0.1:2", c.ListenAddr) }},
		{"production issuer", nil, merge(prod, map[string]string{"BEARER_ALGORITHM": "RS256, ES256", "TENANT_CLAIM": "org.id", "LISTEN_ADDR": ":8080"}),
			func(t *testing.T, c *config) {
				require.False(t, c.Dev, "a real issuer is configured: no development issuer")
				require.Equal(t, "https://issuer.example", c.BearerIssuer)
				require.Equal(t, []string{"https://mcp.example/mcp", "https://mcp2.example/mcp"}, c.BearerAudiences)
				require.Equal(t, []string{"RS256", "ES256"}, c.BearerAlgorithms)
				require.Equal(t, "org.id", c.TenantClaim)
				require.Equal(t, ":8080", c.ListenAddr, "production may listen on all interfaces")
			}},
		{"production by flags", []string{"-bearer-issuer", "https://i", "-bearer-audience", "a", "-bearer-discovery"}, nil,
			func(t *testing.T, c *config) {
				require.False(t, c.Dev)
				require.True(t, c.BearerDiscovery)
				require.Empty(t, c.BearerJWKSURI)
			}},
		{"http JWKS on loopback", nil, merge(prod, map[string]string{"BEARER_JWKS_URI": "http://127.0.0.1:9/jwks.json"}),
			func(t *testing.T, c *config) { require.Equal(t, "http://127.0.0.1:9/jwks.json", c.BearerJWKSURI) }},
		{"rate per minute", nil, map[string]string{"RATE_LIMIT": "600/min", "RATE_BURST": "5", "CONCURRENCY_LIMIT": "0"},
			func(t *testing.T, c *config) {
				require.Equal(t, 10.0, c.RateLimit)
				require.Equal(t, 5, c.RateBurst)
				require.Zero(t, c.Concurrency)
			}},
		{"rate off", nil, map[string]string{"RATE_LIMIT": "off"},
			func(t *testing.T, c *config) { require.Zero(t, c.RateLimit) }},
		{"stateful", []string{"-stateless=false"}, nil,
			func(t *testing.T, c *config) { require.False(t, c.Stateless) }},
		{"single tenant", nil, map[string]string{"TENANT_GRAPH_PREFIX": "false", "SINGLE_TENANT": "acme"},
			func(t *testing.T, c *config) { require.Equal(t, "acme", c.SingleTenant) }},
		{"single tenant alone", []string{"-single-tenant", "acme"}, nil,
			func(t *testing.T, c *config) { require.Equal(t, "acme", c.SingleTenant) }},
		{"upstream URL and token", nil, map[string]string{"UPSTREAM_URL": "http://127.0.0.1:3000/mcp", "UPSTREAM_TOKEN": "s3cret"},
			func(t *testing.T, c *config) {
				require.True(t, c.upstream())
				require.Equal(t, "http://127.0.0.1:3000/mcp", c.UpstreamURL)
				require.Equal(t, "Bearer s3cret", c.UpstreamAuthHeader)
			}},
		{"upstream command by flag", []string{"-upstream-cmd", "node server.js"}, nil,
			func(t *testing.T, c *config) {
				require.Equal(t, "node server.js", c.UpstreamCmd)
				require.Empty(t, c.UpstreamAuthHeader)
			}},
		{"write timeout explicit", nil, map[string]string{"QUERY_TIMEOUT": "5s", "WRITE_TIMEOUT": "6s", "LOG_LEVEL": "warn"},
			func(t *testing.T, c *config) {
				require.Equal(t, 6*time.Second, c.WriteTimeout)
				require.Equal(t, slog.LevelWarn, c.LogLevel)
			}},
		{"public URL in production", nil, merge(prod, map[string]string{"PUBLIC_URL": "https://mcp.example/"}),
			func(t *testing.T, c *config) { require.Equal(t, "https://mcp.example", c.PublicURL) }},
		{"cluster by URL", nil, map[string]string{"FALKORDB_URL": "redis://:pw@10.0.0.1:6379", "FALKORDB_CLUSTER": "true"},
			func(t *testing.T, c *config) {
				require.True(t, c.Cluster)
				require.Empty(t, c.ClusterAddrs)
				require.Equal(t, "redis://:pw@10.0.0.1:6379", c.FalkorDBURL)
			}},
		{"cluster seeds with URL", []string{"-falkordb-cluster-addrs", "10.0.0.2:6379, 10.0.0.3:6379"}, map[string]string{"FALKORDB_URL": "redis://:pw@10.0.0.1:6379"},
			func(t *testing.T, c *config) {
				require.True(t, c.Cluster, "a seed list implies cluster mode")
				require.Equal(t, []string{"10.0.0.2:6379", "10.0.0.3:6379"}, c.ClusterAddrs)
				require.Equal(t, "redis://:pw@10.0.0.1:6379", c.FalkorDBURL)
			}},
		{"replicas", nil, map[string]string{"FALKORDB_URL": "redis://10.0.0.1:6379", "FALKORDB_REPLICAS": "10.0.0.2:6379, 10.0.0.3:6379"},
			func(t *testing.T, c *config) {
				require.Equal(t, []string{"10.0.0.2:6379", "10.0.0.3:6379"}, c.Replicas)
				require.False(t, c.Cluster)
			}},
		{"cluster seeds alone", nil, map[string]string{"FALKORDB_CLUSTER_ADDRS": "10.0.0.1:6379,10.0.0.2:6379"},
			func(t *testing.T, c *config) {
				require.True(t, c.Cluster)
				require.Equal(t, "redis://10.0.0.1:6379", c.FalkorDBURL, "the first seed becomes the URL")
				require.Equal(t, []string{"10.0.0.2:6379"}, c.ClusterAddrs)
			}},
		{"revocation default off", nil, nil,
			func(t *testing.T, c *config) {
				require.Equal(t, "off", c.Revocation)
				require.Equal(t, "tenantgraph:revoked:", c.RevocationPrefix)
			}},
		{"revocation redis", nil, map[string]string{"REVOCATION": "Redis", "REVOCATION_PREFIX": "t:rev:"},
			func(t *testing.T, c *config) {
				require.Equal(t, "redis", c.Revocation)
				require.Equal(t, "t:rev:", c.RevocationPrefix)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, envFunc(tt.env), nil)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not a certificate"), 0o600))
	prod := map[string]string{
		"BEARER_ISSUER":   "https://issuer.example",
		"BEARER_AUDIENCE": "https://mcp.example/mcp",
		"BEARER_JWKS_URI": "https://issuer.example/jwks.json",
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the message
	}{
		{"issuer without audience", nil, map[string]string{"BEARER_ISSUER": "https://i", "BEARER_JWKS_URI": "https://i/k"}, "BEARER_AUDIENCE"},
		{"audience without issuer", nil, map[string]string{"BEARER_AUDIENCE": "x"}, "BEARER_ISSUER"},
		{"no key source", nil, map[string]string{"BEARER_ISSUER": "https://i", "BEARER_AUDIENCE": "x"}, "BEARER_JWKS_URI"},
		{"two key sources", nil, merge(prod, map[string]string{"BEARER_DISCOVERY": "true"}), "BEARER_DISCOVERY"},
		{"plain http JWKS", nil, merge(prod, map[string]string{"BEARER_JWKS_URI": "http://issuer.example/jwks.json"}), "http is allowed only to a loopback host"},
		{"HMAC algorithm", nil, merge(prod, map[string]string{"BEARER_ALGORITHM": "RS256,HS256"}), `"HS256" is not accepted`},
		{"none algorithm", nil, merge(prod, map[string]string{"BEARER_ALGORITHM": "none"}), `"none" is not accepted`},
		{"issuer with space", nil, merge(prod, map[string]string{"BEARER_ISSUER": "https://a b"}), "white space"},
		{"prefix off without single tenant", nil, map[string]string{"TENANT_GRAPH_PREFIX": "false"}, "needs SINGLE_TENANT"},
		{"invalid single tenant", nil, map[string]string{"SINGLE_TENANT": "Acme_Corp"}, "SINGLE_TENANT"},
		{"bad rate", nil, map[string]string{"RATE_LIMIT": "fast"}, "RATE_LIMIT"},
		{"bad rate unit", nil, map[string]string{"RATE_LIMIT": "5/week"}, "unknown unit"},
		{"zero burst", nil, map[string]string{"RATE_BURST": "0"}, "RATE_BURST"},
		{"bad listen", nil, map[string]string{"LISTEN_ADDR": "nonsense"}, "LISTEN_ADDR"},
		{"development issuer off loopback", nil, map[string]string{"LISTEN_ADDR": "0.0.0.0:3001"}, "only on loopback"},
		{"development issuer with public URL", nil, map[string]string{"PUBLIC_URL": "https://mcp.example"}, "PUBLIC_URL"},
		{"public URL with path", nil, merge(prod, map[string]string{"PUBLIC_URL": "https://mcp.example/mcp"}), "no path"},
		{"cert without key", nil, map[string]string{"TLS_CERT_FILE": junk}, "set both or neither"},
		{"key without cert", nil, map[string]string{"TLS_KEY_FILE": junk}, "set both or neither"},
		{"unloadable key pair", nil, map[string]string{"TLS_CERT_FILE": junk, "TLS_KEY_FILE": junk}, "cannot load the key pair"},
		{"write timeout too short", nil, map[string]string{"QUERY_TIMEOUT": "10s", "WRITE_TIMEOUT": "5s"}, "longer than QUERY_TIMEOUT"},
		{"bad duration", nil, map[string]string{"READ_TIMEOUT": "soon"}, "READ_TIMEOUT"},
		{"bad bool", nil, map[string]string{"STATELESS": "maybe"}, "want true or false"},
		{"bad log level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"body limit too small", nil, map[string]string{"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES"},
		{"two upstreams", nil, map[string]string{"UPSTREAM_URL": "http://127.0.0.1:1/mcp", "UPSTREAM_CMD": "x"}, "use one of them"},
		{"upstream URL with credentials", nil, map[string]string{"UPSTREAM_URL": "http://u:p@127.0.0.1:1/mcp"}, "UPSTREAM_TOKEN"},
		{"upstream token alone", nil, map[string]string{"UPSTREAM_TOKEN": "t"}, "without UPSTREAM_URL"},
		{"FalkorDB URL scheme", nil, map[string]string{"FALKORDB_URL": "http://:hunter2@db:6379"}, "FALKORDB_URL"},
		{"cluster on the embedded FalkorDB", nil, map[string]string{"FALKORDB_CLUSTER": "true"}, "embedded FalkorDB is a single server"},
		{"cluster over a unix socket", nil, map[string]string{"FALKORDB_URL": "unix:///tmp/f.sock", "FALKORDB_CLUSTER": "true"}, "not a unix socket"},
		{"cluster seeds with a socket URL", nil, map[string]string{"FALKORDB_URL": "unix:///tmp/f.sock", "FALKORDB_CLUSTER_ADDRS": "10.0.0.1:6379"}, "not a unix socket"},
		{"bad cluster seed", nil, map[string]string{"FALKORDB_CLUSTER_ADDRS": "10.0.0.1"}, "FALKORDB_CLUSTER_ADDRS"},
		{"bad replica", nil, map[string]string{"FALKORDB_URL": "redis://10.0.0.1:6379", "FALKORDB_REPLICAS": "10.0.0.2"}, "FALKORDB_REPLICAS"},
		{"replicas with a cluster", nil, map[string]string{"FALKORDB_CLUSTER_ADDRS": "10.0.0.1:6379", "FALKORDB_REPLICAS": "10.0.0.2:6379"}, "not with a cluster"},
		{"replicas of the embedded server", nil, map[string]string{"FALKORDB_REPLICAS": "10.0.0.2:6379"}, "needs FALKORDB_URL"},
		{"bad cluster bool", nil, map[string]string{"FALKORDB_CLUSTER": "maybe"}, "FALKORDB_CLUSTER"},
		{"bad revocation", nil, map[string]string{"REVOCATION": "memory"}, "want redis or off"},
		{"revocation redis upstream without FalkorDB", nil, map[string]string{"REVOCATION": "redis", "UPSTREAM_URL": "http://127.0.0.1:1/mcp"}, "needs FALKORDB_URL"},
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined"},
		{"positional argument", []string{"serve"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, envFunc(tt.env), nil)
			require.Error(t, err)
			require.Nil(t, c)
			require.ErrorIs(t, err, errConfig)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "\n", "one line")
			require.NotContains(t, err.Error(), "hunter2", "secrets are not echoed")
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-help"}, envFunc(nil), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, o := range options {
		require.Contains(t, out.String(), "-"+o.flag+", "+o.env)
	}
	require.Contains(t, out.String(), "UPSTREAM_TOKEN")
}

// TestRunConfigError runs the program with a bad setting: exit status 2 and
// exactly one line on stderr, nothing started.
func TestRunConfigError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(nil, envFunc(map[string]string{"BEARER_ISSUER": "https://i"}), &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Empty(t, stdout.String())
	require.Equal(t, 1, strings.Count(stderr.String(), "\n"), stderr.String())
	require.True(t, strings.HasPrefix(stderr.String(), "proxy: configuration: BEARER_AUDIENCE"), stderr.String())
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"10": 10, "10/s": 10, "2.5/sec": 2.5, "600/min": 10, "60/m": 1, "3600/h": 1, "off": 0, "0": 0, " 5 / s ": 5,
	} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-9, in)
	}
	for _, in := range []string{"", "x", "-1", "1/week", "NaN", "Inf", "1/"} {
		_, err := parseRate(in)
		require.Error(t, err, in)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "600/min", "off", "1e308/h", "-0", "0x10", "1/s/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRate(s)
		if err == nil && (r < 0 || math.IsNaN(r) || math.IsInf(r, 0)) {
			t.Fatalf("parseRate(%q) = %v", s, r)
		}
	})
}

// FuzzParseConfig feeds arbitrary values to a few settings: parseConfig
// never panics, and errors are one-line configuration errors.
func FuzzParseConfig(f *testing.F) {
	f.Add("127.0.0.1:0", "10/s", "true", "", "")
	f.Add("[::1]:80", "1/h", "0", "acme", "https://i")
	f.Add(":0", "x", "maybe", "A_B", "http://x y")
	f.Fuzz(func(t *testing.T, listen, rate, stateless, single, iss string) {
		env := map[string]string{"LISTEN_ADDR": listen, "RATE_LIMIT": rate, "STATELESS": stateless, "SINGLE_TENANT": single, "BEARER_ISSUER": iss}
		c, err := parseConfig(nil, envFunc(env), nil)
		if err != nil {
			if !errors.Is(err, errConfig) {
				t.Fatalf("error does not wrap errConfig: %v", err)
			}
			return
		}
		if c.Dev && !loopbackHost(strings.Split(c.ListenAddr, ":")[0]) {
			host := c.ListenAddr[:strings.LastIndex(c.ListenAddr, ":")]
			if !loopbackHost(host) {
				t.Fatalf("development issuer on %q", c.ListenAddr)
			}
		}
	})
}
