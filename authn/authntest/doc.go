// Package authntest provides real keys, real signed tokens and a real JWKS
// endpoint for tests of bearer-token verification, including the broken
// tokens and misbehaving key servers a verifier must survive.
//
// Keys: NewRSA, CachedRSA (a per-process pool, because RSA generation is
// slow), NewEC and NewEd25519 return a Key that exports its public half as
// PEM or JWK.
//
// Tokens: Key.Mint signs claims (start from Claims for the registered
// ones); Key.MintWithHeader signs under any header (a foreign kid, a crit
// member, a jku pointing elsewhere). The attacks: Unsigned (alg "none"),
// HS256 (pass a public key's PEM as the secret for the key-confusion
// attack), Tamper (new payload, old signature) and JWE (five parts).
//
// Key server: NewJWKSServer serves a key set and OIDC / RFC 8414 discovery
// documents over httptest, counts fetches, and can rotate keys (SetKeys),
// publish invalid ones (AddRawKey), answer with faults (SetFault: error
// statuses, delays, oversized bodies, garbage), hold answers until released
// (Hold) and send Cache-Control headers.
//
// The package does not import authn, so authn's own tests can use it.
//
//	key := authntest.NewEd25519(t)
//	srv := authntest.NewJWKSServer(t, key)
//	token := key.Mint(authntest.Claims(srv.URL, "https://mcp.example/mcp", "acme", time.Now(), time.Hour))
package authntest
