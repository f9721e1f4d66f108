package authn

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Defaults and bounds of Config and Issuer settings.
const (
	DefaultMaxTokenSize = 16 << 10
	MaxMaxTokenSize     = 1 << 20
	DefaultLeeway       = 30 * time.Second
	MaxLeeway           = 5 * time.Minute

	DefaultMinRefresh   = time.Minute
	DefaultMaxRefresh   = time.Hour
	DefaultMaxStaleness = 6 * time.Hour
	DefaultCooldown     = 30 * time.Second
	DefaultFetchTimeout = 10 * time.Second
	// MaxJWKSSize caps key-set and discovery documents.
	MaxJWKSSize = 1 << 20

	DefaultCacheEntries = 10000
	DefaultCacheTTL     = time.Minute
	MaxCacheTTL         = 5 * time.Minute
)

// TenantValidator checks a tenant identifier taken from a token. A
// *graphname.Resolver satisfies it.
type TenantValidator interface {
	ValidateTenant(tenant string) error
}

// Config configures a Verifier. Only Issuers is required.
type Config struct {
	// Issuers are the token issuers the Verifier accepts; at least one.
	// Each issuer's tokens are verified only with that issuer's keys.
	Issuers []Issuer

	// MaxTokenSize caps the token length in bytes; longer tokens are
	// refused before any decoding. Default DefaultMaxTokenSize (16 KiB).
	MaxTokenSize int

	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// DefaultLeeway (30 s); NoLeeway means none; at most MaxLeeway.
	Leeway time.Duration

	// TenantValidator checks the tenant claim. Default graphname.Default().
	TenantValidator TenantValidator

	// Revocation, if set, is asked whether a token's jti is revoked.
	// Errors from it refuse the token (fail closed).
	Revocation Revocation

	// Cache, if set, enables the verified-token cache.
	Cache *CacheConfig

	// Hooks receive observations (outcomes, key fetches). Optional.
	Hooks Hooks

	// Transport is the RoundTripper of the key-fetching HTTP client.
	// Default: a clone of http.DefaultTransport. The client around it is
	// always the Verifier's own (timeout, body cap, redirect policy).
	Transport http.RoundTripper

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NoLeeway, as Config.Leeway, disables clock-skew tolerance.
const NoLeeway time.Duration = -1

// Issuer describes one trusted token issuer. Exactly one key source must be
// set: Keys, JWKSURL or Discovery.
type Issuer struct {
	// Issuer is the exact "iss" value of the issuer's tokens. It must not
	// contain white space (Principal.UserID joins it with the subject by a
	// space).
	Issuer string

	// Audiences lists the audiences this resource server answers to (its
	// resource URL, for an MCP server). A token is accepted if its "aud"
	// (string or array) contains any of them. Required.
	Audiences []string

	// Keys are static verification keys.
	Keys []PublicKey
	// JWKSURL is the URL of the issuer's JSON Web Key Set (https, or http
	// to a loopback host).
	JWKSURL string
	// Discovery finds the JWKS URL from the issuer's discovery document
	// (Issuer + "/.well-known/openid-configuration", then RFC 8414's
	// oauth-authorization-server), which must name the same issuer and
	// a jwks_uri on the issuer's origin.
	Discovery bool
	// JWKS tunes fetching for JWKSURL and Discovery.
	JWKS JWKSOptions

	// Algorithms is the allow-list of JWS algorithms. Default
	// DefaultAlgorithms (RS256, ES256, EdDSA). Accepted values: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, Ed25519;
	// anything else ("none", HS256, ...) is a configuration error.
	Algorithms []string

	// RequiredType, if set, is the "typ" header the tokens must carry,
	// such as "at+jwt" (RFC 9068); compared case-insensitively, with or
	// without the "application/" prefix.
	RequiredType string

	// TenantClaim names the claim holding the tenant: a claim name, or a
	// dotted path into nested objects such as "custom_claims.organization"
	// (a top-level claim with the exact name, dots included, wins).
	// Default "sub".
	TenantClaim string

	// ScopeClaims name the claims holding scopes: space-separated strings
	// or arrays of strings. Default "scope" and "scp".
	ScopeClaims []string

	// RequiredScopes must all be present in every token of this issuer.
	RequiredScopes []string

	// AllowedTenants, if set, lists the tenants this issuer may speak for.
	AllowedTenants []string
	// TenantAllowed, if set, decides whether this issuer may speak for a
	// tenant. When both are set, both must agree.
	TenantAllowed func(tenant string) bool

	// MaxLifetime, if set, refuses tokens whose exp is further than this
	// from their iat (or, without iat, from now).
	MaxLifetime time.Duration

	// RequireJTI refuses tokens without a "jti" (which could not be
	// revoked individually).
	RequireJTI bool
}

// JWKSOptions tune the fetching of a remote key set. Zero values mean the
// defaults.
type JWKSOptions struct {
	// MinRefresh and MaxRefresh bound the refresh interval: the key set is
	// fetched again after its Cache-Control max-age clamped to
	// [MinRefresh, MaxRefresh], or MaxRefresh without max-age.
	// Defaults 1 min and 1 h.
	MinRefresh, MaxRefresh time.Duration
	// MaxStaleness is how long keys keep serving after the last good
	// fetch while fetches fail; then tokens of this issuer are refused
	// with ErrKeysStale. Default 6 h; at least MaxRefresh.
	MaxStaleness time.Duration
	// Cooldown is the minimum time between two fetches triggered by an
	// unknown kid (or stale keys). Default 30 s.
	Cooldown time.Duration
	// Timeout bounds each fetch. Default 10 s.
	Timeout time.Duration
}

// CacheConfig configures the verified-token cache.
//
// A cached token is accepted again without signature verification until
// the earliest of its exp and TTL after it was verified. Revoking a token
// through Verifier.Revoke drops it from this Verifier's cache at once; a
// revocation made elsewhere (another replica writing to a shared
// Revocation store) takes effect here within TTL. Entries are also dropped
// when the issuer's key set changes or goes stale.
type CacheConfig struct {
	// MaxEntries bounds the number of cached tokens. Default 10,000.
	MaxEntries int
	// TTL bounds how long a token stays cached. Default 1 min, at most
	// MaxCacheTTL (5 min).
	TTL time.Duration
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// checkFetchURL checks that u may be fetched: https, or http to a loopback
// host.
func checkFetchURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%s: plain http is allowed only to loopback hosts", u.Redacted())
		}
	default:
		return fmt.Errorf("%s: scheme must be https", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%s: no host", u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("%s: credentials in the URL are not allowed", u.Redacted())
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseFetchURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if err := checkFetchURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

// compile checks an issuer's configuration and builds its runtime form
// (without starting any key fetching).
func (c *Issuer) compile() (*issuer, error) {
	name := c.Issuer
	if name == "" {
		return nil, configErr("issuer with empty Issuer")
	}
	if strings.IndexFunc(name, unicode.IsSpace) >= 0 || !isPrintable(name) {
		return nil, configErr("issuer %q: Issuer must not contain white space or control characters", name)
	}
	in := &issuer{name: name, requireJTI: c.RequireJTI, maxLifetime: c.MaxLifetime}
	errf := func(format string, args ...any) error {
		return configErr("issuer %q: %s", name, fmt.Sprintf(format, args...))
	}

	if len(c.Audiences) == 0 {
		return nil, errf("no Audiences: a resource server must check that tokens were issued for it")
	}
	for _, a := range c.Audiences {
		if a == "" {
			return nil, errf("empty audience")
		}
	}
	in.audiences = slices.Clone(c.Audiences)

	algs := c.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, name := range algs {
		a := algorithms[name]
		if a == nil {
			return nil, errf("algorithm %q not accepted (allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, Ed25519; never none or HMAC)", name)
		}
		if !slices.Contains(in.algs, a) {
			in.algs = append(in.algs, a)
		}
	}

	if t := c.RequiredType; t != "" {
		in.typ = strings.ToLower(strings.TrimPrefix(strings.ToLower(t), "application/"))
	}

	claim := c.TenantClaim
	if claim == "" {
		claim = "sub"
	}
	in.tenantClaim = claim
	if strings.Contains(claim, ".") {
		in.tenantPath = strings.Split(claim, ".")
		for _, p := range in.tenantPath {
			if p == "" {
				return nil, errf("TenantClaim %q has an empty path element", claim)
			}
		}
	}
	in.scopeClaims = slices.Clone(c.ScopeClaims)
	if len(in.scopeClaims) == 0 {
		in.scopeClaims = []string{"scope", "scp"}
	}
	in.requiredScopes = slices.Clone(c.RequiredScopes)
	if len(c.AllowedTenants) > 0 {
		in.allowedTenants = make(map[string]struct{}, len(c.AllowedTenants))
		for _, t := range c.AllowedTenants {
			in.allowedTenants[t] = struct{}{}
		}
	}
	in.tenantAllowed = c.TenantAllowed
	if c.MaxLifetime < 0 {
		return nil, errf("negative MaxLifetime")
	}

	sources := 0
	if len(c.Keys) > 0 {
		sources++
	}
	if c.JWKSURL != "" {
		sources++
	}
	if c.Discovery {
		sources++
	}
	if sources != 1 {
		return nil, errf("exactly one key source is needed (Keys, JWKSURL or Discovery), have %d", sources)
	}
	if len(c.Keys) > 0 {
		set := &keySet{}
		for i, pk := range c.Keys {
			k, err := newVerifyKey(pk)
			if err != nil {
				return nil, errf("key %d: %v", i, err)
			}
			set.add(k)
		}
		if len(set.all) > 1 {
			seen := map[string]bool{}
			for _, k := range set.all {
				if k.kid == "" {
					return nil, errf("every key needs a KeyID when there are several")
				}
				if seen[k.kid] {
					return nil, errf("duplicate KeyID %q", k.kid)
				}
				seen[k.kid] = true
			}
		}
		in.static = set
		return in, nil
	}

	o := c.JWKS
	if o.MinRefresh == 0 {
		o.MinRefresh = DefaultMinRefresh
	}
	if o.MaxRefresh == 0 {
		o.MaxRefresh = max(DefaultMaxRefresh, o.MinRefresh)
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = max(DefaultMaxStaleness, o.MaxRefresh)
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultFetchTimeout
	}
	switch {
	case o.MinRefresh < time.Second:
		return nil, errf("JWKS.MinRefresh below 1s")
	case o.MaxRefresh < o.MinRefresh:
		return nil, errf("JWKS.MaxRefresh below MinRefresh")
	case o.MaxStaleness < o.MaxRefresh:
		return nil, errf("JWKS.MaxStaleness below MaxRefresh: keys would go stale between refreshes")
	case o.Cooldown < 0 || o.Timeout < 0:
		return nil, errf("negative JWKS.Cooldown or Timeout")
	}
	in.jwksOpts = o
	if c.JWKSURL != "" {
		u, err := parseFetchURL(c.JWKSURL)
		if err != nil {
			return nil, errf("JWKSURL %v", err)
		}
		in.jwksURL = u
	} else {
		u, err := parseFetchURL(name)
		if err != nil {
			return nil, errf("Discovery needs an https issuer URL: %v", err)
		}
		in.discoveryBase = u
	}
	return in, nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
