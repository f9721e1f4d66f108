package tenancy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// SSEEvent is one event of an SSE stream. It and OpenSSE and NextSSEEvent
// are exported for the external e2e tests, which read SSE streams too.
type SSEEvent struct{ Name, Data string }

// OpenSSE opens an SSE session at url with client by a raw GET and returns
// the session's message endpoint (from the "endpoint" event) and the
// stream's further events. The stream is closed when the test ends.
func OpenSSE(t testing.TB, client *http.Client, url string) (string, <-chan SSEEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan SSEEvent, 16)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); _ = resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev SSEEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			case line == "":
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
				ev = SSEEvent{}
			}
		}
	}()
	first := NextSSEEvent(t, events)
	require.Equal(t, "endpoint", first.Name)
	require.Contains(t, first.Data, "sessionid=")
	return first.Data, events
}

// NextSSEEvent returns the next event of the stream, failing the test when
// the stream ends or none comes within 10 s.
func NextSSEEvent(t testing.TB, events <-chan SSEEvent) SSEEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		require.True(t, ok, "the SSE stream closed")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the SSE stream")
		return SSEEvent{}
	}
}

// sseSession opens an SSE session with token at base.
func sseSession(t *testing.T, base, token string) (string, <-chan SSEEvent) {
	t.Helper()
	return OpenSSE(t, httpClient(token), base)
}

// post sends one JSON-RPC message to a session endpoint with token.
func post(t *testing.T, base, endpoint, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+endpoint, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// nextMessage returns the data of the next "message" event.
func nextMessage(t *testing.T, events <-chan SSEEvent) string {
	t.Helper()
	ev := NextSSEEvent(t, events)
	require.Equal(t, "message", ev.Name)
	return ev.Data
}

const (
	msgInitialize  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	msgInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`
	msgWhoami      = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
)

func sseServer(t *testing.T, e *env, guard bool) *httptest.Server {
	var h http.Handler = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return e.srv }, nil)
	if guard {
		h = GuardSSE(h, nil)
	}
	ts := httptest.NewServer(auth.RequireBearerToken(verify, nil)(h))
	t.Cleanup(ts.Close)
	return ts
}

// TestSSEWithoutGuardIsHijackable records what the SDK does on its own: a
// POST carrying bob's token to alice's session is accepted, and the
// middleware (which sees only the GET's token) runs it as alice.
func TestSSEWithoutGuardIsHijackable(t *testing.T) {
	e := newEnv(t, Config{Identify: DefaultIdentify})
	var sawExtra []bool
	e.srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/call" {
				sawExtra = append(sawExtra, req.GetExtra() != nil)
			}
			return next(ctx, method, req)
		}
	})
	ts := sseServer(t, e, false)
	endpoint, events := sseSession(t, ts.URL, "acme-rw")
	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "acme-rw", msgInitialize))
	nextMessage(t, events)
	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "acme-rw", msgInitialized))

	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "bob-rw", msgWhoami), "the SDK accepts another user's POST")
	reply := nextMessage(t, events)
	require.Contains(t, reply, "acme/alice", "the call ran with the GET's identity")
	require.Equal(t, []bool{false}, sawExtra, "on SSE, req.Extra is nil: the POST's token is invisible to middleware")
}

func TestSSEGuard(t *testing.T) {
	e := newEnv(t, Config{Identify: DefaultIdentify})
	ts := sseServer(t, e, true)
	endpoint, events := sseSession(t, ts.URL, "acme-rw")

	require.Equal(t, http.StatusForbidden, post(t, ts.URL, endpoint, "bob-rw", msgInitialize), "another tenant")
	require.Equal(t, http.StatusForbidden, post(t, ts.URL, endpoint, "acme-rw2", msgInitialize), "another user of the same tenant")
	require.Equal(t, http.StatusForbidden, post(t, ts.URL, endpoint, "acme-ro", msgInitialize), "other scopes")
	require.Equal(t, http.StatusNotFound, post(t, ts.URL, "/?sessionid=nosuchsession", "acme-rw", msgInitialize))

	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "acme-rw", msgInitialize))
	nextMessage(t, events)
	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "acme-rw", msgInitialized))
	require.Equal(t, http.StatusForbidden, post(t, ts.URL, endpoint, "bob-rw", msgWhoami))
	require.Zero(t, e.rec.count(), "bob's call never reached a tool")

	require.Equal(t, http.StatusAccepted, post(t, ts.URL, endpoint, "acme-rw", msgWhoami))
	require.Contains(t, nextMessage(t, events), "acme/alice")
	require.Equal(t, 1, e.rec.count())
}

func TestSSEGuardWithSDKClient(t *testing.T) {
	e := newEnv(t, Config{Identify: DefaultIdentify})
	ts := sseServer(t, e, true)
	for _, tok := range []string{"acme-rw", "bob-rw"} {
		c := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &mcp.SSEClientTransport{Endpoint: ts.URL, HTTPClient: httpClient(tok)}, nil)
		require.NoError(t, err)
		res, err := callTool(t, cs, "raw", map[string]any{"graphName": "users", "text": "on $GRAPH"})
		require.NoError(t, err)
		require.Equal(t, "on users", text(res))
		require.Equal(t, strings.Split(tok, "-")[0]+"_users", e.rec.last().args["graphName"])
		require.NoError(t, cs.Close())
	}
}

func TestSessionKey(t *testing.T) {
	_, err := SessionKey(nil)
	require.ErrorIs(t, err, ErrNoIdentity)
	_, err = SessionKey(&auth.TokenInfo{})
	require.ErrorIs(t, err, ErrNoTenant)
	a, err := SessionKey(tokenInfo("acme", "alice", "write", "read"))
	require.NoError(t, err)
	b, err := SessionKey(tokenInfo("acme", "alice", "read", "write"))
	require.NoError(t, err)
	require.Equal(t, a, b, "scope order does not matter")
	c, err := SessionKey(tokenInfo("acme", "alice", "read"))
	require.NoError(t, err)
	require.NotEqual(t, a, c)
}
