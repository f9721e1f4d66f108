// Command proxy is tenantgraph's reference MCP server: FalkorDB graphs for
// many tenants over MCP, behind bearer-token authentication.
//
// With no configuration it starts an embedded FalkorDB (package
// falkor/lite) and a DEVELOPMENT-ONLY token issuer, prints two tenant tokens
// and a Claude Desktop configuration, and serves MCP on
// http://127.0.0.1:3001/mcp:
//
//	go run ./examples/proxy
//
// For production, name the token issuer (BEARER_ISSUER, BEARER_AUDIENCE,
// BEARER_JWKS_URI) and the FalkorDB (FALKORDB_URL). Every setting is a
// flag and an environment variable; see README.md or
// `go run ./examples/proxy -help`.
//
// A request walks: HTTP hardening (body limit, timeouts, access log) →
// authn.RequireBearer (the token, from the Authorization header only) →
// the Streamable HTTP or SSE handler of the go-sdk → the tenancy middleware
// (tenant, scopes, graph-name mapping, limits shared through FalkorDB,
// audit) → the falkor tools, or an upstream MCP server's tools in upstream
// mode → FalkorDB.
package main
