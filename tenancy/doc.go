// Package tenancy turns any go-sdk MCP server into a multi-tenant one: a
// receiving middleware ([New]) that knows, for every request, which tenant
// the verified bearer token belongs to, and makes sure that the tenant reaches
// only its own graphs and sees nothing of other tenants or of the system.
//
// The package knows nothing of FalkorDB: it works on tool arguments and
// results. Graph names are mapped by a graphname.Resolver ("users" of tenant
// "acme" is the physical key "acme_users" by default).
//
// # Main use
//
//	server := mcp.NewServer(impl, nil)
//	falkor.AddTools(server, client, nil)           // or any tools of your own
//	mw, err := tenancy.New(tenancy.Config{})       // falkor tool policy, default resolver
//	if err != nil { ... }
//	server.AddReceivingMiddleware(mw)
//	handler := auth.RequireBearerToken(verifier, nil)(
//		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
//
// The verifier (package authn, or any auth.TokenVerifier) puts the tenant
// into TokenInfo.Extra["tenant"] ([ExtraTenant]), the subject into
// Extra["subject"] and the scopes into TokenInfo.Scopes. On the legacy SSE
// transport, wrap the SSE handler in [GuardSSE] as well.
//
// # What the middleware does
//
//   - Identity: from the request's verified token ([TokenInfo]); without one,
//     or without a valid tenant, the request is refused with a JSON-RPC error
//     (code [CodeUnauthenticated]) and nothing reaches the server. Tool
//     handlers find the identity with [FromContext].
//   - Policy: each tool has a [ToolPolicy]: required scopes, graph arguments,
//     a read-only variant, a list filter. [FalkorTools] and
//     [OfficialFalkorTools] are the presets; tools outside the policy are
//     hidden and refused. tools/list shows only what the caller's scopes
//     allow, as copies of the server's tool objects.
//   - Arguments: graph arguments (default "graphName") are mapped to physical
//     keys before the tool (and its schema validation) sees them; invalid
//     names are refused with a tool error that says which names are allowed;
//     arguments that are not a JSON object, and graph arguments spelled in
//     another case or given twice, are refused.
//   - Results: list results are filtered to the caller's graphs; every text,
//     structured content, resource link and meta is cleaned of the caller's
//     physical prefix; errors (tool errors and JSON-RPC errors) are cleaned
//     too, and replaced by "internal error; request id ..." when they would
//     reveal addresses, stack traces, source positions or other tenants' keys.
//   - Side doors: resources, prompts and completions are refused unless
//     [Config].AllowMethods lists them.
//   - Limits: per-tenant token buckets ([LocalLimiter] in process,
//     [RedisLimiter] shared by replicas) and concurrency caps, per tenant or
//     per plan ([Config].Limits); refusals say when to retry. Limiter failures
//     refuse the call.
//   - Audit: one [Event] per call ([NewSlogAuditor]), with the SHA-256 of the
//     query rather than its text.
//
// # Tenant operations
//
//   - Plans: [Config].Plans gives every caller a [Plan] — allowed graph names
//     or patterns, the scopes it may exercise (intersected with its token's),
//     rate limit, graph-count and memory quotas, query timeout and row cap —
//     from a [Policy] or a [PolicyFile] (JSON, reloaded atomically; a bad
//     file keeps the old policy). A caller without a plan is refused.
//     Quotas need a [GraphStore] ([Config].Store; *falkor.Client is one) and
//     refuse with a [QuotaError] that names the quota and its value.
//
//   - Usage: [Usage] is an [Auditor] that counts calls, errors, rows and
//     query time per tenant, tool and day in a Redis-protocol server, so
//     that replicas add up; [AddUsageTool] lets a tenant's admin read its
//     own usage.
//
//   - Cache: [ResultCache] ([Config].Cache, off by default) serves read-only
//     results per tenant for a short time and drops them when the tenant
//     writes to the graph.
//
// Wired together:
//
//	pf, err := tenancy.OpenPolicyFile("policy.json")
//	usage := tenancy.NewUsage(rdb, nil)
//	mw, err := tenancy.New(tenancy.Config{
//		Plans:   pf,
//		Store:   db, // *falkor.Client
//		Auditor: usage,
//		Cache:   tenancy.NewResultCache(&tenancy.CacheOptions{TTL: 5 * time.Second}),
//	})
//	tenancy.AddUsageTool(server, usage)
//
// # Limits of the cleaning
//
// Cleaning replaces the caller's own physical keys by logical names wherever
// they appear, including in data (a property value "acme_x" of tenant "acme"
// reads "x"). Successful results are not searched for other tenants' keys:
// tools must not reach them in the first place, which the argument mapping
// ensures (and database ACLs can enforce). Binary content (images, audio,
// blobs) is passed as is. Messages that tools send on their own
// (notifications/message, progress, elicitation) go through the server's
// sending path, which this middleware does not see.
package tenancy
