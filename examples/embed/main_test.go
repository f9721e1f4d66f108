package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "http://127.0.0.1:3003/mcp"
)

// mainFlag, as the first argument of the test binary, runs main (see init).
const mainFlag = "-tenantgraph-embed-main"

func init() {
	if len(os.Args) > 1 && os.Args[1] == mainFlag {
		os.Args = os.Args[:1]
		main()
		os.Exit(0)
	}
}

// testIdP is an identity provider: a signing key and its JWKS over httptest.
type testIdP struct {
	key  *authntest.Key
	jwks *authntest.JWKSServer
}

func newTestIdP(t *testing.T) *testIdP {
	key := authntest.NewEd25519(t)
	return &testIdP{key: key, jwks: authntest.NewJWKSServer(t, key)}
}

func (p *testIdP) env(name string) string {
	return map[string]string{
		"BEARER_ISSUER":   testIssuer,
		"BEARER_AUDIENCE": testAudience,
		"BEARER_JWKS_URI": p.jwks.JWKSURL(),
	}[name]
}

// token mints a signed access token; edit changes its claims first.
func (p *testIdP) token(sub string, edit func(map[string]any)) string {
	claims := authntest.Claims(testIssuer, testAudience, sub, time.Now(), time.Hour)
	if edit != nil {
		edit(claims)
	}
	return p.key.Mint(claims)
}

type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, url, token string) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "0"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer(token)}, MaxRetries: -1}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// notes calls the notes tool and returns the notes it lists.
func notes(t *testing.T, cs *mcp.ClientSession, add string) []string {
	t.Helper()
	args := map[string]any{}
	if add != "" {
		args["add"] = add
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "notes", Arguments: args})
	require.NoError(t, err)
	require.False(t, res.IsError, "%v", res.Content)
	raw, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var out notesOut
	require.NoError(t, json.Unmarshal(raw, &out))
	return out.Notes
}

func TestTenantsSeeOnlyTheirNotes(t *testing.T) {
	idp := newTestIdP(t)
	h, stop, err := newHandler(idp.env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/mcp"

	acme, err := connect(t, url, idp.token("acme", nil))
	require.NoError(t, err)
	bravo, err := connect(t, url, idp.token("bravo", nil))
	require.NoError(t, err)

	require.Equal(t, []string{"acme 1"}, notes(t, acme, "acme 1"))
	require.Equal(t, []string{"bravo 1"}, notes(t, bravo, "bravo 1"))
	require.Equal(t, []string{"acme 1", "acme 2"}, notes(t, acme, "acme 2"))
	require.Equal(t, []string{"bravo 1"}, notes(t, bravo, ""), "bravo sees none of acme's notes")

	// The tenant is the token's subject, not the session: a new token of
	// acme sees acme's notes.
	again, err := connect(t, url, idp.token("acme", nil))
	require.NoError(t, err)
	require.Equal(t, []string{"acme 1", "acme 2"}, notes(t, again, ""))

	// Refused tokens: no tenant, a tenant the graph-name rules refuse, a
	// token for another audience, one signed by a stranger.
	stranger := authntest.NewEd25519(t)
	refused := map[string]string{
		"no tenant":      idp.token("", func(c map[string]any) { delete(c, "sub") }),
		"invalid tenant": idp.token("Acme Corp!", nil),
		"other audience": idp.token("acme", func(c map[string]any) { c["aud"] = "https://other.test" }),
		"foreign key":    stranger.Mint(authntest.Claims(testIssuer, testAudience, "acme", time.Now(), time.Hour)),
	}
	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(
				`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes","arguments":{}}}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

			_, err = connect(t, url, tok)
			require.Error(t, err)
		})
	}
	require.Equal(t, []string{"acme 1", "acme 2"}, notes(t, acme, ""), "nothing changed")
}

func TestConfigErrors(t *testing.T) {
	idp := newTestIdP(t)
	for _, missing := range []string{"BEARER_ISSUER", "BEARER_AUDIENCE", "BEARER_JWKS_URI"} {
		env := func(name string) string {
			if name == missing {
				return ""
			}
			return idp.env(name)
		}
		_, _, err := newHandler(env)
		require.ErrorContains(t, err, missing)
	}
}

// TestMainProgram runs the program itself (this test binary, as main) with its
// configuration in the environment.
func TestMainProgram(t *testing.T) {
	idp := newTestIdP(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, mainFlag)
	cmd.Env = append(os.Environ(), "LISTEN_ADDR=127.0.0.1:0",
		"BEARER_ISSUER="+testIssuer, "BEARER_AUDIENCE="+testAudience, "BEARER_JWKS_URI="+idp.jwks.JWKSURL())
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	endpoint := regexp.MustCompile(`MCP endpoint (http://127\.0\.0\.1:\d+/mcp)`)
	sc := bufio.NewScanner(stderr)
	var url string
	for url == "" && sc.Scan() {
		if m := endpoint.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	require.NotEmpty(t, url, "the program printed its endpoint")
	go func() {
		for sc.Scan() {
		}
	}()

	acme, err := connect(t, url, idp.token("acme", nil))
	require.NoError(t, err)
	require.Equal(t, []string{"hello"}, notes(t, acme, "hello"))
	_, err = connect(t, url, idp.token("", func(c map[string]any) { delete(c, "sub") }))
	require.Error(t, err, "a token without tenant is refused")
}
