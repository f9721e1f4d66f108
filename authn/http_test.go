package authn

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/require"
)

const scopedIss = "https://scoped.example"

// httpFixture serves a handler behind RequireBearer over real HTTP.
type httpFixture struct {
	keys testKeys
	v    *Verifier
	md   string
}

func newHTTPFixture(t *testing.T) *httpFixture {
	keys := newTestKeys(t)
	v := newTestVerifier(t, Config{Issuers: []Issuer{
		{Issuer: testIss, Audiences: []string{testAud}, Keys: keys.public()},
		{Issuer: scopedIss, Audiences: []string{testAud}, Keys: keys.public(), RequiredScopes: []string{"graph:admin"}},
	}})
	md, err := MetadataURL(testAud)
	require.NoError(t, err)
	return &httpFixture{keys: keys, v: v, md: md}
}

func (f *httpFixture) serve(t *testing.T, opts *BearerOptions) *httptest.Server {
	h := RequireBearer(f.v, opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, p.Tenant)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	code      int
	challenge string
	body      string
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)}
}

func TestRequireBearer(t *testing.T) {
	f := newHTTPFixture(t)
	srv := f.serve(t, &BearerOptions{ResourceMetadataURL: f.md})
	now := time.Now()
	good := f.keys.ed.Mint(claimsAt(now))
	expired := f.keys.ed.Mint(with(claimsAt(now), "exp", now.Add(-time.Hour).Unix()))
	unscoped := f.keys.ed.Mint(with(claimsAt(now), "iss", scopedIss, "scope", "graph:read"))
	scoped := f.keys.ed.Mint(with(claimsAt(now), "iss", scopedIss, "scope", "graph:read graph:admin"))
	rm := `resource_metadata="` + f.md + `"`

	get := func(mod func(*http.Request)) *http.Request {
		r, err := http.NewRequest(http.MethodGet, srv.URL+"/mcp", nil)
		require.NoError(t, err)
		mod(r)
		return r
	}
	bearer := func(scheme, tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", scheme+" "+tok) }
	}
	tests := []struct {
		name      string
		req       *http.Request
		code      int
		challenge string // exact WWW-Authenticate
	}{
		{"valid", get(bearer("Bearer", good)), 200, ""},
		{"scheme lower case", get(bearer("bearer", good)), 200, ""},
		{"scheme upper case", get(bearer("BEARER", good)), 200, ""},
		{"issuer's required scope present", get(bearer("Bearer", scoped)), 200, ""},
		{"no token", get(func(*http.Request) {}), 401, "Bearer " + rm},
		{"basic auth", get(func(r *http.Request) { r.SetBasicAuth("acme", good) }), 401, "Bearer " + rm},
		{"token in ?access_token=", get(func(r *http.Request) { r.URL.RawQuery = "access_token=" + url.QueryEscape(good) }), 401, "Bearer " + rm},
		{"token in ?token=", get(func(r *http.Request) { r.URL.RawQuery = "token=" + url.QueryEscape(good) }), 401, "Bearer " + rm},
		{"token in a cookie", get(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "access_token", Value: good}) }), 401, "Bearer " + rm},
		{"expired token", get(bearer("Bearer", expired)), 401, `Bearer error="invalid_token", error_description="invalid token: token expired", ` + rm},
		{"garbage token", get(bearer("Bearer", "abc")), 401, `Bearer error="invalid_token", error_description="invalid token: malformed token: a JWS has three dot-separated parts", ` + rm},
		{"issuer's required scope missing", get(bearer("Bearer", unscoped)), 403, `Bearer error="insufficient_scope", scope="graph:admin", ` + rm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.req)
			require.Equal(t, tt.code, r.code, r.body)
			require.Equal(t, tt.challenge, r.challenge)
			if tt.code == 200 {
				require.Equal(t, "acme", r.body)
				return
			}
			for _, tok := range []string{good, expired, unscoped} {
				require.NotContains(t, r.body, strings.Split(tok, ".")[1])
			}
		})
	}

	// A form body is no place for a token either.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader("access_token="+url.QueryEscape(good)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, 401, do(t, req).code)
}

func TestRequireBearerScopesOption(t *testing.T) {
	f := newHTTPFixture(t)
	srv := f.serve(t, &BearerOptions{Scopes: []string{"graph:write"}, Realm: "tenantgraph"})
	req := func(scope string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer "+f.keys.rsa.Mint(with(claimsAt(time.Now()), "scope", scope)))
		return r
	}
	r := do(t, req("graph:read"))
	require.Equal(t, 403, r.code)
	require.Equal(t, `Bearer realm="tenantgraph", error="insufficient_scope", scope="graph:write"`, r.challenge)
	r = do(t, req("graph:read graph:write"))
	require.Equal(t, 200, r.code)
	require.Empty(t, r.challenge)
}

func TestSDKRequireBearerTokenAnswers401(t *testing.T) {
	// Plain auth.RequireBearerToken with our verifier: every refusal is a
	// 401 (never a 500 with internal text).
	f := newHTTPFixture(t)
	h := auth.RequireBearerToken(f.v.TokenVerifier(), nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tok := range []string{"x.y.z", "a.b.c.d.e", f.keys.rsa.Mint(with(claimsAt(time.Now()), "aud", "other")), strings.Repeat("a", 20000)} {
		r, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer "+tok)
		require.Equal(t, 401, do(t, r).code)
	}
	// Over the SDK's own middleware too, a token in the query string is
	// not looked at.
	good := f.keys.ed.Mint(claimsAt(time.Now()))
	for _, q := range []string{"access_token", "token"} {
		r, err := http.NewRequest(http.MethodGet, srv.URL+"?"+q+"="+url.QueryEscape(good), nil)
		require.NoError(t, err)
		require.Equal(t, 401, do(t, r).code)
	}
}

func TestMetadata(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp":   "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com":       "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":      "https://mcp.example.com/.well-known/oauth-protected-resource",
		"http://127.0.0.1:8080/a/b?x=1": "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b?x=1",
	} {
		got, err := MetadataURL(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"/mcp", "mcp.example.com", "https://x.example/#frag", "::"} {
		_, err := MetadataURL(bad)
		require.Error(t, err, bad)
	}
	p, err := MetadataPath("https://mcp.example.com/mcp")
	require.NoError(t, err)
	require.Equal(t, "/.well-known/oauth-protected-resource/mcp", p)

	f := newHTTPFixture(t)
	md := f.v.ProtectedResourceMetadata(testAud, "graph:read", "graph:write")
	mux := http.NewServeMux()
	mux.Handle(p, auth.ProtectedResourceMetadataHandler(md))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + p)
	require.NoError(t, err)
	defer resp.Body.Close()
	var got oauthex.ProtectedResourceMetadata
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, testAud, got.Resource)
	require.Equal(t, []string{testIss, scopedIss}, got.AuthorizationServers)
	require.Equal(t, []string{"header"}, got.BearerMethodsSupported)
	require.Equal(t, []string{"graph:read", "graph:write"}, got.ScopesSupported)
}

// bearerTransport adds a bearer token to every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestMCPEndToEnd(t *testing.T) {
	f := newHTTPFixture(t)
	server := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	server.AddTool(&mcp.Tool{Name: "whoami", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, ok := PrincipalFromTokenInfo(req.Extra.TokenInfo)
			if !ok {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no principal"}}}, nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: p.Tenant + "|" + req.Extra.TokenInfo.UserID}}}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(RequireBearer(f.v, &BearerOptions{ResourceMetadataURL: f.md})(handler))
	defer srv.Close()

	connect := func(token string) (*mcp.ClientSession, error) {
		client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "v0"}, nil)
		return client.Connect(context.Background(), &mcp.StreamableClientTransport{
			Endpoint: srv.URL, HTTPClient: &http.Client{Transport: bearerTransport{token}}, MaxRetries: -1,
		}, nil)
	}
	cs, err := connect(f.keys.ed.Mint(with(claimsAt(time.Now()), "sub", "globex")))
	require.NoError(t, err)
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.Equal(t, "globex|"+testIss+" globex", res.Content[0].(*mcp.TextContent).Text)

	_, err = connect(authnUnsigned())
	require.Error(t, err)
}

func authnUnsigned() string {
	return "eyJhbGciOiJub25lIn0." + strings.TrimRight(encodeJSON(map[string]any{"iss": testIss, "sub": "acme", "aud": testAud, "exp": time.Now().Add(time.Hour).Unix()}), "=") + "."
}

func encodeJSON(v any) string {
	b, _ := json.Marshal(v)
	return b64.EncodeToString(b)
}
