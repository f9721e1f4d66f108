package falkor_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// A password-protected FalkorDB on a unix socket, reached with the URL forms
// unix://:password@/path and unix:///path?password=...; a wrong password is
// refused without showing it or the path.
func TestOpenUnixSocketWithPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	t.Parallel()
	startDB(t) // the shared server: provisions the binaries if need be
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := lite.Start(ctx, lite.Options{UnixSocket: true, Password: "pw-unix-test", NoProvision: true})
	if err != nil {
		// Without FALKORDB_URL the shared test server came from falkor/lite,
		// so its binaries must be there.
		if os.Getenv("FALKORDB_REQUIRED") == "1" && os.Getenv("FALKORDB_URL") == "" {
			t.Fatalf("starting a local FalkorDB: %v", err)
		}
		t.Skipf("no local FalkorDB binaries: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	require.Equal(t, "unix", srv.Network())

	query := url.URL{Scheme: "unix", Path: srv.Addr(), RawQuery: url.Values{"password": {"pw-unix-test"}}.Encode()}
	for _, u := range []string{srv.URL(), query.String()} {
		c, err := falkor.Open(ctx, u, falkor.Options{})
		require.NoError(t, err)
		res, err := c.Query(ctx, "unix", "CREATE (n:N {v: $v}) RETURN n.v", map[string]any{"v": "x"})
		require.NoError(t, err)
		require.Equal(t, [][]any{{"x"}}, res.Rows)
		require.NoError(t, c.Close())
	}

	wrong := url.URL{Scheme: "unix", Path: srv.Addr(), User: url.UserPassword("", "wrong-s3cret")}
	_, err = falkor.Open(ctx, wrong.String(), falkor.Options{})
	var qe *falkor.QueryError
	require.ErrorAs(t, err, &qe)
	require.NotContains(t, err.Error(), "wrong-s3cret")
	require.NotContains(t, err.Error(), srv.Addr())
}
