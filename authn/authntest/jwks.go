package authntest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Paths served by JWKSServer.
const (
	JWKSPath           = "/jwks.json"
	OIDCDiscoveryPath  = "/.well-known/openid-configuration"
	OAuthDiscoveryPath = "/.well-known/oauth-authorization-server"
)

// Fault makes a JWKSServer misbehave. The zero Fault is a healthy server.
type Fault struct {
	// Status, when non-zero, answers every JWKS request with this status
	// code and a short text body.
	Status int
	// Delay holds each answer this long (abandoned early when the client
	// gives up or the server closes).
	Delay time.Duration
	// Oversize, when non-zero, answers a JSON body of this many bytes.
	Oversize int
	// Garbage answers bytes that are not JSON.
	Garbage bool
}

// JWKSServer serves a JSON Web Key Set, and OIDC / RFC 8414 discovery
// documents pointing at it, over httptest (plain HTTP on 127.0.0.1). Its keys
// can be rotated and its answers broken while a test runs; it counts the
// fetches. The zero value is not usable: call NewJWKSServer.
type JWKSServer struct {
	*httptest.Server

	mu           sync.Mutex
	keys         []json.RawMessage
	body         []byte
	fault        Fault
	cacheControl string
	issuer       string
	jwksURI      string
	hold         chan struct{}

	fetches   atomic.Int64
	discovery atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

// NewJWKSServer starts a JWKS server publishing keys. It is closed when the
// test ends.
func NewJWKSServer(tb testing.TB, keys ...*Key) *JWKSServer {
	tb.Helper()
	s := &JWKSServer{done: make(chan struct{})}
	s.SetKeys(keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, s.serveJWKS)
	mux.HandleFunc("GET "+OIDCDiscoveryPath, s.serveDiscovery)
	mux.HandleFunc("GET "+OAuthDiscoveryPath, s.serveDiscovery)
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, releasing any held or delayed answers first.
func (s *JWKSServer) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.Server.Close()
	})
}

// JWKSURL is the URL of the key set.
func (s *JWKSServer) JWKSURL() string { return s.URL + JWKSPath }

// Fetches is the number of key-set requests received so far (faulty answers
// included; discovery requests not).
func (s *JWKSServer) Fetches() int { return int(s.fetches.Load()) }

// DiscoveryFetches is the number of discovery-document requests received.
func (s *JWKSServer) DiscoveryFetches() int { return int(s.discovery.Load()) }

// SetKeys replaces the published key set (rotation). It also clears any
// body set with SetBody.
func (s *JWKSServer) SetKeys(keys ...*Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = s.keys[:0]
	for _, k := range keys {
		s.keys = append(s.keys, k.JWKJSON())
	}
	s.body = nil
}

// AddRawKey appends a JWK given as JSON text (for invalid or unsupported
// keys) to the published set.
func (s *JWKSServer) AddRawKey(jwk string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, json.RawMessage(jwk))
}

// SetBody makes the server answer the key-set URL with body verbatim
// (status 200, application/json), until SetKeys is called.
func (s *JWKSServer) SetBody(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

// SetFault makes the server misbehave until SetFault(Fault{}).
func (s *JWKSServer) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetCacheControl sets the Cache-Control header of key-set answers ("" for
// none).
func (s *JWKSServer) SetCacheControl(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = v
}

// SetDiscovery overrides the "issuer" and "jwks_uri" members of the
// discovery documents (by default the server URL and JWKSURL()).
func (s *JWKSServer) SetDiscovery(issuer, jwksURI string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer, s.jwksURI = issuer, jwksURI
}

// Hold makes key-set requests wait, after being counted, until release is
// called (or the server closes). It lets a test hold a fetch in flight
// without timing assumptions.
func (s *JWKSServer) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *JWKSServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	f, hold, cc := s.fault, s.hold, s.cacheControl
	body := s.body
	if body == nil {
		var b strings.Builder
		b.WriteString(`{"keys":[`)
		for i, k := range s.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(k)
		}
		b.WriteString(`]}`)
		body = []byte(b.String())
	}
	s.mu.Unlock()

	if hold != nil {
		select {
		case <-hold:
		case <-s.done:
			return
		case <-r.Context().Done():
			return
		}
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.done:
			return
		case <-r.Context().Done():
			return
		}
	}
	if f.Status != 0 {
		http.Error(w, "injected fault", f.Status)
		return
	}
	switch {
	case f.Garbage:
		body = []byte("<html>this is not a key set</html>")
	case f.Oversize > 0:
		b := make([]byte, f.Oversize)
		copy(b, `{"keys":[],"pad":"`)
		for i := 18; i < len(b)-2; i++ {
			b[i] = 'x'
		}
		copy(b[len(b)-2:], `"}`)
		body = b
	}
	w.Header().Set("Content-Type", "application/json")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	_, _ = w.Write(body)
}

func (s *JWKSServer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	s.discovery.Add(1)
	s.mu.Lock()
	iss, uri := s.issuer, s.jwksURI
	s.mu.Unlock()
	if iss == "" {
		iss = s.URL
	}
	if uri == "" {
		uri = s.JWKSURL()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              uri,
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
	})
}
