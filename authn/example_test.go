package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/tenantgraph/tenantgraph/authn"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

// exampleKey is a signing key standing in for an identity provider's.
func exampleKey() *authntest.Key {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return &authntest.Key{KeyID: "k1", Alg: "EdDSA", Private: priv}
}

// The main use: an MCP server over Streamable HTTP that accepts only tokens
// of a trusted issuer, issued for it, naming a valid tenant.
func Example() {
	const resource = "https://mcp.example.com/mcp"
	v, err := authn.New(authn.Config{
		Issuers: []authn.Issuer{{
			Issuer:       "https://login.example.com",
			Audiences:    []string{resource},
			Discovery:    true, // keys from https://login.example.com/.well-known/openid-configuration
			RequiredType: "at+jwt",
		}},
		Cache: &authn.CacheConfig{},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "graphs", Version: "v1"}, nil)
	// ... add tools; they find the caller in req.Extra.TokenInfo
	// (authn.PrincipalFromTokenInfo) ...

	metadataURL, _ := authn.MetadataURL(resource)
	metadataPath, _ := authn.MetadataPath(resource)
	mux := http.NewServeMux()
	mux.Handle(metadataPath, auth.ProtectedResourceMetadataHandler(v.ProtectedResourceMetadata(resource, "graph:read")))
	mux.Handle("/mcp", authn.RequireBearer(v, &authn.BearerOptions{ResourceMetadataURL: metadataURL})(
		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))

	// Refuse traffic until the issuer's keys are there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		log.Print(err)
	}
	_ = &http.Server{Addr: ":8443", Handler: mux, ReadHeaderTimeout: 10 * time.Second} // ListenAndServeTLS(...)
}

func ExampleVerifier_Verify() {
	key := exampleKey()
	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{
		Issuer:    "https://login.example.com",
		Audiences: []string{"https://mcp.example.com/mcp"},
		Keys:      []authn.PublicKey{{KeyID: key.KeyID, Key: key.Public()}},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	claims := authntest.Claims("https://login.example.com", "https://mcp.example.com/mcp", "acme", time.Now(), time.Hour)
	claims["scope"] = "graph:read graph:write"
	p, err := v.Verify(context.Background(), key.Mint(claims))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Tenant, p.Scopes)

	claims["aud"] = "https://another-server.example.com"
	_, err = v.Verify(context.Background(), key.Mint(claims))
	fmt.Println(errors.Is(err, authn.ErrWrongAudience), errors.Is(err, auth.ErrInvalidToken))
	fmt.Println(err)
	// Output:
	// acme [graph:read graph:write]
	// true true
	// invalid token: token not issued for this resource
}

// The TokenInfo handed to the MCP SDK (and from there to tenancy).
func ExampleVerifier_TokenVerifier() {
	key := exampleKey()
	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{
		Issuer:      "https://login.example.com",
		Audiences:   []string{"https://mcp.example.com/mcp"},
		Keys:        []authn.PublicKey{{Key: key.Public()}},
		TenantClaim: "org.id",
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	claims := authntest.Claims("https://login.example.com", "https://mcp.example.com/mcp", "user-42", time.Now(), time.Hour)
	claims["org"] = map[string]any{"id": "acme"}

	ti, err := v.TokenVerifier()(context.Background(), key.Mint(claims), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ti.UserID)
	fmt.Println(ti.Extra[authn.ExtraTenant], ti.Extra[authn.ExtraSubject], ti.Extra[authn.ExtraIssuer])
	p, _ := authn.PrincipalFromTokenInfo(ti)
	fmt.Println(p.Tenant)
	// Output:
	// https://login.example.com user-42
	// acme user-42 https://login.example.com
	// acme
}

func ExampleRequireBearer() {
	key := exampleKey()
	v, err := authn.New(authn.Config{Issuers: []authn.Issuer{{
		Issuer:    "https://login.example.com",
		Audiences: []string{"https://mcp.example.com/mcp"},
		Keys:      []authn.PublicKey{{Key: key.Public()}},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	h := authn.RequireBearer(v, &authn.BearerOptions{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		Scopes:              []string{"graph:read"},
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authn.PrincipalFromContext(r.Context())
		fmt.Fprintln(w, "hello", p.Tenant)
	}))

	try := func(token string) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	claims := authntest.Claims("https://login.example.com", "https://mcp.example.com/mcp", "acme", time.Now(), time.Hour)
	try("")
	try("not-a-token")
	try(key.Mint(claims))
	claims["scope"] = "graph:read"
	try(key.Mint(claims))
	// Output:
	// 401 Bearer scope="graph:read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// 401 Bearer error="invalid_token", error_description="invalid token: malformed token: a JWS has three dot-separated parts", scope="graph:read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// 403 Bearer error="insufficient_scope", scope="graph:read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// 200
}

func ExampleMetadataURL() {
	u, _ := authn.MetadataURL("https://mcp.example.com/mcp")
	fmt.Println(u)
	// Output: https://mcp.example.com/.well-known/oauth-protected-resource/mcp
}

// Replicas that share a Redis-protocol server (such as the FalkorDB server
// itself) share revocations.
func ExampleNewRedisRevocation() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	revocations, err := authn.NewRedisRevocation(rdb, authn.RedisRevocationOptions{})
	if err != nil {
		log.Fatal(err)
	}
	v, err := authn.New(authn.Config{
		Revocation: revocations,
		Issuers: []authn.Issuer{{
			Issuer:     "https://login.example.com",
			Audiences:  []string{"https://mcp.example.com/mcp"},
			JWKSURL:    "https://login.example.com/jwks.json",
			RequireJTI: true,
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	// Later, from an admin endpoint:
	// err = v.Revoke(ctx, principal.JTI, principal.Expiry)
}
