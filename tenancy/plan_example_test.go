package tenancy_test

import (
	"errors"
	"fmt"

	"github.com/tenantgraph/tenantgraph/tenancy"
)

// A policy file gives each tenant a plan: its own entry, the plan its token
// names, or the default.
func ExampleParsePolicy() {
	p, err := tenancy.ParsePolicy([]byte(`{
	  "defaultPlan": "free",
	  "plans": {
	    "free": {"graphs": ["notes", "kb-*"], "scopes": ["read"], "maxGraphs": 3, "maxRows": 100},
	    "pro":  {"maxGraphs": 100, "maxTotalMemory": "10GiB", "queryTimeout": "30s"}
	  },
	  "tenants": {"acme": {"plan": "pro", "maxRows": 5000}}
	}`))
	if err != nil {
		panic(err)
	}
	for _, tenant := range []string{"acme", "bob"} {
		pl, _ := p.Plan(&tenancy.Identity{Tenant: tenant})
		fmt.Printf("%s: plan %s, %d graphs, %s in all, %d rows, kb-2026 allowed: %v\n",
			tenant, pl.Name, pl.MaxGraphs, tenancy.FormatBytes(pl.MaxTotalMemory), pl.MaxRows, pl.AllowsGraph("kb-2026"))
	}

	_, err = tenancy.ParsePolicy([]byte(`{"plans": {"free": {"maxGraph": 3}}}`))
	fmt.Println(errors.Is(err, tenancy.ErrInvalidPolicy), err)
	// Output:
	// acme: plan pro+acme, 100 graphs, 10 GiB in all, 5000 rows, kb-2026 allowed: true
	// bob: plan free, 3 graphs, 0 B in all, 100 rows, kb-2026 allowed: true
	// true tenancy: invalid policy: json: unknown field "maxGraph"
}
