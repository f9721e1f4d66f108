package falkor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

func TestMain(m *testing.M) { falkortest.Main(m) }

// startDB returns a FalkorDB for the test (FALKORDB_URL, or a local server
// started by falkor/lite) with a graph namespace of its own.
func startDB(tb testing.TB) *falkortest.DB {
	tb.Helper()
	return falkortest.Start(tb)
}

// open returns a Client for db, closed when the test ends.
func open(tb testing.TB, db *falkortest.DB, opts falkor.Options) *falkor.Client {
	tb.Helper()
	c, err := falkor.Open(context.Background(), db.URL, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return c
}

// count returns the number of matches of pattern in graph.
func count(tb testing.TB, c *falkor.Client, graph, pattern string) int64 {
	tb.Helper()
	res, err := c.Query(context.Background(), graph, "MATCH "+pattern+" RETURN count(*)", nil)
	require.NoError(tb, err)
	require.Len(tb, res.Rows, 1)
	return res.Rows[0][0].(int64)
}
