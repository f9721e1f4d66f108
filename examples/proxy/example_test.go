package main

import (
	"fmt"
)

// Single-tenant mode: TENANT_GRAPH_PREFIX=false is accepted only together
// with SINGLE_TENANT, and then every verified caller works in that one
// tenant's namespace ("acme_<graph>"), never on unprefixed graphs.
func Example_singleTenant() {
	env := map[string]string{"TENANT_GRAPH_PREFIX": "false"}
	_, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
	fmt.Println(err != nil)

	env["SINGLE_TENANT"] = "acme"
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
	fmt.Println(cfg.SingleTenant, err)
	// Output:
	// true
	// acme <nil>
}

// With any BEARER_* setting the proxy trusts that issuer only: the
// development issuer never runs.
func Example_productionIssuer() {
	env := map[string]string{
		"BEARER_ISSUER":    "https://login.example.com/",
		"BEARER_AUDIENCE":  "https://mcp.example.com/mcp",
		"BEARER_JWKS_URI":  "https://login.example.com/.well-known/jwks.json",
		"BEARER_ALGORITHM": "RS256",
		"LISTEN_ADDR":      ":8080",
		"RATE_LIMIT":       "600/min",
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Dev, cfg.BearerAudiences, cfg.RateLimit)
	// Output: false [https://mcp.example.com/mcp] 10
}
