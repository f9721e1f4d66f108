package graphname

import (
	"strconv"
	"strings"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve("tenant-alpha", "social_network"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveCaseFold(b *testing.B) {
	r := mustResolver(b, Options{TenantCase: CaseFold})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve("Tenant-Alpha", "social_network"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveOpaque(b *testing.B) {
	r := mustResolver(b, Options{Scheme: OpaqueSubject})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve("auth0|5f7c8ec7c33c6c004bbafe82", "social_network"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveOpaqueHashed(b *testing.B) {
	r := mustResolver(b, Options{Scheme: OpaqueSubject})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(longSubject, "social_network"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStrip(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Strip("tenant-alpha", "tenant-alpha_social_network"); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkStripOtherTenant(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Strip("tenant-alpha", "tenant-beta_social_network"); ok {
			b.Fatal("ok")
		}
	}
}

func BenchmarkStripOpaque(b *testing.B) {
	r := mustResolver(b, Options{Scheme: OpaqueSubject})
	key, err := r.Resolve("auth0|5f7c8ec7c33c6c004bbafe82", "social_network")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Strip("auth0|5f7c8ec7c33c6c004bbafe82", key); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkStripOpaqueHashed(b *testing.B) {
	r := mustResolver(b, Options{Scheme: OpaqueSubject})
	key, err := r.Resolve(longSubject, "social_network")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Strip(longSubject, key); !ok {
			b.Fatal("not ok")
		}
	}
}

// filterKeys returns 10,000 keys: 100 graphs of each of 100 tenants, shuffled
// deterministically, as GRAPH.LIST would answer on a shared database.
func filterKeys(b *testing.B, r *Resolver, tenant func(int) string) []string {
	keys := make([]string, 0, 10000)
	for g := range 100 {
		for t := range 100 {
			key, err := r.Resolve(tenant(t), "graph_"+strconv.Itoa(g)+".v1")
			if err != nil {
				b.Fatal(err)
			}
			keys = append(keys, key)
		}
	}
	return keys
}

func BenchmarkFilter(b *testing.B) {
	tenant := func(i int) string { return "tenant-" + strconv.Itoa(i) }
	keys := filterKeys(b, Default(), tenant)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if got := Filter("tenant-42", keys); len(got) != 100 {
			b.Fatalf("%d graphs", len(got))
		}
	}
}

func BenchmarkFilterOpaque(b *testing.B) {
	r := mustResolver(b, Options{Scheme: OpaqueSubject})
	tenant := func(i int) string { return "auth0|" + strings.Repeat("0", 20) + strconv.Itoa(i) }
	keys := filterKeys(b, r, tenant)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if got := r.Filter(tenant(42), keys); len(got) != 100 {
			b.Fatalf("%d graphs", len(got))
		}
	}
}

func BenchmarkValidateGraph(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateGraph("social_network"); err != nil {
			b.Fatal(err)
		}
	}
}
