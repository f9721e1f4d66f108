// Command embed is the smallest useful integration of tenantgraph into an
// existing go-sdk MCP server. The server (notes.go) has a tool of its own,
// "notes"; package authn verifies bearer tokens and package tenancy gives
// every call the caller's tenant, so that each tenant sees only its notes.
//
//	BEARER_ISSUER=https://issuer.example BEARER_AUDIENCE=http://127.0.0.1:3003/mcp \
//	BEARER_JWKS_URI=https://issuer.example/jwks.json go run ./examples/embed
//
// The tenant is the token's "sub" claim: a token without one is refused.
// LISTEN_ADDR (default 127.0.0.1:3003) sets the address of the endpoint /mcp.
package main

import (
	"cmp"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

func main() {
	handler, _, err := newHandler(os.Getenv) // the verifier lives as long as the process
	if err != nil {
		log.Fatal("embed: ", err)
	}
	ln, err := net.Listen("tcp", cmp.Or(os.Getenv("LISTEN_ADDR"), "127.0.0.1:3003"))
	if err != nil {
		log.Fatal("embed: ", err)
	}
	log.Printf("embed: MCP endpoint http://%s/mcp", ln.Addr())
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newHandler wraps the existing server in tenancy and authn and returns its
// HTTP handler; stop ends the verifier's background key refreshes.
func newHandler(getenv func(string) string) (h http.Handler, stop func() error, err error) {
	server := newNotesServer() // your server, with its tools, unchanged

	// tenancy: the caller's tenant in every call; tools not listed are refused.
	mw, err := tenancy.New(tenancy.Config{Tools: map[string]tenancy.ToolPolicy{
		"notes": {GraphArguments: []string{}}, // any tenant may call it; it takes no graph names
	}})
	if err != nil {
		return nil, nil, err
	}
	server.AddReceivingMiddleware(mw)

	// authn: tokens of your issuer only, issued for this server.
	iss, aud, jwks := getenv("BEARER_ISSUER"), getenv("BEARER_AUDIENCE"), getenv("BEARER_JWKS_URI")
	if iss == "" || aud == "" || jwks == "" {
		return nil, nil, errors.New("set BEARER_ISSUER, BEARER_AUDIENCE and BEARER_JWKS_URI")
	}
	verifier, err := authn.New(authn.Config{Issuers: []authn.Issuer{
		{Issuer: iss, Audiences: []string{aud}, JWKSURL: jwks}, // tenant: the "sub" claim
	}})
	if err != nil {
		return nil, nil, err
	}

	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", authn.RequireBearer(verifier, nil)(mcpHandler)) // 401/403 with full challenges
	return mux, verifier.Close, nil
}
