// Package authn verifies the bearer tokens (JWS-signed JWT access tokens)
// of MCP requests and turns them into a tenant identity, the Principal.
//
// # Main use
//
// Build a Verifier from a Config naming the trusted issuers, and put it in
// front of the MCP handler with RequireBearer (auth.RequireBearerToken with
// complete RFC 6750 challenges) or auth.RequireBearerToken with
// Verifier.TokenVerifier:
//
//	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{
//		Issuer:    "https://login.example.com",
//		Audiences: []string{"https://mcp.example.com/mcp"},
//		Discovery: true,
//	}}})
//	...
//	defer v.Close()
//	handler := mcp.NewStreamableHTTPHandler(getServer, nil)
//	http.Handle("/mcp", authn.RequireBearer(v, &authn.BearerOptions{ResourceMetadataURL: mdURL})(handler))
//
// Tools then find the caller in req.Extra.TokenInfo: UserID is the issuer
// and subject joined by a space (the SDK binds sessions to it), Extra holds
// the tenant, subject and issuer under ExtraTenant, ExtraSubject and
// ExtraIssuer, and the *Principal under ExtraPrincipal. That is the
// hand-over to package tenancy, which reads Extra[ExtraTenant].
// ProtectedResourceMetadata and MetadataURL set up RFC 9728 discovery.
//
// # What is checked, in order
//
//  1. Size (Config.MaxTokenSize, default 16 KiB) and shape: three base64url
//     parts; a five-part JWE is refused.
//  2. Header: alg must be an accepted algorithm (never "none", never HMAC);
//     a "crit" member is refused; jku, x5u, jwk and x5c are ignored (keys
//     come from configuration only).
//  3. Issuer, from the unverified iss: an unknown issuer is refused before
//     any network call. From here on only that issuer's settings and keys
//     are used: its algorithm allow-list and optional typ (at+jwt).
//  4. Key, by kid among the issuer's keys only (kid required when it has
//     several), bound to the algorithm by key type; a remote issuer's
//     unknown kid triggers at most one key-set refresh per cooldown.
//  5. Signature.
//  6. exp (required), nbf and iat, with Config.Leeway (default 30 s, at most
//     5 min), and the issuer's optional MaxLifetime.
//  7. Audience: aud (string or array) must name one of the issuer's
//     Audiences.
//  8. Subject: sub is required.
//  9. Tenant: the issuer's TenantClaim (default sub; a dotted path reaches
//     into objects) must be a non-empty string that the TenantValidator
//     (default graphname.Default()) accepts, and, if the issuer is bound to
//     tenants (AllowedTenants, TenantAllowed), one of its tenants.
//  10. Scopes (scope and scp claims) against the issuer's RequiredScopes.
//  11. Revocation of the jti, if a Revocation store is configured; store
//     errors refuse the token.
//
// Every refusal is a *VerifyError wrapping one sentinel per reason
// (ErrExpired, ErrBadSignature, ...) and auth.ErrInvalidToken, so the SDK
// answers 401, never 500; messages never contain the token, key-server
// addresses or store errors (those stay reachable through Unwrap for logs).
//
// # Keys
//
// Static keys (Issuer.Keys; ParsePublicKeyPEM and ParseJWK read them) or a
// remote key set (Issuer.JWKSURL or Issuer.Discovery). Accepted: RSA of 2048
// to 8192 bits, ECDSA P-256 and P-384, Ed25519. A remote set is fetched by
// a dedicated HTTP client (per-fetch timeout, 1 MiB body cap, https except
// to loopback hosts, no https-to-http redirects), refreshed in the
// background after its Cache-Control max-age clamped to
// [MinRefresh, MaxRefresh], and replaced as a whole by each good fetch;
// unusable keys in it are skipped. Fetches are single-flight. While fetches
// fail the last good keys keep serving for up to MaxStaleness, then the
// issuer's tokens are refused with ErrKeysStale and Ready reports it. A slow
// key server never delays tokens whose key is known. WaitReady waits for
// the first fetch; Close stops the background work.
//
// # Cache and revocation
//
// The optional verified-token cache (Config.Cache) keys entries by SHA-256
// of the token; an entry lives until the earliest of the token's exp and
// CacheConfig.TTL (at most 5 min), and dies when its issuer's key set
// changes or goes stale. Cached hits do not ask the Revocation store:
// Verifier.Revoke drops the token from its own cache at once, and a
// revocation written by another replica to a shared store (RedisRevocation)
// takes effect here within the cache TTL. MemoryRevocation serves a single
// replica.
//
// # Observability
//
// Hooks receive every verification outcome (issuer and reason code) and
// every key fetch (result, key counts, time of the last good fetch);
// Health and Ready expose the key state for readiness probes.
//
// Package authntest provides keys, token minting (broken tokens included)
// and a fault-injecting JWKS server for tests.
package authn
