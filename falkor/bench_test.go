package falkor_test

import (
	"context"
	"testing"

	falkordb "github.com/FalkorDB/falkordb-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

// BenchmarkROQuery: a point lookup by an indexed id on a 1,000-node graph,
// through this package and through falkordb-go directly.
func BenchmarkROQuery(b *testing.B) {
	db := startDB(b)
	c := open(b, db, falkor.Options{})
	g := db.Graph("bench")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE INDEX FOR (n:Item) ON (n.id)", nil)
	require.NoError(b, err)
	_, err = c.Query(ctx, g, "UNWIND range(0, 999) AS i CREATE (:Item {id: i, name: 'item ' + toString(i), price: i * 1.5})", nil)
	require.NoError(b, err)
	const query = "MATCH (n:Item {id: $id}) RETURN n"

	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		params := map[string]any{"id": 0}
		i := 0
		for b.Loop() {
			params["id"] = i % 1000
			res, err := c.ROQuery(ctx, g, query, params)
			if err != nil || len(res.Rows) != 1 {
				b.Fatal(err)
			}
			i++
		}
	})
	raw := func(opts *falkordb.QueryOptions) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			fdb, err := falkordb.FromURL(db.URL)
			require.NoError(b, err)
			defer fdb.Conn.Close()
			graph := fdb.SelectGraph(g)
			params := map[string]any{"id": 0}
			i := 0
			for b.Loop() {
				params["id"] = i % 1000
				res, err := graph.ROQuery(query, params, opts)
				if err != nil || !res.Next() {
					b.Fatal(err)
				}
				i++
			}
		}
	}
	b.Run("falkordb-go", raw(nil))
	// The same server work as ours: FalkorDB handles a query with a TIMEOUT
	// (which this package always passes) measurably slower.
	b.Run("falkordb-go-timeout", raw(falkordb.NewQueryOptions().SetTimeout(30000)))
}

// BenchmarkGraphExists: one TYPE round trip per call.
func BenchmarkGraphExists(b *testing.B) {
	db := startDB(b)
	c := open(b, db, falkor.Options{})
	g := db.Graph("exists")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE ()", nil)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		ok, err := c.GraphExists(ctx, g)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
