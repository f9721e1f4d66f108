package tenancy

import (
	"context"
	"fmt"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Keys of [auth.TokenInfo].Extra that [IdentityFromTokenInfo] reads. They are
// the hand-over contract with the token verifier (package authn sets them
// under the same names): the verifier puts the tenant it has validated into
// Extra[ExtraTenant], the token's subject into Extra[ExtraSubject] and its
// issuer into Extra[ExtraIssuer], and all of the token's claims, as a
// map[string]any, into Extra[ExtraClaims] (read by [Identity.Claim]).
const (
	ExtraTenant  = "tenant"
	ExtraSubject = "subject"
	ExtraIssuer  = "issuer"
	ExtraClaims  = "claims"
)

// The scopes of the default tool policies ([FalkorTools] and
// [OfficialFalkorTools]).
const (
	ScopeRead  = "read"  // read queries, schema, explain, list
	ScopeWrite = "write" // read-write queries
	ScopeAdmin = "admin" // with ScopeWrite: deleting a graph
)

// Identity is the verified caller of a request: whom the middleware acts for.
// It comes from the bearer token that the HTTP layer verified, never from
// tool arguments or headers. The middleware puts it into the context passed to
// the server, where tool handlers read it with [FromContext].
//
// An Identity is shared by everything that handles the request; treat it,
// including its slices and maps, as read-only.
type Identity struct {
	// Tenant is the tenant the caller acts for, as the graphname resolver
	// expects it: a tenant id under the Readable scheme, the raw
	// identity-provider subject under the OpaqueSubject scheme. It is never
	// empty in an Identity that the middleware passes on.
	Tenant string

	// Subject is the token's subject (the user or client), for audit.
	Subject string

	// Issuer is the token's issuer, for audit.
	Issuer string

	// UserID is the token's [auth.TokenInfo].UserID, which the SDK's
	// transports use to bind sessions to users.
	UserID string

	// Scopes are the scopes the token grants.
	Scopes []string

	// Token is the verified token the identity was read from, for
	// [Config].Limits functions that look at further claims (a plan, say).
	// It is nil when a custom [Config].Identify builds identities otherwise.
	Token *auth.TokenInfo
}

// HasScope reports whether the identity holds scope.
func (id *Identity) HasScope(scope string) bool {
	return id != nil && slices.Contains(id.Scopes, scope)
}

// Claim returns the claim name of the verified token the identity was read
// from (Token.Extra[ExtraClaims]), and false when there is no such claim or
// no token.
func (id *Identity) Claim(name string) (any, bool) {
	if id == nil || id.Token == nil {
		return nil, false
	}
	claims, _ := id.Token.Extra[ExtraClaims].(map[string]any)
	v, ok := claims[name]
	return v, ok
}

// hasScopes reports whether the identity holds every scope of want.
func (id *Identity) hasScopes(want []string) bool {
	for _, s := range want {
		if !id.HasScope(s) {
			return false
		}
	}
	return true
}

type identityKey struct{}

// NewContext returns a copy of ctx that carries id, as the middleware passes
// it to the server. It is exported for tests of tool handlers; the middleware
// itself never reads identities from the incoming context.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity the middleware verified for the request
// that ctx belongs to, and false outside the middleware (or before it ran).
// Tool handlers use it to learn the tenant:
//
//	id, ok := tenancy.FromContext(ctx)
//	if !ok { return nil, errors.New("no tenant") }
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}

// TokenInfo returns the verified bearer token of a request, or nil: the
// token of the HTTP request that carried it (req.Extra.TokenInfo) on the
// Streamable HTTP transport, and on transports without per-request
// information (SSE, stdio, in-memory) the token stored in ctx by
// [auth.RequireBearerToken] when the session was opened.
//
// On SSE that is the token of the GET request that opened the stream, not of
// the POST that carried the message: see [GuardSSE], which makes sure both
// belong to the same identity. When a request has per-request information
// (Streamable HTTP) without a token, TokenInfo returns nil and does not fall
// back to the context, which on stateful sessions holds the token of the
// session's first request.
func TokenInfo(ctx context.Context, req mcp.Request) *auth.TokenInfo {
	if req != nil {
		if extra := req.GetExtra(); extra != nil {
			return extra.TokenInfo
		}
	}
	return auth.TokenInfoFromContext(ctx)
}

// DefaultIdentify is the default [Config].Identify: the identity of the
// request's verified token (see [TokenInfo]) as read by
// [IdentityFromTokenInfo]. Without a token it fails with [ErrNoIdentity].
func DefaultIdentify(ctx context.Context, req mcp.Request) (*Identity, error) {
	ti := TokenInfo(ctx, req)
	if ti == nil {
		return nil, fmt.Errorf("%w: the request carries no verified bearer token", ErrNoIdentity)
	}
	return IdentityFromTokenInfo(ti)
}

// IdentityFromTokenInfo reads an identity from a verified token: the tenant
// from Extra[ExtraTenant], which must be a non-empty string, the subject and
// issuer from Extra[ExtraSubject] and Extra[ExtraIssuer] (optional strings),
// the scopes and the user id from the token itself. A token without a tenant
// fails with an error wrapping [ErrNoTenant]; whether the tenant is valid is
// checked by the middleware against its resolver.
func IdentityFromTokenInfo(ti *auth.TokenInfo) (*Identity, error) {
	if ti == nil {
		return nil, fmt.Errorf("%w: no token", ErrNoIdentity)
	}
	tenant, _ := ti.Extra[ExtraTenant].(string)
	if tenant == "" {
		return nil, fmt.Errorf("%w: the token has no %q claim", ErrNoTenant, ExtraTenant)
	}
	subject, _ := ti.Extra[ExtraSubject].(string)
	issuer, _ := ti.Extra[ExtraIssuer].(string)
	return &Identity{
		Tenant:  tenant,
		Subject: subject,
		Issuer:  issuer,
		UserID:  ti.UserID,
		Scopes:  ti.Scopes,
		Token:   ti,
	}, nil
}
