package graphname

import (
	"errors"
	"strings"
	"testing"
)

// The fuzz targets take a selector as their first argument: it picks one of
// variants (both schemes, both separators, CaseFold, shorter limits), so
// every target covers both schemes. Each seed is added for every variant.

const tenKB = 10 * 1024

// long subjects are hashed under OpaqueSubject.
var (
	longSubject  = "https://login.example.com/|user-0123456789abcdef-0123456789abcdef"
	longSubject2 = "https://login.example.com/|user-0123456789abcdef-0123456789abcdeF"
)

// pairSeeds are pairs of (tenant, graph) pairs.
var pairSeeds = [][4]string{
	// The collision of the earlier system, with both separators.
	{"a", "b_x", "a_b", "x"},
	{"a", "b.x", "a.b", "x"},
	{"a_b", "x", "a", "b_x"},
	{"tenant-alpha", "social_network", "tenant", "alpha_social_network"},
	{"tenant-alpha", "social_network", "tenant-alpha_social", "network"},
	// Case variants.
	{"acme", "users", "ACME", "users"},
	{"Acme", "users", "acme", "users"},
	{"acme", "Users", "acme", "users"},
	{"auth0|abc", "g", "AUTH0|ABC", "g"},
	{"3F2504E0-4F89-11D3-9A0C-0305E82C3301", "g", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "g"},
	// Unicode look-alikes: Cyrillic 'а' and 'е', fullwidth letters and low line.
	{"tenant", "g", "tenаnt", "g"},
	{"acme", "graph", "acme", "grаph"},
	{"acme", "users", "ａｃｍｅ", "users"},
	{"acme", "a_b", "acme", "a＿b"},
	{"acmе", "x", "acme", "x"},
	// NUL and other control characters.
	{"a\x00", "b", "a", "\x00b"},
	{"a", "b\x00", "a", "b"},
	{"a\x00b", "x", "a", "x"},
	{"a\n", "b", "a", "\nb"},
	// Separators at either edge.
	{"_a", "g", "a_", "g"},
	{"a_", "g", "a", "_g"},
	{"a", "_g", "a_", "g"},
	{"a", "g_", "a", "g"},
	{".a", "g", "a.", "g"},
	{"a", ".g", "a.", "g"},
	{"a", "g.", "a", "g"},
	{"a", "_", "a_", "_"},
	{"-a", "g", "a-", "g"},
	// Empty strings.
	{"", "", "", ""},
	{"", "g", "g", ""},
	{"a", "", "", "a"},
	// 10 kB names.
	{strings.Repeat("a", tenKB), "g", "a", "g"},
	{"a", strings.Repeat("g", tenKB), "a", strings.Repeat("g", 128)},
	{strings.Repeat("t", 63), strings.Repeat("g", 128), strings.Repeat("t", 64), strings.Repeat("g", 127)},
	// Opaque subjects: at the direct/hashed boundary, hashed, e-mail.
	{strings.Repeat("s", 39), "g", strings.Repeat("s", 40), "g"},
	{longSubject, "g", longSubject2, "g"},
	{"alice@example.com", "g", "alice@example.co", "mg"},
	{"auth0|5f7c8ec7c33c6c004bbafe82", "users", "auth0|5f7c8ec7c33c6c004bbafe8", "2_users"},
	{"h-abc", "g", "h", "abc_g"},
	{"a\xff", "g", "a", "g"},
}

func FuzzResolveInjective(f *testing.F) {
	for _, s := range pairSeeds {
		for sel := range variants {
			f.Add(uint8(sel), s[0], s[1], s[2], s[3])
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, t1, g1, t2, g2 string) {
		v := pick(sel)
		k1 := checkResolve(t, v, t1, g1)
		k2 := checkResolve(t, v, t2, g2)
		if k1 != "" && k2 != "" {
			same := v.canon(t1) == v.canon(t2) && g1 == g2
			if same != (k1 == k2) {
				t.Fatalf("%s: Resolve(%q, %q) = %q and Resolve(%q, %q) = %q",
					v.name, t1, g1, k1, t2, g2, k2)
			}
		}
		for _, k := range []string{k1, k2} {
			checkResplit(t, v, k)
		}
	})
}

// checkResolve compares Resolve with the reference model and with the
// Validate methods, and checks the key's alphabet. It returns the key, or ""
// when the pair is refused.
func checkResolve(t *testing.T, v variant, tenant, graph string) string {
	t.Helper()
	key, err := v.r.Resolve(tenant, graph)
	want, ok := v.refResolve(tenant, graph)
	if ok != (err == nil) || key != want {
		t.Fatalf("%s: Resolve(%q, %q) = %q, %v; reference model says %q, %v", v.name, tenant, graph, key, err, want, ok)
	}
	terr, gerr := v.r.ValidateTenant(tenant), v.r.ValidateGraph(graph)
	switch {
	case err == nil:
		if terr != nil || gerr != nil {
			t.Fatalf("%s: Resolve(%q, %q) succeeded, Validate: %v, %v", v.name, tenant, graph, terr, gerr)
		}
		if !refKey.MatchString(key) || len(key) > 63+1+128 {
			t.Fatalf("%s: key %q has a forbidden character or is too long", v.name, key)
		}
	case terr != nil:
		if !errors.Is(err, ErrInvalidTenant) || errors.Is(err, ErrInvalidGraph) || err.Error() != terr.Error() {
			t.Fatalf("%s: Resolve(%q, %q) error %v; ValidateTenant: %v", v.name, tenant, graph, err, terr)
		}
	default:
		if !errors.Is(err, ErrInvalidGraph) || errors.Is(err, ErrInvalidTenant) || gerr == nil || err.Error() != gerr.Error() {
			t.Fatalf("%s: Resolve(%q, %q) error %v; ValidateGraph: %v", v.name, tenant, graph, err, gerr)
		}
	}
	if err != nil && len(err.Error()) > 600 {
		t.Fatalf("%s: error message of %d bytes", v.name, len(err.Error()))
	}
	return key
}

// checkResplit splits key at every separator. Under Readable, any split that
// resolves back to key must be the original pair; the only such split is the
// first separator. Under OpaqueSubject, the segment must decode back to the
// subject (direct) or be a hashed segment.
func checkResplit(t *testing.T, v variant, key string) {
	t.Helper()
	if key == "" {
		return
	}
	sep := v.sep()
	first := strings.Index(key, sep)
	if v.opts.Scheme == OpaqueSubject {
		seg := key[:first]
		if strings.HasPrefix(seg, "h-") {
			if len(seg) != 54 || strings.Count(seg, "-") != 1 {
				t.Fatalf("%s: hashed segment %q", v.name, seg)
			}
			return
		}
		subject, err := refSubject(seg)
		if err != nil || len(subject) > 39 {
			t.Fatalf("%s: segment %q does not decode: %q, %v", v.name, seg, subject, err)
		}
		if again, err := v.r.Resolve(subject, key[first+1:]); err != nil || again != key {
			t.Fatalf("%s: decoded subject %q resolves to %q, %v, not %q", v.name, subject, again, err, key)
		}
		return
	}
	for i := 0; i < len(key); i++ {
		if key[i] != sep[0] {
			continue
		}
		got, err := v.r.Resolve(key[:i], key[i+1:])
		if err == nil && got == key && i != first {
			t.Fatalf("%s: key %q also resolves from (%q, %q)", v.name, key, key[:i], key[i+1:])
		}
		if i == first && (err != nil || got != key) {
			t.Fatalf("%s: key %q does not split at its first separator: %q, %v", v.name, key, got, err)
		}
	}
}

// stripSeeds are (tenant, graph, other tenant, key).
var stripSeeds = [][4]string{
	{"a", "b_x", "a_b", "a_b_x"},
	{"a_b", "x", "a", "a_b_x"},
	{"a", "b.x", "a.b", "a.b.x"},
	{"tenant-alpha", "social_network", "tenant", "tenant-alpha_social_network"},
	{"acme", "users", "ACME", "ACME_users"},
	{"Acme", "users", "acme", "acme_users"},
	{"acme", "users", "acme-x", "acme-x_users"},
	{"acme-x", "users", "acme", "acme_x_users"},
	{"tenаnt", "g", "tenant", "tenant_g"},
	{"ａｃｍｅ", "users", "acme", "ａｃｍｅ_users"},
	{"acme", "grаph", "acme", "acme_grаph"},
	{"a\x00", "g", "a", "a\x00_g"},
	{"a", "g\x00", "a", "a_g\x00"},
	{"a", "g", "a", "a_g\x00"},
	{"_a", "g", "a_", "_a_g"},
	{"a", "_g", "a_", "a__g"},
	{"a", "g_", "a", "a_g_"},
	{".a", "g", "a", "a..g"},
	{"a", ".g", "a", "a_.g"},
	{"a", "g.", "a", "a.g."},
	{"", "", "", ""},
	{"a", "", "", "a_"},
	{"", "g", "a", "_g"},
	{strings.Repeat("a", tenKB), strings.Repeat("g", tenKB), "a", "a_" + strings.Repeat("g", tenKB)},
	{"a", strings.Repeat("g", 128), "a", "a_" + strings.Repeat("g", 129)},
	{"auth0|abc", "users", "auth0|abd", "mf2xi2bqprqweyy_users"},
	{"AUTH0|ABC", "users", "auth0|abc", "mf2xi2bqprqweyy_users"},
	{"auth0|abc", "users", "auth0|abc", "auth0|abc_users"},
	{longSubject, "g", longSubject2, "h-bezd7q6gucbgftsu6zawtz3taazz3nex5am72hdwz3jsl3o6ihjq_g"},
	{strings.Repeat("s", 40), "g", strings.Repeat("s", 39), "h-_g"},
	{"a", "g", "a", "me_g"},
	{"a\xff", "g", "a", "me_g"},
}

func FuzzStripRoundTrip(f *testing.F) {
	for _, s := range stripSeeds {
		for sel := range variants {
			f.Add(uint8(sel), s[0], s[1], s[2], s[3])
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, tenant, graph, other, key string) {
		v := pick(sel)
		r := v.r

		// Round trip of a key Resolve made.
		k, err := r.Resolve(tenant, graph)
		if err == nil {
			if g, ok := r.Strip(tenant, k); !ok || g != graph {
				t.Fatalf("%s: Strip(%q, Resolve(%q, %q) = %q) = %q, %v", v.name, tenant, tenant, graph, k, g, ok)
			}
			prefix, err := r.Prefix(tenant)
			if err != nil || !strings.HasPrefix(k, prefix) || k[len(prefix):] != graph {
				t.Fatalf("%s: Prefix(%q) = %q, %v for key %q", v.name, tenant, prefix, err, k)
			}
			// Another tenant never gets it.
			g, ok := r.Strip(other, k)
			if ok != (v.canon(other) == v.canon(tenant)) || (ok && g != graph) {
				t.Fatalf("%s: Strip(%q, %q) = %q, %v; the key is %q's", v.name, other, k, g, ok, tenant)
			}
		}

		// Strip on arbitrary keys, for both tenants: ok exactly when
		// Resolve gives the key back.
		for _, tn := range []string{tenant, other} {
			for _, key := range []string{key, k, graph, tenant + v.sep() + graph} {
				checkStrip(t, v, tn, key)
			}
			checkFilter(t, v, tn, []string{key, k, other, graph, tenant + v.sep() + graph, k})
		}
	})
}

// checkStrip checks that Strip(tenant, key) is ok exactly when some graph
// name resolves to key for tenant.
func checkStrip(t *testing.T, v variant, tenant, key string) {
	t.Helper()
	g, ok := v.r.Strip(tenant, key)
	seg, tenantOK := v.refSegment(tenant)
	prefix := seg + v.sep()
	want := tenantOK && strings.HasPrefix(key, prefix) && v.refGraphOK(key[len(prefix):])
	if ok != want {
		t.Fatalf("%s: Strip(%q, %q) = %q, %v; reference model says %v", v.name, tenant, key, g, ok, want)
	}
	if !ok {
		if g != "" {
			t.Fatalf("%s: Strip(%q, %q) = %q, false", v.name, tenant, key, g)
		}
		return
	}
	if again, err := v.r.Resolve(tenant, g); err != nil || again != key {
		t.Fatalf("%s: Strip(%q, %q) = %q, but Resolve gives %q, %v", v.name, tenant, key, g, again, err)
	}
}

// checkFilter checks that Filter keeps exactly what Strip accepts, in order.
func checkFilter(t *testing.T, v variant, tenant string, keys []string) {
	t.Helper()
	var want []string
	for _, key := range keys {
		if g, ok := v.r.Strip(tenant, key); ok {
			want = append(want, g)
		}
	}
	got := v.r.Filter(tenant, keys)
	if got == nil || strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Fatalf("%s: Filter(%q, %q) = %q, want %q", v.name, tenant, keys, got, want)
	}
}
