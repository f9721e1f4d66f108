// Package falkortest gives a test a ready FalkorDB with one call:
//
//	func TestMain(m *testing.M) { falkortest.Main(m) } // optional: stops the server at the end
//
//	func TestMovies(t *testing.T) {
//		db := falkortest.Start(t)
//		graph := db.Graph("movies") // a graph name no other test uses
//		// connect to db.URL and use graph ...
//	}
//
// Where the FalkorDB comes from:
//
//   - FALKORDB_URL (redis://, rediss://, unix:// or falkor://): that server, shared with
//     whoever else uses it; every test gets its own namespace of key names, and the keys
//     in it are deleted when the test ends.
//   - otherwise one local server per test binary, started on first use by
//     [github.com/tenantgraph/tenantgraph/falkor/lite] (which may download the binaries
//     once into the user's cache) and stopped by Main, or killed when the test binary
//     exits.
//
// When neither can be had, Start skips the test with the reason, or fails it when
// FALKORDB_REQUIRED=1 (as in CI, so that a broken setup cannot pass as skipped tests).
//
// This package does not import package falkor, so falkor's own tests can use it.
package falkortest
