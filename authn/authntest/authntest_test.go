package authntest_test

import (
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/authn/authntest"
)

func TestMintVerifiesWithGolangJWT(t *testing.T) {
	keys := []*authntest.Key{
		authntest.CachedRSA(t, 2048, 0),
		authntest.NewEC(t, elliptic.P256()),
		authntest.NewEC(t, elliptic.P384()),
		authntest.NewEd25519(t),
	}
	ps := *keys[0]
	ps.Alg = "PS256"
	keys = append(keys, &ps)
	for _, k := range keys {
		tok := k.Mint(authntest.Claims("iss", "aud", "sub", time.Now(), time.Minute))
		parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
			require.Equal(t, k.KeyID, tk.Header["kid"])
			return k.Public(), nil
		}, jwt.WithValidMethods([]string{k.Alg}))
		require.NoError(t, err, k.Alg)
		require.Equal(t, "at+jwt", parsed.Header["typ"])
	}
}

func TestBrokenTokens(t *testing.T) {
	k := authntest.NewEd25519(t)
	claims := authntest.Claims("iss", "aud", "sub", time.Now(), time.Minute)

	none := authntest.Unsigned(claims)
	require.True(t, strings.HasSuffix(none, "."))
	require.Equal(t, `{"alg":"none","typ":"JWT"}`, decode(t, strings.Split(none, ".")[0]))

	rsaKey := authntest.CachedRSA(t, 2048, 0)
	hs := authntest.HS256(rsaKey.PEM(), map[string]any{"kid": "x"}, claims)
	_, err := jwt.Parse(hs, func(*jwt.Token) (any, error) { return rsaKey.PEM(), nil }, jwt.WithValidMethods([]string{"HS256"}))
	require.NoError(t, err, "a real HMAC under the PEM bytes")

	good := k.Mint(claims)
	bad := authntest.Tamper(good, map[string]any{"sub": "other"})
	require.Equal(t, strings.Split(good, ".")[2], strings.Split(bad, ".")[2])
	require.Contains(t, decode(t, strings.Split(bad, ".")[1]), `"other"`)

	require.Len(t, strings.Split(authntest.JWE(), "."), 5)
	require.NotEqual(t, authntest.RandomID(), authntest.RandomID())

	tp, err := authntest.Thumbprint(k.Public())
	require.NoError(t, err)
	require.Equal(t, tp[:16], k.KeyID)
	require.Contains(t, string(k.PEM()), "BEGIN PUBLIC KEY")
}

func decode(t *testing.T, seg string) string {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	return string(b)
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func TestJWKSServer(t *testing.T) {
	a, b := authntest.NewEd25519(t), authntest.NewEC(t, elliptic.P256())
	srv := authntest.NewJWKSServer(t, a)

	kids := func() []string {
		code, _, body := get(t, srv.JWKSURL())
		require.Equal(t, 200, code)
		var set struct{ Keys []map[string]any }
		require.NoError(t, json.Unmarshal(body, &set))
		var out []string
		for _, k := range set.Keys {
			out = append(out, fmt.Sprint(k["kid"]))
		}
		return out
	}
	require.Equal(t, []string{a.KeyID}, kids())
	srv.SetKeys(a, b)
	require.Equal(t, []string{a.KeyID, b.KeyID}, kids())
	srv.AddRawKey(`{"kty":"oct","kid":"sym"}`)
	require.Equal(t, []string{a.KeyID, b.KeyID, "sym"}, kids())
	require.Equal(t, 3, srv.Fetches())

	srv.SetCacheControl("max-age=60")
	_, h, _ := get(t, srv.JWKSURL())
	require.Equal(t, "max-age=60", h.Get("Cache-Control"))

	srv.SetFault(authntest.Fault{Status: 503})
	code, _, _ := get(t, srv.JWKSURL())
	require.Equal(t, 503, code)
	srv.SetFault(authntest.Fault{Oversize: 2 << 20})
	_, _, body := get(t, srv.JWKSURL())
	require.Len(t, body, 2<<20)
	require.True(t, json.Valid(body))
	srv.SetFault(authntest.Fault{Garbage: true})
	_, _, body = get(t, srv.JWKSURL())
	require.False(t, json.Valid(body))
	srv.SetFault(authntest.Fault{})
	srv.SetBody([]byte(`{"keys":[]}`))
	_, _, body = get(t, srv.JWKSURL())
	require.Equal(t, `{"keys":[]}`, string(body))

	// Discovery documents.
	for _, p := range []string{authntest.OIDCDiscoveryPath, authntest.OAuthDiscoveryPath} {
		_, _, body := get(t, srv.URL+p)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Equal(t, srv.URL, doc["issuer"])
		require.Equal(t, srv.JWKSURL(), doc["jwks_uri"])
	}
	require.Equal(t, 2, srv.DiscoveryFetches())

	// Hold: answers wait until released.
	release := srv.Hold()
	done := make(chan int, 1)
	go func() { code, _, _ := get(t, srv.JWKSURL()); done <- code }()
	require.Eventually(t, func() bool { return srv.Fetches() == 9 }, 5*time.Second, time.Millisecond)
	select {
	case <-done:
		t.Fatal("answered while held")
	default:
	}
	release()
	require.Equal(t, 200, <-done)

	// Delayed answers are abandoned when the server closes.
	srv.SetFault(authntest.Fault{Delay: time.Hour})
	go func() { _, _ = http.Get(srv.JWKSURL()) }()
	require.Eventually(t, func() bool { return srv.Fetches() == 10 }, 5*time.Second, time.Millisecond)
	srv.Close()
}
