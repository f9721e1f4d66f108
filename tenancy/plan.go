package tenancy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// A Plan is what the tenants on it may do and hold: the graph names they may
// use, the scopes they may exercise, their rate limit and their quotas. The
// zero value of a field means "no restriction" (the token's scopes, every
// graph name, no limit), except where its comment says otherwise.
//
// Plans are values the middleware only reads; a [PlanSource] hands out
// pointers to plans it never changes afterwards.
type Plan struct {
	// Name identifies the plan in refusals and audit ("free", "pro").
	Name string

	// Graphs are the logical graph names the tenant may use: names or
	// patterns in the syntax of [path.Match] ("orders-*", "g?"), matched
	// against the whole name. Nil means every valid name; an empty non-nil
	// slice means none. Graphs outside the list are refused as arguments and
	// hidden from graph lists.
	Graphs []string

	// Scopes are the scopes the tenant may exercise: a caller holds the
	// scopes its token grants AND the plan lists. Nil means the token's
	// scopes; an empty non-nil slice means none.
	Scopes []string

	// Rate, Burst and Concurrent are the tenant's rate limit and
	// concurrency cap (see [Limit]). Zero means none.
	Rate       float64
	Burst      int
	Concurrent int

	// MaxGraphs caps the number of graphs the tenant holds: a call to a
	// tool that writes ([ToolPolicy].Writes) naming a graph that does not
	// exist yet is refused when the tenant holds MaxGraphs graphs already.
	// A process runs one such graph-creating call per tenant at a time, so
	// concurrent calls cannot overshoot the quota together (several
	// processes still can, by one graph each).
	MaxGraphs int

	// MaxGraphMemory caps the memory of each of the tenant's graphs, and
	// MaxTotalMemory that of all of them, in bytes, as the [GraphStore]
	// reports it. Memory grows inside a write, so it is measured after
	// each write: writes to a graph over MaxGraphMemory, and all writes of
	// a tenant over MaxTotalMemory, are refused until the tenant deletes
	// data (reads and deletions stay allowed).
	MaxGraphMemory int64
	MaxTotalMemory int64

	// QueryTimeout bounds every tool call: the context passed to the tool
	// has this deadline (the falkor tools hand the remaining time to
	// FalkorDB as the query's TIMEOUT).
	QueryTimeout time.Duration

	// MaxRows caps the rows of a query result. The middleware only carries
	// it ([PlanFromContext]); tools apply it (falkor.ToolOptions.MaxRows).
	MaxRows int
}

// Limit returns the plan's rate limit and concurrency cap.
func (p *Plan) Limit() Limit {
	return Limit{Rate: p.Rate, Burst: p.Burst, Concurrent: p.Concurrent}
}

// AllowsGraph reports whether the plan admits the logical graph name.
func (p *Plan) AllowsGraph(graph string) bool {
	if p.Graphs == nil {
		return true
	}
	for _, pat := range p.Graphs {
		if ok, _ := path.Match(pat, graph); ok {
			return true
		}
	}
	return false
}

// check reports the first problem of the plan's values.
func (p *Plan) check() error {
	for _, pat := range p.Graphs {
		if pat == "" {
			return errors.New("graphs: empty pattern")
		}
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("graphs: pattern %q: %w", pat, err)
		}
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("scopes: %q is not a scope", s)
		}
	}
	switch {
	case p.Rate < 0 || p.Rate != p.Rate:
		return fmt.Errorf("rate: %v is negative", p.Rate)
	case p.Burst < 0:
		return fmt.Errorf("burst: %d is negative", p.Burst)
	case p.Concurrent < 0:
		return fmt.Errorf("concurrent: %d is negative", p.Concurrent)
	case p.MaxGraphs < 0:
		return fmt.Errorf("maxGraphs: %d is negative", p.MaxGraphs)
	case p.MaxGraphMemory < 0:
		return fmt.Errorf("maxGraphMemory: %d is negative", p.MaxGraphMemory)
	case p.MaxTotalMemory < 0:
		return fmt.Errorf("maxTotalMemory: %d is negative", p.MaxTotalMemory)
	case p.QueryTimeout < 0:
		return fmt.Errorf("queryTimeout: %v is negative", p.QueryTimeout)
	case p.MaxRows < 0:
		return fmt.Errorf("maxRows: %d is negative", p.MaxRows)
	}
	return nil
}

// hasQuotas reports whether the plan has quotas that need a [GraphStore].
func (p *Plan) hasQuotas() bool {
	return p.MaxGraphs > 0 || p.MaxGraphMemory > 0 || p.MaxTotalMemory > 0
}

// A PlanSource gives the middleware the plan of a caller ([Config].Plans).
// [*Policy] is one; [*PolicyFile] is one that reloads from a file.
//
// Plan is called once per request with the caller's verified identity,
// whose Tenant is canonical for the resolver (folded to lower case under
// graphname.CaseFold). It returns an error wrapping [ErrNoPlan] when no plan
// admits the caller: the middleware then refuses every call (fail closed).
// It must be safe for concurrent use and fast: it runs on every call.
type PlanSource interface {
	Plan(id *Identity) (*Plan, error)
}

// Policy assigns plans to tenants. A tenant's plan is, in this order: its
// entry in Tenants; the plan its token names in the PlanClaim claim; the
// DefaultPlan. A token naming a plan that is not in Plans is refused, and so
// is a tenant without a plan when DefaultPlan is empty.
//
// A Policy must not be changed after it is handed to the middleware; build a
// new one and swap it (as [PolicyFile] does).
type Policy struct {
	// Plans are the plans by name.
	Plans map[string]*Plan

	// Tenants assigns plans to tenants by name: tenant id → plan name.
	// Under graphname.CaseFold write tenant ids in lower case.
	Tenants map[string]string

	// PlanClaim names the token claim (a string) that names the plan of
	// tenants without an entry in Tenants ("plan"); empty means none.
	// Claims come from [Identity.Claim].
	PlanClaim string

	// DefaultPlan is the plan of tenants that neither Tenants nor PlanClaim
	// assigns; empty refuses them.
	DefaultPlan string
}

// Check reports the first inconsistency of the policy: invalid plan values,
// plans named but not defined, names that differ from their key. Its errors
// wrap [ErrInvalidPolicy].
func (p *Policy) Check() error {
	names := make([]string, 0, len(p.Plans))
	for name := range p.Plans {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pl := p.Plans[name]
		switch {
		case name == "":
			return fmt.Errorf("%w: a plan has an empty name", ErrInvalidPolicy)
		case pl == nil:
			return fmt.Errorf("%w: plan %q is empty", ErrInvalidPolicy, name)
		case pl.Name != name:
			return fmt.Errorf("%w: plan %q is named %q", ErrInvalidPolicy, name, pl.Name)
		}
		if err := pl.check(); err != nil {
			return fmt.Errorf("%w: plan %q: %w", ErrInvalidPolicy, name, err)
		}
	}
	tenants := make([]string, 0, len(p.Tenants))
	for t := range p.Tenants {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		if t == "" {
			return fmt.Errorf("%w: a tenant entry has an empty tenant id", ErrInvalidPolicy)
		}
		if _, ok := p.Plans[p.Tenants[t]]; !ok {
			return fmt.Errorf("%w: tenant %q: plan %q is not defined", ErrInvalidPolicy, t, p.Tenants[t])
		}
	}
	if p.DefaultPlan != "" {
		if _, ok := p.Plans[p.DefaultPlan]; !ok {
			return fmt.Errorf("%w: default plan %q is not defined", ErrInvalidPolicy, p.DefaultPlan)
		}
	}
	return nil
}

// Plan returns the plan of the caller id (see [Policy]).
func (p *Policy) Plan(id *Identity) (*Plan, error) {
	if id == nil || id.Tenant == "" {
		return nil, fmt.Errorf("%w: no tenant", ErrNoPlan)
	}
	if name, ok := p.Tenants[id.Tenant]; ok {
		return p.named(name, "the tenant's entry")
	}
	if p.PlanClaim != "" {
		if v, ok := id.Claim(p.PlanClaim); ok {
			name, _ := v.(string)
			if name == "" {
				return nil, fmt.Errorf("%w: the token's %q claim is not a plan name", ErrNoPlan, p.PlanClaim)
			}
			return p.named(name, "the token's "+p.PlanClaim+" claim")
		}
	}
	if p.DefaultPlan == "" {
		return nil, fmt.Errorf("%w: no plan is assigned to the tenant and there is no default plan", ErrNoPlan)
	}
	return p.named(p.DefaultPlan, "the default")
}

func (p *Policy) named(name, by string) (*Plan, error) {
	pl := p.Plans[name]
	if pl == nil {
		return nil, fmt.Errorf("%w: %s names plan %q, which is not defined", ErrNoPlan, by, name)
	}
	return pl, nil
}

type planKey struct{}

// PlanFromContext returns the plan the middleware applied to the request
// that ctx belongs to, or nil when the middleware has no [Config].Plans.
// Tools read limits they apply themselves from it (MaxRows).
func PlanFromContext(ctx context.Context) *Plan {
	p, _ := ctx.Value(planKey{}).(*Plan)
	return p
}

// WithPlan returns a copy of ctx that carries p, as the middleware passes it
// to the server. It is exported for tests of tool handlers.
func WithPlan(ctx context.Context, p *Plan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

// A GraphStore reports what tenants hold in the database, for the quotas of
// a [Plan]. Keys are physical graph keys. *falkor.Client implements it.
type GraphStore interface {
	// ListGraphs returns every graph key of the database.
	ListGraphs(ctx context.Context) ([]string, error)
	// GraphExists reports whether the graph key exists.
	GraphExists(ctx context.Context, key string) (bool, error)
	// GraphMemory returns the bytes the graph uses.
	GraphMemory(ctx context.Context, key string) (int64, error)
}
