package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// BearerOptions configure RequireBearer.
type BearerOptions struct {
	// ResourceMetadataURL is the URL of the RFC 9728 protected-resource
	// metadata, advertised in every challenge (see MetadataURL).
	ResourceMetadataURL string
	// Scopes are required of every request (all of them), in addition to
	// the issuers' RequiredScopes. Missing ones are answered with 403.
	Scopes []string
	// Realm, if set, is added to challenges.
	Realm string
}

// RequireBearer is auth.RequireBearerToken with v's TokenVerifier and
// complete RFC 6750 challenges: the SDK's WWW-Authenticate header lacks the
// error code, so RequireBearer rewrites it on refusals as
//
//	401, no token:        Bearer resource_metadata="..."
//	401, refused token:   Bearer error="invalid_token", error_description="...", resource_metadata="..."
//	403, missing scope:   Bearer error="insufficient_scope", scope="...", resource_metadata="..."
//
// An issuer's RequiredScopes missing from a token also give 403. Tokens are
// taken from the Authorization header only ("Bearer", any case), never from
// the query string, a form body or a cookie. The downstream handler
// receives the original ResponseWriter and the request context carrying
// the auth.TokenInfo (see PrincipalFromContext).
func RequireBearer(v *Verifier, opts *BearerOptions) func(http.Handler) http.Handler {
	if opts == nil {
		opts = &BearerOptions{}
	}
	sdkOpts := &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: opts.ResourceMetadataURL,
		Scopes:              opts.Scopes,
		ClockSkew:           v.leeway, // the SDK re-checks exp; agree with the verifier
	}
	tv := v.TokenVerifier()
	recording := func(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
		ti, err := tv(ctx, token, r)
		if st, ok := ctx.Value(bearerStateKey{}).(*bearerState); ok {
			st.err = err
		}
		return ti, err
	}
	sdk := auth.RequireBearerToken(recording, sdkOpts)
	return func(next http.Handler) http.Handler {
		inner := sdk(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			st := r.Context().Value(bearerStateKey{}).(*bearerState)
			st.passed = true
			next.ServeHTTP(st.w, r)
		}))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := &bearerState{w: w}
			cw := &challengeWriter{ResponseWriter: w, st: st, opts: opts, authorization: r.Header.Get("Authorization")}
			inner.ServeHTTP(cw, r.WithContext(context.WithValue(r.Context(), bearerStateKey{}, st)))
		})
	}
}

type bearerStateKey struct{}

// bearerState carries the verification outcome from the verifier to the
// challenge writer, and the original writer to the next handler.
type bearerState struct {
	w      http.ResponseWriter
	err    error
	passed bool
}

// hasBearer reports whether an Authorization header value is a bearer token
// (asked only for a refusal: it splits the whole token).
func hasBearer(authorization string) bool {
	f := strings.Fields(authorization)
	return len(f) == 2 && strings.EqualFold(f[0], "bearer")
}

// challengeWriter rewrites the SDK's refusals.
type challengeWriter struct {
	http.ResponseWriter
	st   *bearerState
	opts *BearerOptions
	// authorization is the request's Authorization header.
	authorization string
	once          sync.Once
}

func (c *challengeWriter) WriteHeader(code int) {
	c.once.Do(func() {
		if c.st.passed {
			return
		}
		switch code {
		case http.StatusUnauthorized, http.StatusForbidden:
			code = c.challenge(code)
		}
	})
	c.ResponseWriter.WriteHeader(code)
}

func (c *challengeWriter) Write(b []byte) (int, error) {
	c.once.Do(func() {}) // a Write without WriteHeader is a 200: nothing to rewrite
	return c.ResponseWriter.Write(b)
}

// challenge sets WWW-Authenticate for a refusal and returns the status.
func (c *challengeWriter) challenge(code int) int {
	var params []string
	if c.opts.Realm != "" {
		params = append(params, "realm="+quote(c.opts.Realm))
	}
	var ve *VerifyError
	scopes := c.opts.Scopes
	switch {
	case code == http.StatusForbidden:
		params = append(params, `error="insufficient_scope"`)
	case c.st.err != nil && errors.As(c.st.err, &ve) && ve.Reason == ErrInsufficientScope:
		code = http.StatusForbidden
		scopes = append(append([]string(nil), ve.RequiredScopes...), scopes...)
		params = append(params, `error="insufficient_scope"`)
	case hasBearer(c.authorization):
		params = append(params, `error="invalid_token"`)
		desc := "the access token is invalid"
		if c.st.err != nil {
			desc = c.st.err.Error()
		}
		params = append(params, "error_description="+quote(desc))
	}
	if len(scopes) > 0 {
		params = append(params, "scope="+quote(strings.Join(scopes, " ")))
	}
	if c.opts.ResourceMetadataURL != "" {
		params = append(params, "resource_metadata="+quote(c.opts.ResourceMetadataURL))
	}
	ch := "Bearer"
	if len(params) > 0 {
		ch += " " + strings.Join(params, ", ")
	}
	c.Header().Set("WWW-Authenticate", ch)
	return code
}

// Flush implements http.Flusher.
func (c *challengeWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *challengeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// quote returns s as an RFC 9110 quoted-string, dropping characters that
// cannot appear in one.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// MetadataURL returns the RFC 9728 well-known URL of the protected-resource
// metadata for a resource identifier: for "https://mcp.example.com/mcp",
// "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("authn: resource %q: %w", resource, err)
	}
	if u.Scheme == "" || u.Host == "" || u.Fragment != "" {
		return "", fmt.Errorf("authn: resource %q must be an absolute URL without fragment", resource)
	}
	u.Path = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// MetadataPath is the path part of MetadataURL(resource), for routing.
func MetadataPath(resource string) (string, error) {
	s, err := MetadataURL(resource)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	return u.Path, nil
}

// ProtectedResourceMetadata returns RFC 9728 metadata for resource, naming
// v's issuers as authorization servers and "header" as the only bearer
// method. Serve it with auth.ProtectedResourceMetadataHandler at
// MetadataPath(resource).
func (v *Verifier) ProtectedResourceMetadata(resource string, scopes ...string) *oauthex.ProtectedResourceMetadata {
	return &oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   v.Issuers(),
		ScopesSupported:        scopes,
		BearerMethodsSupported: []string{"header"},
	}
}
