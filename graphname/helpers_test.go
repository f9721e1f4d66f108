package graphname

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// variant is a configured Resolver together with an independent reference
// model of what it must do, written without the package's own code.
type variant struct {
	name string
	opts Options
	r    *Resolver
}

// variants cover both schemes, both separators, both case policies and
// shorter limits. The fuzz targets select one with their first argument.
var variants = func() []variant {
	list := []variant{
		{name: "readable", opts: Options{}},
		{name: "opaque", opts: Options{Scheme: OpaqueSubject}},
		{name: "readable-dot", opts: Options{Separator: '.'}},
		{name: "opaque-dot", opts: Options{Scheme: OpaqueSubject, Separator: '.'}},
		{name: "readable-fold", opts: Options{TenantCase: CaseFold}},
		{name: "readable-short", opts: Options{MaxTenantLen: 8, MaxGraphLen: 16}},
		{name: "opaque-short", opts: Options{Scheme: OpaqueSubject, MaxTenantLen: 48, MaxGraphLen: 16}},
	}
	for i := range list {
		r, err := New(list[i].opts)
		if err != nil {
			panic(err)
		}
		list[i].r = r
	}
	return list
}()

func pick(sel uint8) variant { return variants[int(sel)%len(variants)] }

func (v variant) sep() string {
	if v.opts.Separator == '.' {
		return "."
	}
	return "_"
}

func (v variant) maxTenant() int {
	switch {
	case v.opts.MaxTenantLen != 0:
		return v.opts.MaxTenantLen
	case v.opts.Scheme == OpaqueSubject:
		return 1024
	}
	return 63
}

func (v variant) maxGraph() int {
	if v.opts.MaxGraphLen != 0 {
		return v.opts.MaxGraphLen
	}
	return 128
}

var (
	refTenant = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	refGraph  = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)
	refKey    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	refB32    = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// canon is the tenant identity the variant promises to keep apart: the
// tenant itself, or its ASCII lower-case form under CaseFold.
func (v variant) canon(tenant string) string {
	if v.opts.TenantCase == CaseFold {
		return strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, tenant)
	}
	return tenant
}

// refSegment is the reference model of the tenant segment, built with
// encoding/base32, crypto/sha256 and regexp.
func (v variant) refSegment(tenant string) (string, bool) {
	if len(tenant) == 0 || len(tenant) > v.maxTenant() {
		return "", false
	}
	if v.opts.Scheme == OpaqueSubject {
		if !utf8.ValidString(tenant) {
			return "", false
		}
		if len(tenant) <= 39 {
			return strings.ToLower(refB32.EncodeToString([]byte(tenant))), true
		}
		sum := sha256.Sum256([]byte(tenant))
		return "h-" + strings.ToLower(refB32.EncodeToString(sum[:])), true
	}
	c := v.canon(tenant)
	if !refTenant.MatchString(c) {
		return "", false
	}
	return c, true
}

func (v variant) refGraphOK(graph string) bool {
	return len(graph) <= v.maxGraph() && refGraph.MatchString(graph)
}

// refResolve is the reference model of Resolve.
func (v variant) refResolve(tenant, graph string) (string, bool) {
	seg, ok := v.refSegment(tenant)
	if !ok || !v.refGraphOK(graph) {
		return "", false
	}
	return seg + v.sep() + graph, true
}

// refSubject decodes an opaque segment made by the direct encoding.
func refSubject(seg string) (string, error) {
	b, err := refB32.DecodeString(strings.ToUpper(seg))
	if err != nil {
		return "", err
	}
	if got := strings.ToLower(refB32.EncodeToString(b)); got != seg {
		return "", fmt.Errorf("segment %q is not canonical base32 (re-encodes as %q)", seg, got)
	}
	return string(b), nil
}
