package authn

import (
	"errors"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// reasonError is the type of the per-reason sentinels. Its code is the
// stable, low-cardinality name reported to [Hooks] and returned by
// [Reason].
type reasonError struct {
	code string
	msg  string
}

func (e *reasonError) Error() string { return e.msg }

func newReason(code, msg string) *reasonError { return &reasonError{code: code, msg: msg} }

// Sentinel errors, one per reason a token is refused. Verification errors
// wrap exactly one of them and also [auth.ErrInvalidToken], so that
// [auth.RequireBearerToken] answers 401; test them with errors.Is.
var (
	// ErrTooLarge: the token is longer than Config.MaxTokenSize.
	ErrTooLarge error = newReason("too_large", "token too large")
	// ErrMalformed: not a compact JWS (three base64url parts of JSON), an
	// encrypted (five-part) JWE, or a registered claim of the wrong type.
	ErrMalformed error = newReason("malformed", "malformed token")
	// ErrUnsupportedAlg: the header's alg is not in the issuer's allow-list
	// (alg "none" and HMAC algorithms never are).
	ErrUnsupportedAlg error = newReason("unsupported_alg", "signature algorithm not accepted")
	// ErrCritHeader: the header has a "crit" member; no critical extension
	// is supported.
	ErrCritHeader error = newReason("crit_header", "critical header extensions are not supported")
	// ErrWrongType: the issuer requires a "typ" (such as at+jwt) that the
	// token does not carry.
	ErrWrongType error = newReason("wrong_type", "token type not accepted")
	// ErrUnknownIssuer: the token's iss is not a configured issuer.
	ErrUnknownIssuer error = newReason("unknown_issuer", "issuer not accepted")
	// ErrUnknownKey: no key of the token's issuer matches its kid and alg.
	ErrUnknownKey error = newReason("unknown_key", "signing key not found")
	// ErrKeysStale: the issuer's key set could not be refreshed within
	// the maximum staleness (or never fetched); verification fails closed.
	ErrKeysStale error = newReason("keys_stale", "signing keys unavailable")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature error = newReason("bad_signature", "signature invalid")
	// ErrMissingExp: the token has no exp claim.
	ErrMissingExp error = newReason("missing_exp", "token has no expiry")
	// ErrExpired: exp (plus leeway) has passed.
	ErrExpired error = newReason("expired", "token expired")
	// ErrNotYetValid: nbf (minus leeway) is in the future.
	ErrNotYetValid error = newReason("not_yet_valid", "token not yet valid")
	// ErrIssuedInFuture: iat (minus leeway) is in the future.
	ErrIssuedInFuture error = newReason("issued_in_future", "token issued in the future")
	// ErrLifetimeTooLong: exp is further from iat than the issuer's
	// MaxLifetime.
	ErrLifetimeTooLong error = newReason("lifetime_too_long", "token lifetime too long")
	// ErrWrongAudience: aud is missing or names none of the issuer's
	// audiences.
	ErrWrongAudience error = newReason("wrong_audience", "token not issued for this resource")
	// ErrMissingSubject: sub is missing or empty.
	ErrMissingSubject error = newReason("missing_subject", "token has no subject")
	// ErrMissingTenant: the tenant claim is missing or empty.
	ErrMissingTenant error = newReason("missing_tenant", "token has no tenant")
	// ErrInvalidTenant: the tenant claim is not a string, or the
	// TenantValidator refuses it.
	ErrInvalidTenant error = newReason("invalid_tenant", "tenant claim invalid")
	// ErrTenantNotAllowed: the issuer may not speak for this tenant.
	ErrTenantNotAllowed error = newReason("tenant_not_allowed", "issuer may not speak for this tenant")
	// ErrInsufficientScope: a scope the issuer requires is missing.
	// RequireBearer answers it with 403 and error="insufficient_scope".
	ErrInsufficientScope error = newReason("insufficient_scope", "insufficient scope")
	// ErrMissingJTI: the issuer requires a jti (RequireJTI) and the token
	// has none.
	ErrMissingJTI error = newReason("missing_jti", "token has no jti")
	// ErrRevoked: the token's jti has been revoked.
	ErrRevoked error = newReason("revoked", "token revoked")
	// ErrRevocationUnavailable: the revocation store could not be asked;
	// verification fails closed.
	ErrRevocationUnavailable error = newReason("revocation_unavailable", "revocation status unavailable")
)

// Configuration and key errors (not verification outcomes).
var (
	// ErrInvalidConfig is wrapped by every error New returns.
	ErrInvalidConfig = errors.New("authn: invalid configuration")
	// ErrUnsupportedKey: a public key is of an unsupported type, curve or
	// use, too small (RSA below 2048 bits) or contains private material.
	ErrUnsupportedKey = errors.New("authn: unsupported key")
	// ErrClosed: the Verifier has been closed.
	ErrClosed error = newReason("closed", "verifier closed")
)

// VerifyError is the error returned for a refused token. Its message never
// contains the token; it unwraps to the reason sentinel (ErrExpired, ...),
// to [auth.ErrInvalidToken] and, when there is one, to the underlying cause.
type VerifyError struct {
	// Reason is one of the sentinel errors of this package.
	Reason error
	// Issuer is the configured issuer the token claimed, or "" when the
	// issuer is unknown or was not reached.
	Issuer string
	// Detail is an optional human-readable precision (never token text).
	Detail string
	// RequiredScopes lists the scopes that were required, for
	// ErrInsufficientScope.
	RequiredScopes []string
	// Cause is the underlying error, if any (a TenantValidator or
	// revocation-store error).
	Cause error
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	if e.Reason != ErrInsufficientScope {
		b.WriteString("invalid token: ")
	}
	b.WriteString(e.Reason.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the reason, [auth.ErrInvalidToken] and the cause.
func (e *VerifyError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Reason, auth.ErrInvalidToken, e.Cause}
	}
	return []error{e.Reason, auth.ErrInvalidToken}
}

// Reason returns the stable reason code of a verification error ("expired",
// "bad_signature", ...), "ok" for nil and "error" for errors of other
// origins. Codes are safe to use as metric labels.
func Reason(err error) string {
	if err == nil {
		return "ok"
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		if r, ok := ve.Reason.(*reasonError); ok {
			return r.code
		}
	}
	var r *reasonError
	if errors.As(err, &r) {
		return r.code
	}
	return "error"
}

func fail(reason error, iss, detail string) *VerifyError {
	return &VerifyError{Reason: reason, Issuer: iss, Detail: detail}
}
