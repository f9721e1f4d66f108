package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// verifyToken stands in for a real verifier (package authn): it knows one
// token, of tenant "acme" with the read scope.
func verifyToken(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	if token != "token-of-acme" {
		return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
	}
	return &auth.TokenInfo{
		Scopes:     []string{tenancy.ScopeRead},
		Expiration: time.Now().Add(time.Hour),
		UserID:     "https://issuer.example alice",
		Extra:      map[string]any{tenancy.ExtraTenant: "acme", tenancy.ExtraSubject: "alice"},
	}, nil
}

// withToken adds the bearer token to every request of the client.
type withToken struct{ token string }

func (w withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+w.token)
	return http.DefaultTransport.RoundTrip(r)
}

type describeIn struct {
	GraphName string `json:"graphName"`
}

// A server with one tool of its own, made multi-tenant: the tool gets the
// physical key, the client sees only the logical name.
func ExampleNew() {
	server := mcp.NewServer(&mcp.Implementation{Name: "graphs", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "describe", Description: "describe a graph"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in describeIn) (*mcp.CallToolResult, any, error) {
			id, _ := tenancy.FromContext(ctx)
			fmt.Printf("tool: tenant %s, key %s\n", id.Tenant, in.GraphName)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "graph " + in.GraphName + " is empty"}}}, nil, nil
		})

	mw, err := tenancy.New(tenancy.Config{
		Tools: map[string]tenancy.ToolPolicy{"describe": {Scopes: []string{tenancy.ScopeRead}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	server.AddReceivingMiddleware(mw)

	handler := auth.RequireBearerToken(verifyToken, nil)(
		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	ts := httptest.NewServer(handler)
	defer ts.Close()

	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   ts.URL,
		HTTPClient: &http.Client{Transport: withToken{"token-of-acme"}},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "describe", Arguments: map[string]any{"graphName": "users"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("client:", res.Content[0].(*mcp.TextContent).Text)

	res, _ = session.CallTool(ctx, &mcp.CallToolParams{Name: "describe", Arguments: map[string]any{"graphName": "bob_users "}})
	fmt.Println("client:", res.IsError, res.Content[0].(*mcp.TextContent).Text)
	// Output:
	// tool: tenant acme, key acme_users
	// client: graph users is empty
	// client: true argument "graphName": invalid graph name "bob_users ": space at byte 9 is not allowed; graph names are 1-128 ASCII letters, digits, '_', '-' or '.', not starting with '.'
}

// Tool handlers read the caller's verified identity from the context.
func ExampleFromContext() {
	handler := func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, ok := tenancy.FromContext(ctx)
		if !ok {
			return nil, errors.New("no tenant: is the tenancy middleware installed?")
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + id.Tenant}}}, nil
	}
	// In a test of the handler, give it an identity yourself.
	ctx := tenancy.NewContext(context.Background(), &tenancy.Identity{Tenant: "acme", Scopes: []string{tenancy.ScopeRead}})
	res, _ := handler(ctx, &mcp.CallToolRequest{})
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)
	// Output: hello acme
}

// Limits per plan: the plan comes from a claim the verifier put into the
// token's Extra map.
func ExampleConfig_limits() {
	plans := map[string]tenancy.Limit{
		"free": {Rate: 1, Burst: 5, Concurrent: 1},
		"team": {Rate: 20, Burst: 50, Concurrent: 8},
	}
	cfg := tenancy.Config{
		Limits: func(id *tenancy.Identity) tenancy.Limit {
			if id.Token != nil {
				if plan, ok := id.Token.Extra["plan"].(string); ok {
					return plans[plan]
				}
			}
			return plans["free"]
		},
		// Limiter: tenancy.NewRedisLimiter(redisClient, nil) to share limits between replicas.
	}
	_, err := tenancy.New(cfg)
	fmt.Println(err)
	// Output: <nil>
}

// The SSE transport needs the guard: without it, a POST with another user's
// token on an open session is accepted and runs as the session's owner.
func ExampleGuardSSE() {
	server := mcp.NewServer(&mcp.Implementation{Name: "graphs", Version: "1"}, nil)
	mw, err := tenancy.New(tenancy.Config{})
	if err != nil {
		log.Fatal(err)
	}
	server.AddReceivingMiddleware(mw)

	sse := mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return server }, nil)
	handler := auth.RequireBearerToken(verifyToken, nil)(tenancy.GuardSSE(sse, nil))
	ts := httptest.NewServer(handler)
	defer ts.Close()

	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	session, err := client.Connect(context.Background(), &mcp.SSEClientTransport{
		Endpoint:   ts.URL,
		HTTPClient: &http.Client{Transport: withToken{"token-of-acme"}},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	fmt.Println(session.Ping(context.Background(), nil))
	// Output: <nil>
}

// A list filter keeps the caller's graphs, by logical name.
func ExampleStructuredGraphList() {
	filter := tenancy.StructuredGraphList("graphs")
	keep := func(key string) (string, bool) { // what the middleware passes for tenant "acme"
		if len(key) > 5 && key[:5] == "acme_" {
			return key[5:], true
		}
		return "", false
	}
	res, _ := filter(keep, &mcp.CallToolResult{StructuredContent: map[string]any{"graphs": []string{"acme_users", "bob_users", "acme_orders"}}})
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)
	// Output: {"graphs":["users","orders"]}
}
