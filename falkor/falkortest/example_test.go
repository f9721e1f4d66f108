package falkortest_test

import (
	"context"
	"testing"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// A test gets a FalkorDB and graph names of its own with one call. Put
// func TestMain(m *testing.M) { falkortest.Main(m) } in the package to stop the server
// after the tests.
func ExampleStart() {
	testMovies := func(t *testing.T) {
		db := falkortest.Start(t) // skips without a FalkorDB, fails if FALKORDB_REQUIRED=1
		rdb := db.Redis(t)
		graph := db.Graph("movies") // e.g. "t3f9c0a1b2c3d4e5f_movies"
		err := rdb.Do(context.Background(), "GRAPH.QUERY", graph, "CREATE (:Movie {title: 'Heat'})").Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = testMovies
}
