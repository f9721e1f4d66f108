package graphname_test

import (
	"errors"
	"fmt"

	"github.com/tenantgraph/tenantgraph/graphname"
)

func ExampleResolve() {
	key, err := graphname.Resolve("tenant-alpha", "social_network")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(key)

	// The collision of the earlier systems cannot happen: '_' is not
	// allowed in tenant ids.
	_, err = graphname.Resolve("a_b", "x")
	fmt.Println(errors.Is(err, graphname.ErrInvalidTenant))
	// Output:
	// tenant-alpha_social_network
	// true
}

func ExampleStrip() {
	graph, ok := graphname.Strip("tenant-alpha", "tenant-alpha_social_network")
	fmt.Println(graph, ok)

	// Another tenant's key, even one that starts with the same letters.
	graph, ok = graphname.Strip("tenant", "tenant-alpha_social_network")
	fmt.Printf("%q %v\n", graph, ok)
	// Output:
	// social_network true
	// "" false
}

func ExampleFilter() {
	// GRAPH.LIST answers every tenant's keys; show a tenant only its own.
	keys := []string{"acme_users", "globex_users", "acme_orders", "acme-labs_secret", "acme_bad name"}
	fmt.Println(graphname.Filter("acme", keys))
	// Output:
	// [users orders]
}

func ExamplePrefix() {
	prefix, err := graphname.Prefix("acme")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ACL key pattern: ~" + prefix + "*")
	// Output:
	// ACL key pattern: ~acme_*
}

func ExampleValidateGraph() {
	err := graphname.ValidateGraph("my graph")
	fmt.Println(errors.Is(err, graphname.ErrInvalidGraph))
	fmt.Println(err)
	// Output:
	// true
	// graphname: invalid graph name "my graph": space at byte 2 is not allowed; graph names are 1-128 ASCII letters, digits, '_', '-' or '.', not starting with '.'
}

func ExampleValidateTenant() {
	// A Cyrillic 'а' that looks like a Latin 'a'.
	fmt.Println(graphname.ValidateTenant("tenаnt"))
	// Output:
	// graphname: invalid tenant "ten\u0430nt": '\u0430' (U+0430, not ASCII) at byte 3 is not allowed; tenant ids are 1-63 lower-case ASCII letters, digits or '-', not starting or ending with '-'
}

func ExampleNew_opaqueSubject() {
	r, err := graphname.New(graphname.Options{Scheme: graphname.OpaqueSubject})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every function takes the raw subject of the identity provider.
	key, err := r.Resolve("auth0|abc", "users")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(key)

	graph, ok := r.Strip("auth0|abc", key)
	fmt.Println(graph, ok)

	_, ok = r.Strip("AUTH0|ABC", key) // subjects are case-sensitive
	fmt.Println(ok)

	// Subjects longer than 39 bytes are hashed.
	key, _ = r.Resolve("https://login.example.com/|user-0123456789abcdef-0123456789abcdef", "users")
	fmt.Println(key)

	fmt.Println(r.Filter("auth0|abc", []string{"mf2xi2bqprqweyy_users", "auth0|abc_users", "me_users"}))
	// Output:
	// mf2xi2bqprqweyy_users
	// users true
	// false
	// h-bezd7q6gucbgftsu6zawtz3taazz3nex5am72hdwz3jsl3o6ihjq_users
	// [users]
}

func ExampleNew_caseFold() {
	r, err := graphname.New(graphname.Options{TenantCase: graphname.CaseFold, Separator: '.'})
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := r.Resolve("Acme", "users")
	b, _ := r.Resolve("ACME", "users")
	fmt.Println(a, b, a == b)
	// Output:
	// acme.users acme.users true
}

func ExampleNew_invalidOptions() {
	_, err := graphname.New(graphname.Options{Separator: '-'})
	fmt.Println(errors.Is(err, graphname.ErrInvalidOptions))
	fmt.Println(err)
	// Output:
	// true
	// graphname: invalid options: Separator '-' is not allowed; use '_' or '.'
}
