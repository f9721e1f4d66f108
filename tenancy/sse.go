package tenancy

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// GuardSSE returns an HTTP handler that binds every session of the SSE
// handler h (an *mcp.SSEHandler) to the identity that opened it, and refuses
// messages POSTed to the session with the token of another identity.
//
// Why it is needed: on the SSE transport a session is a long GET request, and
// client messages arrive as separate POSTs to "?sessionid=...". The go-sdk
// queues the POSTed message to the session without any per-request
// information, so the middleware sees only the token of the GET
// (auth.TokenInfoFromContext of the session's context) and cannot see the
// POST's; and the SDK's SSE handler, unlike its Streamable HTTP handler, does
// not compare users. Without this guard, anyone with a valid token who learns
// a session id could act in another tenant's session.
//
// Place it inside auth.RequireBearerToken, which verifies each request's
// token and puts it into the request context:
//
//	h := auth.RequireBearerToken(verify, nil)(tenancy.GuardSSE(mcp.NewSSEHandler(getServer, nil), nil))
//
// key turns a verified token into the identity a session is bound to; nil
// means [SessionKey]. A GET whose token yields no key is refused with 401; a
// POST to a session the guard did not see opening is refused with 404, and
// one whose key differs from the session's with 403. Other requests pass.
func GuardSSE(h http.Handler, key func(*auth.TokenInfo) (string, error)) http.Handler {
	if key == nil {
		key = SessionKey
	}
	return &sseGuard{next: h, key: key, sessions: make(map[string]string)}
}

// SessionKey is the default key of [GuardSSE]: the token's UserID, tenant,
// subject, issuer and sorted scopes, so that a session's messages must come
// with tokens of the same user and tenant and the same scopes as the token
// that opened it. It fails for a nil token and for a token with neither a
// UserID nor a tenant.
func SessionKey(ti *auth.TokenInfo) (string, error) {
	if ti == nil {
		return "", fmt.Errorf("%w: no verified bearer token", ErrNoIdentity)
	}
	tenant, _ := ti.Extra[ExtraTenant].(string)
	subject, _ := ti.Extra[ExtraSubject].(string)
	issuer, _ := ti.Extra[ExtraIssuer].(string)
	if ti.UserID == "" && tenant == "" {
		return "", fmt.Errorf("%w: the token has neither a user id nor a tenant", ErrNoTenant)
	}
	scopes := slices.Clone(ti.Scopes)
	slices.Sort(scopes)
	return strings.Join([]string{ti.UserID, tenant, subject, issuer, strings.Join(scopes, " ")}, "\x00"), nil
}

type sseGuard struct {
	next http.Handler
	key  func(*auth.TokenInfo) (string, error)

	mu       sync.Mutex
	sessions map[string]string // session id -> key
}

func (g *sseGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		g.next.ServeHTTP(w, r)
		return
	}
	k, err := g.key(auth.TokenInfoFromContext(r.Context()))
	if err != nil {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPost {
		id := r.URL.Query().Get("sessionid")
		g.mu.Lock()
		bound, ok := g.sessions[id]
		g.mu.Unlock()
		if !ok {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		if subtle.ConstantTimeCompare([]byte(bound), []byte(k)) != 1 {
			http.Error(w, "session belongs to another identity", http.StatusForbidden)
			return
		}
		g.next.ServeHTTP(w, r)
		return
	}
	sw := &sessionSniffer{ResponseWriter: w, g: g, key: k}
	defer sw.unbind()
	g.next.ServeHTTP(sw, r)
}

// sessionSniffer reads the session id from the first event of an SSE
// stream (the "endpoint" event) and binds it before the client can see it.
type sessionSniffer struct {
	http.ResponseWriter
	g       *sseGuard
	key     string
	sniffed bool
	id      string
}

func (s *sessionSniffer) Write(p []byte) (int, error) {
	if !s.sniffed {
		s.sniffed = true
		if id, err := endpointSession(p); err == nil {
			s.g.mu.Lock()
			s.g.sessions[id] = s.key
			s.g.mu.Unlock()
			s.id = id
		}
	}
	return s.ResponseWriter.Write(p)
}

func (s *sessionSniffer) unbind() {
	if s.id == "" {
		return
	}
	s.g.mu.Lock()
	delete(s.g.sessions, s.id)
	s.g.mu.Unlock()
}

// Flush flushes the underlying writer, as the SSE handler needs.
func (s *sessionSniffer) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (s *sessionSniffer) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// endpointSession returns the session id of an SSE "endpoint" event.
func endpointSession(p []byte) (string, error) {
	var event, data string
	for line := range bytes.Lines(p) {
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			event = strings.TrimSpace(string(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data = strings.TrimSpace(string(line[len("data:"):]))
		}
	}
	if event != "endpoint" || data == "" {
		return "", errors.New("not an endpoint event")
	}
	u, err := url.Parse(data)
	if err != nil {
		return "", err
	}
	id := u.Query().Get("sessionid")
	if id == "" {
		return "", errors.New("endpoint without a session id")
	}
	return id, nil
}
