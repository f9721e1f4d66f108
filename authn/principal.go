package authn

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Keys of auth.TokenInfo.Extra set by TokenVerifier. They are the contract
// with package tenancy (which keeps its own copy of the names and does not
// import authn): "tenant", "subject" and "issuer" hold non-empty strings,
// "principal" the *Principal, "claims" the token's claims (a
// map[string]any, for plans chosen by a claim).
const (
	ExtraTenant    = "tenant"
	ExtraSubject   = "subject"
	ExtraIssuer    = "issuer"
	ExtraPrincipal = "principal"
	ExtraClaims    = "claims"
)

// Principal is the verified identity a token carries. Values returned by a
// Verifier may be shared between requests (the token cache returns the same
// Principal for the same token): treat them, and their slices and maps, as
// read-only.
type Principal struct {
	// Tenant is the tenant claim, checked by the TenantValidator.
	Tenant string
	// Subject is the "sub" claim.
	Subject string
	// Issuer is the "iss" claim, one of the configured issuers.
	Issuer string
	// Scopes are the scopes from the issuer's scope claims, deduplicated.
	Scopes []string
	// Expiry is "exp"; IssuedAt is "iat" (zero if absent).
	Expiry, IssuedAt time.Time
	// JTI is the "jti" claim ("" if absent).
	JTI string
	// Claims are all claims of the token as decoded by encoding/json.
	Claims map[string]any
}

// UserID is the identifier the MCP SDK binds sessions to: issuer and
// subject joined by a space. Issuers contain no white space, so the join is
// unambiguous.
func (p *Principal) UserID() string { return p.Issuer + " " + p.Subject }

// HasScope reports whether the token granted scope s.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// TokenInfo converts p to the MCP SDK's token information, with Extra per
// the ExtraTenant ... ExtraPrincipal contract.
func (p *Principal) TokenInfo() *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     p.Scopes,
		Expiration: p.Expiry,
		UserID:     p.UserID(),
		Extra: map[string]any{
			ExtraTenant:    p.Tenant,
			ExtraSubject:   p.Subject,
			ExtraIssuer:    p.Issuer,
			ExtraPrincipal: p,
			ExtraClaims:    p.Claims,
		},
	}
}

// PrincipalFromTokenInfo returns the Principal a TokenVerifier of this
// package stored in ti.
func PrincipalFromTokenInfo(ti *auth.TokenInfo) (*Principal, bool) {
	if ti == nil {
		return nil, false
	}
	p, ok := ti.Extra[ExtraPrincipal].(*Principal)
	return p, ok && p != nil
}

// PrincipalFromContext returns the Principal of the request whose context
// is ctx, after auth.RequireBearerToken (or RequireBearer) with this
// package's TokenVerifier.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	return PrincipalFromTokenInfo(auth.TokenInfoFromContext(ctx))
}

// TokenVerifier adapts v to the MCP SDK: use it with
// auth.RequireBearerToken (or RequireBearer). Every error it returns wraps
// auth.ErrInvalidToken, so the SDK answers 401 and never 500. The SDK checks
// the expiry again, without leeway unless told: with
// auth.RequireBearerToken, set RequireBearerTokenOptions.ClockSkew to
// v.Leeway() (RequireBearer does).
func (v *Verifier) TokenVerifier() auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		_, ti, err := v.verify(ctx, token, true)
		if err != nil {
			return nil, err
		}
		return ti, nil
	}
}
