package tenancy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tenantgraph/tenantgraph/graphname"
)

// CodeUnauthenticated is the JSON-RPC error code of requests refused because
// they carry no verified identity, or one without a valid tenant.
const CodeUnauthenticated = -32001

// MCP methods that the middleware refuses unless [Config].AllowMethods lists
// them: resources, prompts and completions could otherwise reach graphs or
// server data around the tool policy.
var sideDoors = map[string]bool{
	"resources/list":           true,
	"resources/read":           true,
	"resources/templates/list": true,
	"resources/subscribe":      true,
	"resources/unsubscribe":    true,
	"prompts/list":             true,
	"prompts/get":              true,
	"completion/complete":      true,
}

// Config configures the middleware of [New]. The zero Config serves the
// falkor tools ([FalkorTools]) with the default resolver, identities from
// verified bearer tokens, no rate limits and no audit.
type Config struct {
	// Resolver maps logical graph names to physical keys; nil means
	// graphname.Default().
	Resolver *graphname.Resolver

	// Identify returns the verified identity of a request; nil means
	// [DefaultIdentify] (the request's bearer token info). Its errors, a nil
	// identity or one without a tenant refuse the request with a JSON-RPC
	// error (code [CodeUnauthenticated]); the middleware then checks the
	// tenant against Resolver. Tests and transports without HTTP (stdio,
	// in-memory) may supply their own; it must never trust client input.
	Identify func(ctx context.Context, req mcp.Request) (*Identity, error)

	// GraphArguments name the tool arguments that hold graph names, for the
	// tools whose policy does not name its own; nil means
	// []string{DefaultGraphArgument}.
	GraphArguments []string

	// Tools is the tool policy: which tools may be called, with which
	// scopes, and how. Nil means [FalkorTools]; combine presets with
	// [MergeTools]. Tools that are not in the policy are hidden from
	// tools/list and refused like unknown tools, unless UnlistedTools is set.
	Tools map[string]ToolPolicy

	// UnlistedTools, when set, is the policy of every tool not in Tools.
	UnlistedTools *ToolPolicy

	// NoReadOnlyRouting refuses a call to a tool whose scopes the caller
	// lacks, instead of running the tool's ReadOnlyVariant.
	NoReadOnlyRouting bool

	// CheckGraph is a rule for graph names on top of the resolver's (which
	// always applies); nil means [StrictGraphNames]. Use
	// func(string) error { return nil } for the resolver's rule alone.
	CheckGraph func(graph string) error

	// Limits returns the budget of a caller (per tenant, or per plan read
	// from Identity.Token); nil means no limits. Rate limits apply to
	// tools/call through Limiter, keyed on the tenant; the concurrency cap is
	// kept in this process.
	Limits func(id *Identity) Limit

	// Limiter enforces the rate limits; nil means a new [LocalLimiter].
	Limiter Limiter

	// Plans assigns every caller a [Plan]: allowed graph names, the scopes
	// it may exercise (intersected with its token's), rate limit, quotas,
	// query timeout and row cap. A caller without a plan is refused. Nil
	// means no plans. When Limits is nil, the rate limits come from the
	// plans.
	Plans PlanSource

	// Store answers the quota questions of plans (graph count, memory);
	// *falkor.Client is one. A call that a plan's quotas apply to is
	// refused when Store is nil or fails (fail closed).
	Store GraphStore

	// Cache, when set, holds the results of Cacheable tools per tenant
	// (see [ResultCache]). Off by default.
	Cache *ResultCache

	// Auditor receives one event per tools/call; nil means no audit.
	Auditor Auditor

	// AuditQueryText records the query text in audit events, besides its
	// SHA-256. Off by default: queries may hold personal data.
	AuditQueryText bool

	// AllowMethods lists resources, prompts and completion methods
	// ("resources/list", "resources/read", "resources/templates/list",
	// "resources/subscribe", "resources/unsubscribe", "prompts/list",
	// "prompts/get", "completion/complete") that pass to the server for
	// identified tenants, their results cleaned of the tenant's keys. Allow
	// only methods that do not reach graphs: their arguments are not mapped.
	// All of them are refused by default.
	AllowMethods []string

	// Reveals, when set, is consulted besides the built-in detector: an
	// error text for which it returns true is replaced by a generic message
	// with the request id.
	Reveals func(text string) bool

	// RequestID returns a new request id; nil means 16 random hex digits.
	RequestID func() string

	// Now returns the current time, for audit; nil means time.Now.
	Now func() time.Time
}

// tool is a compiled ToolPolicy.
type tool struct {
	ToolPolicy
	graphArgs []string
	queryArg  string
}

type middleware struct {
	r          *graphname.Resolver
	identify   func(context.Context, mcp.Request) (*Identity, error)
	tools      map[string]*tool
	policies   map[string]ToolPolicy
	unlisted   *tool
	noRouting  bool
	check      func(string) error
	limits     func(*Identity) Limit
	limiter    Limiter
	inflight   inflight
	plans      PlanSource
	fold       bool // the resolver folds tenant ids to lower case
	quotas     *quotas
	cache      *ResultCache
	auditor    Auditor
	auditQuery bool
	allow      map[string]bool
	reveals    func(string) bool
	requestID  func() string
	now        func() time.Time
}

// New returns the receiving middleware that makes a go-sdk MCP server
// multi-tenant. Add it with server.AddReceivingMiddleware; as the last one
// added, it runs first. It refuses a Config with an error wrapping
// [ErrInvalidConfig].
//
// For every request the middleware finds the caller's verified identity
// ([Config].Identify) and puts it into the context passed on ([FromContext]).
// Then, by method:
//
//   - tools/list: only the tools whose policy the caller's scopes satisfy,
//     as copies of the server's tool objects.
//   - tools/call: refused with a JSON-RPC error without a valid identity or
//     for a tool outside the policy (like an unknown tool) or with arguments
//     that are not a JSON object; refused with a tool error (IsError) when
//     scopes are missing (unless read-only routing applies), a graph argument
//     is invalid (the message says which names are allowed), or a limit is
//     exceeded (the message says when to retry). Otherwise graph arguments
//     are replaced by physical keys, the tool runs, list results are
//     filtered to the caller's graphs, and every text, structured content and
//     error is cleaned of the caller's physical prefix. Error texts that
//     would reveal internals (addresses, stack traces, other tenants' keys)
//     are replaced by a generic message with the request id, which the
//     audit event also holds.
//   - resources/*, prompts/*, completion/complete: refused with a JSON-RPC
//     error unless listed in [Config].AllowMethods.
//   - anything else (initialize, ping, notifications, server/discover,
//     custom methods): passed on, with the identity in the context when
//     there is one; the capabilities that initialize and server/discover
//     announce lose resources, prompts and completions unless allowed.
func New(cfg Config) (mcp.Middleware, error) {
	m, err := newMiddleware(cfg)
	if err != nil {
		return nil, err
	}
	return m.wrap, nil
}

func newMiddleware(cfg Config) (*middleware, error) {
	m := &middleware{
		r:          cfg.Resolver,
		identify:   cfg.Identify,
		noRouting:  cfg.NoReadOnlyRouting,
		check:      cfg.CheckGraph,
		limits:     cfg.Limits,
		limiter:    cfg.Limiter,
		plans:      cfg.Plans,
		cache:      cfg.Cache,
		auditor:    cfg.Auditor,
		auditQuery: cfg.AuditQueryText,
		reveals:    cfg.Reveals,
		requestID:  cfg.RequestID,
		now:        cfg.Now,
		allow:      make(map[string]bool),
		tools:      make(map[string]*tool),
	}
	if m.r == nil {
		m.r = graphname.Default()
	}
	if m.identify == nil {
		m.identify = DefaultIdentify
	}
	if m.check == nil {
		m.check = StrictGraphNames
	}
	if (m.limits != nil || m.plans != nil) && m.limiter == nil {
		m.limiter = NewLocalLimiter(nil)
	}
	if m.requestID == nil {
		m.requestID = randomID
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.fold = m.r.Options().TenantCase == graphname.CaseFold
	m.quotas = &quotas{store: cfg.Store, r: m.r, now: m.now, tenants: map[string]*holdings{}}
	graphArgs := cfg.GraphArguments
	if graphArgs == nil {
		graphArgs = []string{DefaultGraphArgument}
	}
	if err := checkArgNames("GraphArguments", graphArgs); err != nil {
		return nil, err
	}
	policies := cfg.Tools
	if policies == nil {
		policies = FalkorTools()
	}
	m.policies = make(map[string]ToolPolicy, len(policies))
	compile := func(name string, p ToolPolicy) (*tool, error) {
		t := &tool{ToolPolicy: p, graphArgs: p.GraphArguments, queryArg: p.QueryArgument}
		if t.graphArgs == nil {
			t.graphArgs = graphArgs
		}
		if err := checkArgNames(fmt.Sprintf("Tools[%q].GraphArguments", name), t.graphArgs); err != nil {
			return nil, err
		}
		if t.queryArg == "" {
			t.queryArg = DefaultQueryArgument
		}
		t.Scopes = slices.Clone(p.Scopes)
		return t, nil
	}
	for name, p := range policies {
		if name == "" {
			return nil, fmt.Errorf("%w: Tools has an empty tool name", ErrInvalidConfig)
		}
		t, err := compile(name, p)
		if err != nil {
			return nil, err
		}
		m.tools[name] = t
		m.policies[name] = p
	}
	for name, t := range m.tools {
		if v := t.ReadOnlyVariant; v != "" {
			if _, ok := m.tools[v]; !ok {
				return nil, fmt.Errorf("%w: Tools[%q].ReadOnlyVariant %q is not in Tools", ErrInvalidConfig, name, v)
			}
		}
	}
	if cfg.UnlistedTools != nil {
		if cfg.UnlistedTools.ReadOnlyVariant != "" || cfg.UnlistedTools.ListGraphs != nil {
			return nil, fmt.Errorf("%w: UnlistedTools cannot have a ReadOnlyVariant or a ListGraphs filter", ErrInvalidConfig)
		}
		t, err := compile("*", *cfg.UnlistedTools)
		if err != nil {
			return nil, err
		}
		m.unlisted = t
	}
	for _, method := range cfg.AllowMethods {
		if !sideDoors[method] {
			return nil, fmt.Errorf("%w: AllowMethods: %q is not a resources, prompts or completion method", ErrInvalidConfig, method)
		}
		m.allow[method] = true
	}
	return m, nil
}

func checkArgNames(field string, names []string) error {
	if len(names) > 64 {
		return fmt.Errorf("%w: %s has more than 64 names", ErrInvalidConfig, field)
	}
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("%w: %s has an empty name", ErrInvalidConfig, field)
		}
		for _, o := range names[:i] {
			if strings.EqualFold(n, o) {
				return fmt.Errorf("%w: %s names %q twice (names are compared without case)", ErrInvalidConfig, field, n)
			}
		}
	}
	return nil
}

// StrictGraphNames is the default [Config].CheckGraph: on top of the
// resolver's rule, graph names must start and end with an ASCII letter or
// digit, so that no name begins or ends with a key separator ('_', '.') or
// '-'. Its errors wrap [ErrInvalidGraph].
func StrictGraphNames(graph string) error {
	if graph == "" {
		return fmt.Errorf("%w: empty", ErrInvalidGraph)
	}
	for _, c := range [2]byte{graph[0], graph[len(graph)-1]} {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("%w %s: must start and end with an ASCII letter or digit; graph names are 1-%d ASCII letters, digits, '_', '-' or '.', starting and ending with a letter or digit",
				ErrInvalidGraph, quoteName(graph), graphname.MaxGraphLen)
		}
	}
	return nil
}

func randomID() string {
	var b [8]byte
	u := rand.Uint64()
	for i := range b {
		b[i] = byte(u >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// policy returns the tool policy of name.
func (m *middleware) policy(name string) (*tool, bool) {
	if t, ok := m.tools[name]; ok {
		return t, true
	}
	if m.unlisted != nil {
		return m.unlisted, true
	}
	return nil, false
}

// refusal is an error with the message shown to the client.
type refusal struct {
	err error
	msg string
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// call is the state of one request.
type call struct {
	m     *middleware
	start time.Time
	rid   string
	ev    Event

	complete bool // the client expects resultType in tool results
}

func (c *call) requestID() string {
	if c.rid == "" {
		c.rid = c.m.requestID()
	}
	return c.rid
}

func (c *call) generic() string {
	return "internal error; request id " + c.requestID()
}

func (c *call) audit(ctx context.Context, outcome Outcome, err error) {
	if c.m.auditor == nil {
		return
	}
	c.ev.Time = c.start
	c.ev.RequestID = c.requestID()
	c.ev.Outcome = outcome
	c.ev.Err = err
	c.ev.Class = errorClass(err)
	c.ev.Duration = c.m.now().Sub(c.start)
	c.m.auditor.Audit(ctx, &c.ev)
}

func (m *middleware) wrap(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/call":
			return m.callTool(ctx, next, method, req)
		case "tools/list":
			return m.listTools(ctx, next, method, req)
		}
		if sideDoors[method] {
			return m.sideDoor(ctx, next, method, req)
		}
		if id, _, err := m.identity(ctx, req); err == nil {
			ctx = NewContext(ctx, id)
		}
		res, err := next(ctx, method, req)
		if err == nil && (method == "initialize" || method == "server/discover") {
			res = m.trimCapabilities(res)
		}
		return res, err
	}
}

// trimCapabilities removes the capabilities of refused methods from an
// initialize or server/discover result, so that clients do not try them.
func (m *middleware) trimCapabilities(res mcp.Result) mcp.Result {
	trim := func(c *mcp.ServerCapabilities) *mcp.ServerCapabilities {
		if c == nil {
			return nil
		}
		cp := *c
		if !m.allow["resources/list"] && !m.allow["resources/read"] && !m.allow["resources/templates/list"] {
			cp.Resources = nil
		}
		if !m.allow["prompts/list"] && !m.allow["prompts/get"] {
			cp.Prompts = nil
		}
		if !m.allow["completion/complete"] {
			cp.Completions = nil
		}
		return &cp
	}
	switch r := res.(type) {
	case *mcp.InitializeResult:
		if r != nil {
			cp := *r
			cp.Capabilities = trim(r.Capabilities)
			return &cp
		}
	case *mcp.DiscoverResult:
		if r != nil {
			cp := *r
			cp.Capabilities = trim(r.Capabilities)
			return &cp
		}
	}
	return res
}

// identity returns the caller's identity and physical prefix.
func (m *middleware) identity(ctx context.Context, req mcp.Request) (*Identity, string, error) {
	id, err := m.identify(ctx, req)
	if err != nil {
		if !errors.Is(err, ErrNoIdentity) && !errors.Is(err, ErrNoTenant) && !errors.Is(err, ErrInvalidTenant) {
			err = fmt.Errorf("%w: %w", ErrNoIdentity, err)
		}
		return nil, "", err
	}
	if id == nil {
		return nil, "", fmt.Errorf("%w: the identity function returned none", ErrNoIdentity)
	}
	if id.Tenant == "" {
		return nil, "", fmt.Errorf("%w: the identity names no tenant", ErrNoTenant)
	}
	prefix, err := m.r.Prefix(id.Tenant)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidTenant, err)
	}
	return id, prefix, nil
}

// unauthenticated is the JSON-RPC error of a request without valid identity.
func (c *call) unauthenticated(err error) error {
	msg := "unauthenticated: the request carries no verified bearer token"
	switch {
	case errors.Is(err, ErrNoTenant):
		msg = "unauthenticated: the token names no tenant"
	case errors.Is(err, ErrInvalidTenant):
		msg = "unauthenticated: the token's tenant is not valid"
	}
	return &jsonrpc.Error{Code: CodeUnauthenticated, Message: msg + "; request id " + c.requestID()}
}

func (m *middleware) callTool(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	c := &call{m: m, start: m.now(), ev: Event{Method: method, Rows: -1}, complete: wantsResultType(req)}
	creq, ok := req.(*mcp.CallToolRequest)
	if !ok || creq.Params == nil {
		err := fmt.Errorf("%w: the request has no tools/call parameters", ErrInvalidArguments)
		c.audit(ctx, OutcomeRefused, err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing tools/call parameters"}
	}
	name := creq.Params.Name
	c.ev.Tool = name
	id, prefix, err := m.identity(ctx, req)
	if err != nil {
		c.audit(ctx, OutcomeRefused, err)
		return nil, c.unauthenticated(err)
	}
	c.ev.Tenant, c.ev.Subject = id.Tenant, id.Subject
	id, pl, err := m.plan(id)
	if err != nil {
		c.audit(ctx, OutcomeRefused, err)
		return c.toolError("permission denied: no plan of this server admits the tenant; ask the operator (request id " + c.requestID() + ")"), nil
	}
	ctx = NewContext(ctx, id)
	if pl != nil {
		ctx = WithPlan(ctx, pl)
	}

	t, ok := m.policy(name)
	if !ok {
		err := fmt.Errorf("%w: %q", ErrUnknownTool, name)
		c.audit(ctx, OutcomeRefused, err)
		// The same answer as the SDK gives for a tool it does not have.
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", name)}
	}
	run := name
	if !id.hasScopes(t.Scopes) {
		routed := false
		if v := t.ReadOnlyVariant; v != "" && !m.noRouting {
			if vt := m.tools[v]; id.hasScopes(vt.Scopes) {
				run, t, routed = v, vt, true
				c.ev.RoutedTo = v
			}
		}
		if !routed {
			err := fmt.Errorf("%w: tool %q requires the scopes %v", ErrForbidden, name, t.Scopes)
			c.audit(ctx, OutcomeRefused, err)
			return c.toolError(fmt.Sprintf("permission denied: tool %q requires the scope(s) %s, which the token does not grant",
				name, strings.Join(t.Scopes, ", "))), nil
		}
	}

	caching := m.cache != nil && t.Cacheable
	mapper := graphMapper{r: m.r, tenant: id.Tenant, check: m.check, plan: pl,
		collect: t.Writes || t.Deletes || caching}
	rw, err := rewriteArguments(creq.Params.Arguments, t.graphArgs, t.queryArg, m.auditor != nil, &mapper)
	if err != nil {
		c.audit(ctx, OutcomeRefused, err)
		rf := &refusal{msg: "invalid arguments"}
		errors.As(err, &rf)
		if errors.Is(err, ErrInvalidGraph) || errors.Is(err, ErrGraphNotAllowed) {
			return c.toolError(rf.msg), nil
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid arguments: " + rf.msg}
	}
	c.ev.Graph = rw.graph
	if rw.hasQuery {
		c.ev.QueryHash = hex.EncodeToString(rw.queryHash[:])
		if m.auditQuery {
			c.ev.Query = queryText(creq.Params.Arguments, t.queryArg)
		}
	}

	if lim, ok := m.limitOf(id, pl); ok {
		if lim.Rate > 0 {
			ok, retry, err := m.limiter.Allow(ctx, prefix, lim)
			if err != nil {
				if !errors.Is(err, ErrLimiter) && !errors.Is(err, ErrLimiterFull) {
					err = fmt.Errorf("%w: %w", ErrLimiter, err)
				}
				c.audit(ctx, OutcomeRefused, err)
				return c.toolError("the rate limiter is unavailable, so the call was refused; retry later (request id " + c.requestID() + ")"), nil
			}
			if !ok {
				err := fmt.Errorf("%w: retry after %v", ErrRateLimited, retry)
				c.audit(ctx, OutcomeRefused, err)
				return c.retryResult("rate limit exceeded for this tenant", retry), nil
			}
		}
		if lim.Concurrent > 0 {
			if !m.inflight.acquire(prefix, lim.Concurrent) {
				err := fmt.Errorf("%w: %d in flight", ErrConcurrency, lim.Concurrent)
				c.audit(ctx, OutcomeRefused, err)
				return c.retryResult(fmt.Sprintf("too many concurrent calls for this tenant (at most %d)", lim.Concurrent), time.Second), nil
			}
			defer m.inflight.release(prefix)
		}
	}

	if pl != nil && t.Writes && pl.hasQuotas() && len(mapper.keys) > 0 {
		done, err := m.quotas.before(ctx, pl, id.Tenant, prefix, mapper.keys)
		if err != nil {
			c.audit(ctx, OutcomeRefused, err)
			if qe := (*QuotaError)(nil); errors.As(err, &qe) {
				return c.toolError(qe.Error()), nil
			}
			return c.toolError("the tenant's quotas could not be checked, so the call was refused; retry later (request id " + c.requestID() + ")"), nil
		}
		defer done()
	}

	var ckey [32]byte
	var cseq uint64
	if caching {
		tool := run
		if c.complete {
			tool += "\x00complete"
		}
		ckey = cacheKey(prefix, tool, rw.args)
		res, rows, seq, hit := m.cache.get(ckey)
		if hit {
			c.ev.Rows, c.ev.Cached = rows, true
			c.audit(ctx, OutcomeOK, nil)
			return res, nil
		}
		cseq = seq
	}
	if pl != nil && pl.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pl.QueryTimeout)
		defer cancel()
	}

	out := req
	if run != name || rw.changed {
		p := *creq.Params
		p.Name, p.Arguments = run, rw.args
		r2 := *creq
		r2.Params = &p
		out = &r2
	}
	res, err := next(ctx, method, out)
	m.wrote(ctx, t, pl, prefix, mapper.keys, err)

	cl := cleaner{r: m.r, tenant: id.Tenant, prefix: prefix, request: creq.Params.Arguments, tool: name, known: m.policies, extra: m.reveals}
	if err != nil {
		cerr, generic := m.cleanError(&cl, err, c)
		if generic {
			err = fmt.Errorf("%w: %w", ErrInternal, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrServer, err)
		}
		c.audit(ctx, OutcomeError, err)
		return nil, cerr
	}
	tr, ok := res.(*mcp.CallToolResult)
	if !ok || tr == nil {
		if res != nil && !reflect.ValueOf(res).IsNil() {
			// Not a tool result: nothing we know how to clean (fail closed).
			c.audit(ctx, OutcomeError, fmt.Errorf("%w: unexpected result type %T", ErrInternal, res))
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: c.generic()}
		}
		c.audit(ctx, OutcomeOK, nil)
		return res, nil
	}
	if t.ListGraphs != nil && !tr.IsError {
		keep := func(key string) (string, bool) {
			g, ok := m.r.Strip(id.Tenant, key)
			if ok && (m.check(g) != nil || pl != nil && !pl.AllowsGraph(g)) {
				return "", false // a name the caller could not use: hidden
			}
			return g, ok
		}
		filtered, ferr := t.ListGraphs(keep, tr)
		if ferr != nil || filtered == nil {
			if ferr == nil {
				ferr = errors.New("list filter returned no result")
			}
			c.audit(ctx, OutcomeToolError, fmt.Errorf("%w: filtering the graph list: %w", ErrInternal, ferr))
			return c.toolError(c.generic()), nil
		}
		tr = inherit(tr, filtered)
	}
	cleaned, generic, cerr := cl.result(tr, c.generic)
	if cerr != nil {
		c.audit(ctx, OutcomeToolError, fmt.Errorf("%w: cleaning the result: %w", ErrInternal, cerr))
		return c.toolError(c.generic()), nil
	}
	if m.auditor != nil || caching {
		c.ev.Rows = rowsOf(cleaned)
	}
	if caching && !generic {
		m.cache.put(ckey, prefix, mapper.keys, cseq, cleaned, c.ev.Rows)
	}
	switch {
	case generic:
		c.audit(ctx, OutcomeToolError, fmt.Errorf("%w: %s", ErrInternal, resultText(tr)))
	case cleaned.IsError:
		c.audit(ctx, OutcomeToolError, fmt.Errorf("%w: %s", ErrToolError, resultText(cleaned)))
	default:
		c.audit(ctx, OutcomeOK, nil)
	}
	return cleaned, nil
}

// plan returns the caller's plan and its identity with the scopes the plan
// lets it exercise. Without [Config].Plans it returns id and no plan.
func (m *middleware) plan(id *Identity) (*Identity, *Plan, error) {
	if m.plans == nil {
		return id, nil, nil
	}
	look := id
	if m.fold && strings.ToLower(id.Tenant) != id.Tenant {
		cp := *id
		cp.Tenant = strings.ToLower(id.Tenant)
		look = &cp
	}
	pl, err := m.plans.Plan(look)
	if err == nil && pl == nil {
		err = errors.New("the plan source returned none")
	}
	if err != nil {
		if !errors.Is(err, ErrNoPlan) {
			err = fmt.Errorf("%w: %w", ErrNoPlan, err)
		}
		return nil, nil, err
	}
	if pl.Scopes != nil {
		cp := *id
		cp.Scopes = make([]string, 0, len(id.Scopes))
		for _, s := range id.Scopes {
			if slices.Contains(pl.Scopes, s) {
				cp.Scopes = append(cp.Scopes, s)
			}
		}
		id = &cp
	}
	return id, pl, nil
}

// limitOf returns the caller's limits: [Config].Limits, else its plan's.
func (m *middleware) limitOf(id *Identity, pl *Plan) (Limit, bool) {
	switch {
	case m.limits != nil:
		return m.limits(id), true
	case pl != nil:
		return pl.Limit(), true
	}
	return Limit{}, false
}

// wrote does what follows a call of a tool that writes or deletes, whether
// or not it succeeded (it may have written before it failed): the cached
// results of its graphs are dropped and quota measurements updated.
func (m *middleware) wrote(ctx context.Context, t *tool, pl *Plan, prefix string, keys []string, err error) {
	if !t.Writes && !t.Deletes || len(keys) == 0 {
		return
	}
	if m.cache != nil {
		m.cache.invalidate(keys)
	}
	switch {
	case t.Deletes:
		m.quotas.deleted(prefix, keys)
	case pl != nil && (pl.MaxGraphMemory > 0 || pl.MaxTotalMemory > 0):
		// The call's own deadline may be spent: measure on a fresh one.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		m.quotas.after(mctx, pl, prefix, keys)
	}
}

// retryResult is the tool error of a refusal by a limit. The text and
// _meta.retryAfterMs say when to retry.
func (c *call) retryResult(what string, retry time.Duration) *mcp.CallToolResult {
	res := c.toolError(fmt.Sprintf("%s: retry after %d s", what, retrySeconds(retry)))
	res.Meta = mcp.Meta{"retryAfterMs": retry.Milliseconds()}
	return res
}

// cleanError cleans a Go error returned by the server, keeping its JSON-RPC
// code. The second result reports that it was replaced by a generic message.
func (m *middleware) cleanError(cl *cleaner, err error, c *call) (error, bool) {
	code := int64(jsonrpc.CodeInternalError)
	var data json.RawMessage
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		code = we.Code
		data = we.Data
	}
	msg, _ := cl.text(err.Error(), true)
	if cl.reveals(msg) {
		return &jsonrpc.Error{Code: code, Message: c.generic()}, true
	}
	if len(data) > 0 {
		cd, _, derr := cl.json(data, true)
		if derr != nil || cl.reveals(string(cd)) {
			data = nil
		} else {
			data = cd
		}
	}
	return &jsonrpc.Error{Code: code, Message: msg, Data: data}, false
}

func (m *middleware) listTools(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	c := &call{m: m, start: m.now()}
	id, prefix, err := m.identity(ctx, req)
	if err != nil {
		return nil, c.unauthenticated(err)
	}
	// A caller without a plan sees no tools; one with a plan sees the
	// tools its plan's scopes admit.
	tenant := id.Tenant
	id, pl, perr := m.plan(id)
	if perr != nil {
		id = &Identity{Tenant: tenant}
	}
	ctx = NewContext(ctx, id)
	if pl != nil {
		ctx = WithPlan(ctx, pl)
	}
	res, err := next(ctx, method, req)
	if err != nil {
		cl := cleaner{r: m.r, tenant: id.Tenant, prefix: prefix, known: m.policies, extra: m.reveals}
		cerr, _ := m.cleanError(&cl, err, c)
		return nil, cerr
	}
	lr, ok := res.(*mcp.ListToolsResult)
	if !ok || lr == nil {
		return res, nil
	}
	out := *lr
	out.Tools = make([]*mcp.Tool, 0, len(lr.Tools))
	for _, t := range lr.Tools {
		if t == nil {
			continue
		}
		if p, ok := m.policy(t.Name); ok && perr == nil && id.hasScopes(p.Scopes) {
			cp := *t
			out.Tools = append(out.Tools, &cp)
		}
	}
	return &out, nil
}

func (m *middleware) sideDoor(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	c := &call{m: m, start: m.now(), ev: Event{Method: method, Rows: -1}}
	id, prefix, err := m.identity(ctx, req)
	if err != nil {
		c.audit(ctx, OutcomeRefused, err)
		return nil, c.unauthenticated(err)
	}
	c.ev.Tenant, c.ev.Subject = id.Tenant, id.Subject
	if !m.allow[method] {
		err := fmt.Errorf("%w: %s", ErrMethodRefused, method)
		c.audit(ctx, OutcomeRefused, err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("method %q is not available on this server", method)}
	}
	id, pl, err := m.plan(id)
	if err != nil {
		c.audit(ctx, OutcomeRefused, err)
		return nil, &jsonrpc.Error{Code: CodeUnauthenticated, Message: "permission denied: no plan of this server admits the tenant; request id " + c.requestID()}
	}
	if pl != nil {
		ctx = WithPlan(ctx, pl)
	}
	ctx = NewContext(ctx, id)
	res, err := next(ctx, method, req)
	cl := cleaner{r: m.r, tenant: id.Tenant, prefix: prefix, known: m.policies, extra: m.reveals}
	if err != nil {
		cerr, _ := m.cleanError(&cl, err, c)
		return nil, cerr
	}
	cleaned, err := cleanResult(&cl, res)
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: c.generic()}
	}
	return cleaned, nil
}

// cleanResult cleans any result by a JSON round trip into a new value of the
// same type; it returns res itself when nothing changed.
func cleanResult(cl *cleaner, res mcp.Result) (mcp.Result, error) {
	if res == nil || reflect.ValueOf(res).IsNil() {
		return res, nil
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	cleaned, changed, err := cl.json(raw, false)
	if err != nil || !changed {
		return res, err
	}
	t := reflect.TypeOf(res)
	if t.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("result type %v is not a pointer", t)
	}
	nv := reflect.New(t.Elem())
	if err := json.Unmarshal(cleaned, nv.Interface()); err != nil {
		return nil, err
	}
	out, ok := nv.Interface().(mcp.Result)
	if !ok {
		return nil, fmt.Errorf("result type %v is not an mcp.Result", t)
	}
	return out, nil
}

// resultText is the text of a result, for audit.
func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(*mcp.TextContent); ok {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// queryText returns the decoded string argument name of raw, for audit.
func queryText(raw json.RawMessage, name string) string {
	var args map[string]json.RawMessage
	if json.Unmarshal(raw, &args) != nil {
		return ""
	}
	var s string
	_ = json.Unmarshal(args[name], &s)
	return s
}

// rowsOf counts what a result returned: the length of the "rows", "data",
// "graphs" or "results" array of its structured content (or of its first
// text content parsed as JSON), or of a top-level array; -1 when unknown.
func rowsOf(res *mcp.CallToolResult) int {
	if res == nil || res.IsError {
		return -1
	}
	raw, err := structuredJSON(res.StructuredContent)
	if err != nil {
		return -1
	}
	if raw == nil {
		for _, ct := range res.Content {
			if tc, ok := ct.(*mcp.TextContent); ok {
				raw = json.RawMessage(tc.Text)
				break
			}
		}
	}
	if raw == nil || !json.Valid(raw) {
		return -1
	}
	i := skipWS(raw, 0)
	if i == len(raw) {
		return -1
	}
	if raw[i] == '[' {
		return countArray(raw[i:])
	}
	if raw[i] != '{' {
		return -1
	}
	i++
	for {
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return -1
		}
		if raw[i] == ',' {
			i++
			continue
		}
		ke, _ := scanString(raw, i)
		key := string(raw[i+1 : ke-1])
		i = skipWS(raw, skipWS(raw, ke)+1)
		ve := skipValue(raw, i)
		switch key {
		case "rows", "data", "graphs", "results":
			if raw[i] == '[' {
				return countArray(raw[i:ve])
			}
		}
		i = ve
	}
}

// countArray counts the elements of the JSON array v.
func countArray(v []byte) int {
	n := 0
	i := skipWS(v, 1)
	for i < len(v) && v[i] != ']' {
		if v[i] == ',' {
			i = skipWS(v, i+1)
			continue
		}
		n++
		i = skipWS(v, skipValue(v, i))
	}
	return n
}
