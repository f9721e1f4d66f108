package graphname

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package. Every error wraps exactly one of them
// with a message that names the problem and what is allowed instead; test
// for them with [errors.Is].
var (
	// ErrInvalidTenant reports a tenant id (or, under [OpaqueSubject], a
	// subject) that the Resolver does not accept.
	ErrInvalidTenant = errors.New("graphname: invalid tenant")

	// ErrInvalidGraph reports a graph name that the Resolver does not accept.
	ErrInvalidGraph = errors.New("graphname: invalid graph name")

	// ErrInvalidOptions reports [Options] that [New] refuses, and the use of
	// a Resolver that was not built by [New] or [Default].
	ErrInvalidOptions = errors.New("graphname: invalid options")
)

// Hard limits. They keep every physical key short, and every tenant segment
// within a DNS label (63 bytes), whatever the options say.
const (
	// MaxTenantLen is the longest tenant id of the [Readable] scheme, in bytes.
	MaxTenantLen = 63

	// MaxSubjectLen is the longest subject of the [OpaqueSubject] scheme, in bytes.
	MaxSubjectLen = 1024

	// MaxGraphLen is the longest graph name, in bytes.
	MaxGraphLen = 128

	// maxSegment is the longest tenant segment of any scheme.
	maxSegment = 63
)

// Scheme selects how a tenant argument becomes the tenant segment of a key.
type Scheme uint8

const (
	// Readable uses the tenant id itself as the segment. Tenant ids are 1–63
	// lower-case ASCII letters, digits and '-', not starting or ending with
	// '-'. This is the default.
	Readable Scheme = iota

	// OpaqueSubject takes any non-empty valid UTF-8 identity-provider
	// subject (up to 1024 bytes) and encodes it: unpadded lower-case base32
	// when the subject is at most 39 bytes long, else "h-" followed by the
	// base32 of its SHA-256. See the package documentation.
	OpaqueSubject
)

// String returns the scheme's Go name.
func (s Scheme) String() string {
	switch s {
	case Readable:
		return "Readable"
	case OpaqueSubject:
		return "OpaqueSubject"
	}
	return fmt.Sprintf("Scheme(%d)", uint8(s))
}

// CasePolicy says what the [Readable] scheme does with upper-case ASCII
// letters in tenant ids.
type CasePolicy uint8

const (
	// CaseReject refuses tenant ids with upper-case letters. This is the
	// default: every accepted tenant id is its own segment.
	CaseReject CasePolicy = iota

	// CaseFold folds ASCII upper-case letters to lower case, so "Acme",
	// "ACME" and "acme" are deliberately one tenant with one set of graphs.
	// Non-ASCII letters are still refused.
	CaseFold
)

// String returns the policy's Go name.
func (c CasePolicy) String() string {
	switch c {
	case CaseReject:
		return "CaseReject"
	case CaseFold:
		return "CaseFold"
	}
	return fmt.Sprintf("CasePolicy(%d)", uint8(c))
}

// Options configure a [Resolver]. The zero value is the default: the
// [Readable] scheme, separator '_', the largest limits and [CaseReject].
type Options struct {
	// Scheme selects how tenant arguments are turned into key segments.
	Scheme Scheme

	// Separator goes between the tenant segment and the graph name: '_'
	// (the default, also when zero) or '.'. Neither can appear in a tenant
	// segment of either scheme, which is what makes keys unambiguous.
	Separator byte

	// MaxTenantLen bounds the tenant argument in bytes: the tenant id under
	// [Readable] (1–63, default 63), the raw subject under [OpaqueSubject]
	// (1–1024, default 1024). Zero means the default.
	MaxTenantLen int

	// MaxGraphLen bounds graph names in bytes (1–128, default 128). Zero
	// means the default. Lowering it later hides existing longer graphs
	// from Strip and Filter.
	MaxGraphLen int

	// TenantCase is the upper-case policy of the [Readable] scheme. It must
	// be [CaseReject] under [OpaqueSubject], whose subjects are always
	// case-sensitive.
	TenantCase CasePolicy
}

// separators are the allowed Options.Separator values. None of them is a
// tenant-segment byte of any scheme ([a-z0-9-]), and none has a meaning in
// Redis key globs, ACL patterns or Cluster hash tags. ':' is left out on
// purpose: keys of the project's own stores live under "tenantgraph:", and a
// tenant named "tenantgraph" must not be able to match them with an ACL
// pattern such as "~tenantgraph:*".
const separators = "_."

// Resolver maps (tenant, graph name) pairs to physical FalkorDB keys and back.
// Build it with [New] or use [Default]. A Resolver is immutable and safe for
// concurrent use; the zero Resolver refuses everything.
type Resolver struct {
	opts       Options
	sep        byte   // 0 only in the zero Resolver
	sepString  string // sep as a string
	plain      bool   // Readable and CaseReject: the segment is the tenant id
	tenantRule string
	graphRule  string
}

var defaultResolver = mustNew(Options{})

func mustNew(opts Options) *Resolver {
	r, err := New(opts)
	if err != nil {
		panic(err)
	}
	return r
}

// Default returns the Resolver of the zero [Options]: the seed format
// "<tenant>_<graph>" with [Readable] tenant ids. The package-level functions
// use it.
func Default() *Resolver { return defaultResolver }

// New returns a Resolver for opts, or an error wrapping [ErrInvalidOptions]
// that names the offending field.
func New(opts Options) (*Resolver, error) {
	if opts.Separator == 0 {
		opts.Separator = '_'
	}
	if strings.IndexByte(separators, opts.Separator) < 0 {
		return nil, fmt.Errorf("%w: Separator %s is not allowed; use '_' or '.'",
			ErrInvalidOptions, describeByte(opts.Separator))
	}
	if opts.TenantCase != CaseReject && opts.TenantCase != CaseFold {
		return nil, fmt.Errorf("%w: unknown TenantCase %v; use CaseReject or CaseFold",
			ErrInvalidOptions, opts.TenantCase)
	}
	if opts.MaxGraphLen == 0 {
		opts.MaxGraphLen = MaxGraphLen
	}
	if opts.MaxGraphLen < 1 || opts.MaxGraphLen > MaxGraphLen {
		return nil, fmt.Errorf("%w: MaxGraphLen %d is out of range; use 1 to %d (0 means %d)",
			ErrInvalidOptions, opts.MaxGraphLen, MaxGraphLen, MaxGraphLen)
	}
	var tenantCap int
	switch opts.Scheme {
	case Readable:
		tenantCap = MaxTenantLen
	case OpaqueSubject:
		tenantCap = MaxSubjectLen
		if opts.TenantCase != CaseReject {
			return nil, fmt.Errorf("%w: TenantCase %v cannot be used with OpaqueSubject; subjects are case-sensitive",
				ErrInvalidOptions, opts.TenantCase)
		}
	default:
		return nil, fmt.Errorf("%w: unknown Scheme %v; use Readable or OpaqueSubject",
			ErrInvalidOptions, opts.Scheme)
	}
	if opts.MaxTenantLen == 0 {
		opts.MaxTenantLen = tenantCap
	}
	if opts.MaxTenantLen < 1 || opts.MaxTenantLen > tenantCap {
		return nil, fmt.Errorf("%w: MaxTenantLen %d is out of range for %v; use 1 to %d (0 means %d)",
			ErrInvalidOptions, opts.MaxTenantLen, opts.Scheme, tenantCap, tenantCap)
	}

	r := &Resolver{
		opts:      opts,
		sep:       opts.Separator,
		sepString: string(rune(opts.Separator)),
		plain:     opts.Scheme == Readable && opts.TenantCase == CaseReject,
	}
	switch {
	case opts.Scheme == OpaqueSubject:
		r.tenantRule = fmt.Sprintf("subjects are 1-%d bytes of valid UTF-8", opts.MaxTenantLen)
	case opts.TenantCase == CaseFold:
		r.tenantRule = fmt.Sprintf("tenant ids are 1-%d ASCII letters, digits or '-' (upper case is folded to lower case), not starting or ending with '-'", opts.MaxTenantLen)
	default:
		r.tenantRule = fmt.Sprintf("tenant ids are 1-%d lower-case ASCII letters, digits or '-', not starting or ending with '-'", opts.MaxTenantLen)
	}
	r.graphRule = fmt.Sprintf("graph names are 1-%d ASCII letters, digits, '_', '-' or '.', not starting with '.'", opts.MaxGraphLen)
	return r, nil
}

// errNotInitialized is what the zero (or nil) Resolver answers.
var errNotInitialized = fmt.Errorf("%w: Resolver not initialised; use graphname.New or graphname.Default", ErrInvalidOptions)

func (r *Resolver) ready() bool { return r != nil && r.sep != 0 }

// Options returns the options the Resolver was built with, defaults filled in.
func (r *Resolver) Options() Options {
	if !r.ready() {
		return Options{}
	}
	return r.opts
}

// Resolve returns the physical key of graph for tenant: the tenant segment,
// the separator and the graph name ("acme" + "users" -> "acme_users" by
// default). It fails with an error wrapping [ErrInvalidTenant] or
// [ErrInvalidGraph] when either argument is not accepted; the tenant is
// checked first. Different accepted pairs always give different keys.
func (r *Resolver) Resolve(tenant, graph string) (string, error) {
	if !r.ready() {
		return "", errNotInitialized
	}
	var buf [maxSegment + 1]byte
	n, p, at := r.segment(&buf, tenant)
	if p != noProblem {
		return "", r.tenantError(tenant, p, at)
	}
	if p, at := r.checkGraph(graph); p != noProblem {
		return "", r.graphError(graph, p, at)
	}
	if r.plain {
		// The segment is the tenant id itself.
		return tenant + r.sepString + graph, nil
	}
	var b strings.Builder
	b.Grow(n + 1 + len(graph))
	b.Write(buf[:n])
	b.WriteByte(r.sep)
	b.WriteString(graph)
	return b.String(), nil
}

// Strip is the inverse of [Resolver.Resolve]: it returns the graph name of key
// when key is tenant's, that is when Resolve(tenant, graph) succeeds and
// equals key. Otherwise, including for an invalid tenant, it returns "" and
// false. The graph name is a substring of key; Strip does not allocate.
func (r *Resolver) Strip(tenant, key string) (graph string, ok bool) {
	if !r.ready() {
		return "", false
	}
	var buf [maxSegment + 1]byte
	n, p, _ := r.segment(&buf, tenant)
	if p != noProblem {
		return "", false
	}
	if r.plain {
		return strip(r, tenant, key)
	}
	return strip(r, buf[:n], key)
}

// strip returns key's graph name when key is seg, the separator and a valid
// graph name.
func strip[S string | []byte](r *Resolver, seg S, key string) (string, bool) {
	n := len(seg)
	if len(key) <= n+1 || key[n] != r.sep || key[:n] != string(seg) {
		return "", false
	}
	graph := key[n+1:]
	if p, _ := r.checkGraph(graph); p != noProblem {
		return "", false
	}
	return graph, true
}

// Filter returns the graph names of tenant's keys among keys, stripped of
// their prefix, in input order: for each key, what [Resolver.Strip] returns
// when it succeeds. Keys of other tenants, and keys that Resolve would never
// produce, are left out. The result is never nil; it is empty for an invalid
// tenant. The names are substrings of the keys.
func (r *Resolver) Filter(tenant string, keys []string) []string {
	out := []string{}
	if !r.ready() {
		return out
	}
	var buf [maxSegment + 1]byte
	n, p, _ := r.segment(&buf, tenant)
	if p != noProblem {
		return out
	}
	if r.plain {
		return filter(r, out, tenant, keys)
	}
	return filter(r, out, buf[:n], keys)
}

// filter appends the graph names of the keys that strip accepts to out.
func filter[S string | []byte](r *Resolver, out []string, seg S, keys []string) []string {
	for _, key := range keys {
		if g, ok := strip(r, seg, key); ok {
			out = append(out, g)
		}
	}
	return out
}

// Prefix returns the physical prefix of all of tenant's keys: the tenant
// segment followed by the separator ("acme_" by default). Every key that
// [Resolver.Strip] accepts for tenant starts with it, and no other tenant's
// key does. Segments contain no glob characters, so "~" + prefix + "*" is a
// Redis ACL key pattern that covers the tenant's graphs and nobody else's.
func (r *Resolver) Prefix(tenant string) (string, error) {
	if !r.ready() {
		return "", errNotInitialized
	}
	var buf [maxSegment + 1]byte
	n, p, at := r.segment(&buf, tenant)
	if p != noProblem {
		return "", r.tenantError(tenant, p, at)
	}
	if r.plain {
		return tenant + r.sepString, nil
	}
	buf[n] = r.sep
	return string(buf[:n+1]), nil
}

// ValidateTenant returns nil when Resolve accepts tenant, else an error
// wrapping [ErrInvalidTenant] that says what is allowed. Under
// [OpaqueSubject] the message never repeats the subject.
func (r *Resolver) ValidateTenant(tenant string) error {
	if !r.ready() {
		return errNotInitialized
	}
	var buf [maxSegment + 1]byte
	if _, p, at := r.segment(&buf, tenant); p != noProblem {
		return r.tenantError(tenant, p, at)
	}
	return nil
}

// ValidateGraph returns nil when Resolve accepts graph as a graph name,
// else an error wrapping [ErrInvalidGraph] that says what is allowed.
func (r *Resolver) ValidateGraph(graph string) error {
	if !r.ready() {
		return errNotInitialized
	}
	if p, at := r.checkGraph(graph); p != noProblem {
		return r.graphError(graph, p, at)
	}
	return nil
}

// Resolve calls [Resolver.Resolve] on the [Default] Resolver.
func Resolve(tenant, graph string) (string, error) { return defaultResolver.Resolve(tenant, graph) }

// Strip calls [Resolver.Strip] on the [Default] Resolver.
func Strip(tenant, key string) (graph string, ok bool) { return defaultResolver.Strip(tenant, key) }

// Filter calls [Resolver.Filter] on the [Default] Resolver.
func Filter(tenant string, keys []string) []string { return defaultResolver.Filter(tenant, keys) }

// Prefix calls [Resolver.Prefix] on the [Default] Resolver.
func Prefix(tenant string) (string, error) { return defaultResolver.Prefix(tenant) }

// ValidateTenant calls [Resolver.ValidateTenant] on the [Default] Resolver.
func ValidateTenant(tenant string) error { return defaultResolver.ValidateTenant(tenant) }

// ValidateGraph calls [Resolver.ValidateGraph] on the [Default] Resolver.
func ValidateGraph(graph string) error { return defaultResolver.ValidateGraph(graph) }
