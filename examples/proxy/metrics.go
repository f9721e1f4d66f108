package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// Label values that are never tenant ids (tenant ids cannot contain '_').
const (
	labelOtherTenant = "_other" // tenants beyond the first MetricsTenants
	labelNoTenant    = "_none"  // calls refused before a tenant was known
	labelUnknownTool = "_unknown"
	labelNotTool     = "_method" // refused resources/prompts requests
)

// metrics are the proxy's Prometheus metrics, in a registry of its own (two
// proxies in one process do not collide). Every label has a bounded set of
// values: tools of the policy, error classes of package tenancy, reason codes
// of package authn, configured issuers, and at most MetricsTenants tenants.
type metrics struct {
	reg *prometheus.Registry

	calls        *prometheus.CounterVec   // tool, outcome
	errors       *prometheus.CounterVec   // tool, class
	latency      *prometheus.HistogramVec // tool
	tenantCalls  *prometheus.CounterVec   // tenant, outcome
	authFailures *prometheus.CounterVec   // reason
	authOK       *prometheus.CounterVec   // cached
	jwksFetches  *prometheus.CounterVec   // issuer, result

	tools   map[string]bool
	tenants tenantLabels
}

func newMetrics(tools map[string]bool, maxTenants int) *metrics {
	m := &metrics{
		reg:     prometheus.NewRegistry(),
		tools:   tools,
		tenants: tenantLabels{max: maxTenants, seen: map[string]bool{}},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_tool_calls_total",
			Help: "Tool calls by tool and outcome (ok, tool_error, refused, error).",
		}, []string{"tool", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_tool_errors_total",
			Help: "Tool calls that did not succeed, by tool and error class (forbidden, rate_limited, tool_error, ...).",
		}, []string{"tool", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tenantgraph_tool_call_duration_seconds",
			Help:    "Time spent in the tenancy middleware and the tool, by tool.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool"}),
		tenantCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_tenant_calls_total",
			Help: `Tool calls by tenant and outcome; the first METRICS_TENANTS tenants seen have their own label, later ones count as "_other".`,
		}, []string{"tenant", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_auth_failures_total",
			Help: "Refused bearer tokens by reason (missing_token, expired, bad_signature, wrong_audience, ...).",
		}, []string{"reason"}),
		authOK: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_auth_verified_total",
			Help: "Accepted bearer tokens, by whether the verified-token cache answered.",
		}, []string{"cached"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgraph_jwks_fetches_total",
			Help: "Key-set fetches by issuer and result (ok, network, http_status, invalid, ...).",
		}, []string{"issuer", "result"}),
	}
	m.reg.MustRegister(m.calls, m.errors, m.latency, m.tenantCalls, m.authFailures, m.authOK, m.jwksFetches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Audit implements tenancy.Auditor: one observation per call.
func (m *metrics) Audit(_ context.Context, e *tenancy.Event) {
	tool := e.Tool
	switch {
	case e.Method != "tools/call":
		tool = labelNotTool
	case !m.tools[tool]:
		tool = labelUnknownTool
	}
	outcome := string(e.Outcome)
	m.calls.WithLabelValues(tool, outcome).Inc()
	if e.Outcome != tenancy.OutcomeOK {
		m.errors.WithLabelValues(tool, e.Class).Inc()
	}
	m.latency.WithLabelValues(tool).Observe(e.Duration.Seconds())
	m.tenantCalls.WithLabelValues(m.tenants.label(e.Tenant), outcome).Inc()
}

// hooks returns the authn hooks that feed the auth and JWKS metrics.
func (m *metrics) hooks() authn.Hooks {
	return authn.Hooks{
		Verified: func(e authn.VerifyEvent) {
			if e.Reason == "ok" {
				c := "false"
				if e.Cached {
					c = "true"
				}
				m.authOK.WithLabelValues(c).Inc()
				return
			}
			m.authFailures.WithLabelValues(e.Reason).Inc()
		},
		KeysFetched: func(e authn.FetchEvent) {
			m.jwksFetches.WithLabelValues(e.Issuer, e.Result).Inc()
		},
	}
}

// countMissingTokens counts requests refused because they carry no bearer
// token at all (the verifier never sees them, so its hook cannot).
func (m *metrics) countMissingTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBearer(r) {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			m.authFailures.WithLabelValues("missing_token").Inc()
		}
	})
}

// tenantLabels gives the first max tenants seen their own label value and
// the rest "_other", so that the number of series stays bounded whatever
// the number of tenants. (The first tenants are usually the established,
// busy ones; a cache of the top N would churn series instead.)
type tenantLabels struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func (t *tenantLabels) label(tenant string) string {
	if tenant == "" {
		return labelNoTenant
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen[tenant] {
		return tenant
	}
	if len(t.seen) < t.max {
		t.seen[tenant] = true
		return tenant
	}
	return labelOtherTenant
}

// multiAuditor sends each event to several auditors.
type multiAuditor []tenancy.Auditor

func (m multiAuditor) Audit(ctx context.Context, e *tenancy.Event) {
	for _, a := range m {
		a.Audit(ctx, e)
	}
}
