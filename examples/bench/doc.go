// Command bench measures, in one run on one machine, the same FalkorDB
// workload through tenantgraph's proxy and through its peers, and prints a
// markdown table:
//
//	go run ./examples/bench                      # everything (about 6 minutes on 2 cores)
//	go run ./examples/bench -calls 200 -only a,b # a quick look
//
// It starts everything itself, on loopback: FalkorDB (falkor/lite) with a
// 1,000-node graph indexed on id, an RS256 token issuer (a key generated at
// start, its JWKS served by the benchmark), and the systems:
//
//	a          falkordb-go straight to FalkorDB (the floor)
//	b          examples/proxy over Streamable HTTP with RS256 JWTs, token cache on
//	b-nocache  the same with the token cache off
//	c          the official @falkordb/mcpserver (npm) over Streamable HTTP with its API key
//	d          examples/proxy in upstream mode in front of (c)
//	e          a FastMCP proxy with its JWT verifier in front of (c)
//	f          the floor of a Go proxy: net/http and one go-redis call per request, nothing else
//
// The peers come from examples/proxy/testdata/interop/install.sh (with
// INTEROP_FASTMCP=1 for FastMCP); a peer that is not installed is reported
// as skipped, with the reason.
//
// Workloads: a point lookup by indexed id with a query parameter, a 2-hop
// traversal returning 50 rows, and a small write; each at concurrency 1 and
// 16, a fixed number of calls after a warm-up. The load generator is lean:
// pre-encoded JSON-RPC tools/call bodies POSTed over keep-alive HTTP, answers
// checked with a substring test (and fully decoded once per system and
// workload, where the row count must match). For each cell the table shows
// throughput, p50 and p99 latency, the CPU time per call of every server
// process (/proc/<pid>/stat and schedstat, children included), their peak
// RSS (VmHWM, reset before the cell), the load generator's own CPU per call,
// the Go proxy's allocations per call, and ratios to (a) and (c).
//
// With -profile DIR it then profiles the proxy under load: it builds
// examples/proxy with a profiling hook added through go build -overlay (the
// source tree is not touched) and writes CPU and allocation profiles and
// their tops to DIR.
//
// Every process the benchmark starts runs in its own process group, is
// stopped when the benchmark ends or is interrupted (Ctrl-C), and is killed
// by the kernel if the benchmark dies.
package main
