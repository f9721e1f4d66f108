// Package falkor is a FalkorDB client that is safe to put in front of
// untrusted callers, and the MCP tools built on it.
//
// It is built on falkordb-go's connection (a go-redis client) but does the
// rest itself, because falkordb-go v2.1.0 resends slow queries, panics on
// many parameter types, lets parameter names and map keys inject Cypher,
// drops decoding errors and is not safe for concurrent use.
//
// # Main use
//
//	c, err := falkor.Open(ctx, "redis://localhost:6379", falkor.Options{
//		MaxTimeout:  10 * time.Second,
//		MaxRows:     1000,
//		DenyLoadCSV: true,
//	})
//	...
//	defer c.Close()
//	res, err := c.ROQuery(ctx, "movies",
//		"MATCH (m:Movie {title: $title}) RETURN m", map[string]any{"title": "Alien"})
//	// res.Columns, res.Rows (nodes as falkor.Node), res.Stats, res.Truncated
//
// To serve the graphs over MCP:
//
//	server := mcp.NewServer(&mcp.Implementation{Name: "graphs"}, nil)
//	falkor.AddTools(server, c, nil)
//
// # Guarantees
//
//   - A query runs at most once: go-redis retries are off, so a slow write
//     is never resent. (A query is sent again only when FalkorDB refused it
//     unrun because the graph's names changed: a schema version mismatch.)
//   - Every call takes a context; a call waits at most min(context deadline,
//     Options.MaxTimeout), and queries pass that budget to FalkorDB as their
//     TIMEOUT. Timeouts match ErrTimeout (and context.DeadlineExceeded when
//     the context's deadline was the cause). A timeout ends the wait, not
//     necessarily the query: FalkorDB applies TIMEOUT to reads only (unless
//     its TIMEOUT_MAX is configured), and it holds the Redis lock while a
//     write runs, so a slow write delays every client of the server.
//   - Parameters are encoded by this package (see below); what cannot be sent
//     exactly is refused with ErrInvalidParameter, never sent approximately,
//     and nothing panics.
//   - ROQuery uses GRAPH.RO_QUERY: the server itself refuses writes
//     (ErrReadOnly). Labels, relationship types and property keys are looked
//     up with read-only queries too, so read-only ACL users get full results.
//   - A Client is safe for concurrent use; its per-graph name cache is
//     lock-free for readers.
//   - Error texts never contain the server address or password.
//
// # Scoped database users
//
// An administrator Client can run calls as a restricted Redis ACL user
// confined to a key pattern ([Client.WithScope], [Scope]): it creates or
// updates the user with a random password kept in memory, and keeps a small,
// bounded pool of connections per active user ([ScopeOptions]). The database
// then refuses, with NOPERM ([ErrPermission]), every key outside the pattern
// and every command outside [ScopeCommands] (GRAPH.LIST, GRAPH.INFO,
// GRAPH.CONFIG and GRAPH.UDF are global and stay with the administrator).
// [ToolOptions].Scope makes the MCP tools run each call as the user it
// picks from the call's context; a multi-tenant server maps the caller's
// tenant to a Scope there, so that isolation holds even if its name mapping
// had a bug. [Client.CheckScopes] tells whether the Client may manage users.
//
// # Redis Cluster
//
// Set [Options].ClusterAddrs (or [Options].Cluster) to reach a Redis
// Cluster of FalkorDB nodes through go-redis' cluster client. The URL gives
// the first seed address and the credentials and TLS settings of every
// node; ClusterAddrs lists more seeds:
//
//	c, err := falkor.Open(ctx, "redis://:secret@10.0.0.1:6379", falkor.Options{
//		ClusterAddrs: []string{"10.0.0.2:6379", "10.0.0.3:6379"},
//	})
//
// A graph is one key: each call goes to the primary serving the graph
// name's hash slot (graph names cannot carry hash tags, so graphs spread
// over all primaries). [Client.ListGraphs] asks every primary and returns
// the sorted union, and fails rather than return a partial list.
// [Client.DeleteGraph], queries and [Client.Schema] go to the graph's owner.
//
// The at-most-once guarantee holds: go-redis' cluster client resends a
// command after a broken connection or a timeout whenever it may follow
// redirects, so the Client disables that (MaxRedirects and MaxRetries -1)
// and follows MOVED replies itself (a node answers MOVED without running the
// command) up to 5 times, reloading the slot map. An ASK reply (a slot in
// migration) is reported as [ErrUnavailable]. While a primary is down, calls
// to its slots fail with [ErrUnavailable] (connection refused, CLUSTERDOWN);
// each failure makes the Client reload the slot map, so calls succeed again,
// without reopening the Client, as soon as a replica has taken over.
// Read-only queries go to primaries too (not to replicas).
//
// [Client.WithScope] sets scoped users up on every node, replicas included
// (ACL users are not replicated), and reads the slot map for them with the
// administrator's connection (CLUSTER SLOTS is not among [ScopeCommands]).
// A node restarted without the user answers WRONGPASS before the command
// is sent: the call sets the user up again and runs once more (a user
// deleted by another process, e.g. an erasure, mostly shows the same way; a
// call that raced the server closing the user's connections fails once with
// ErrUnavailable instead, since it may have been sent). A scoped
// pool whose call failed with ErrUnavailable (e.g. its slot map still named
// a failed primary) is dropped, and the next call sets the user up again;
// both need every node listed in the slot map to answer.
//
// # Copies, backups and quotas
//
// [Client.DumpGraph] and [Client.RestoreGraph] move a graph as a DUMP
// payload, to back it up into a file or into another server. A payload
// carries the graph's name and is restored only under that key: on
// FalkorDB 4.16 a payload restored under another key doubles counts, breaks
// writes or crashes the server, so RestoreGraph refuses it with
// [ErrInvalidPayload]. [Client.CopyGraph] copies with GRAPH.COPY; in a
// cluster both keys must share a hash slot (a backup key such as
// "backup:{acme_users}" does), else it fails with [ErrCrossSlot].
// [Client.GraphExists] and [Client.GraphMemory] (GRAPH.MEMORY USAGE, whole
// MiB) answer the quota questions of tenancy's plans; [Client.DropScope]
// deletes a scoped user when its tenant is erased.
//
// # Primary and replicas
//
// A primary with replicas (Redis replication, without Cluster) is reached
// through the primary's URL; [Options].Replicas lists the replicas'
// addresses, which use the URL's credentials and TLS settings, and
// [Options].ReadFromReplicas sends read-only calls to them:
//
//	c, err := falkor.Open(ctx, "redis://:secret@10.0.0.1:6379", falkor.Options{
//		Replicas:         []string{"10.0.0.2:6379", "10.0.0.3:6379"},
//		ReadFromReplicas: true,
//	})
//
// [Client.ROQuery] and [Client.Schema] go to the replicas in turn. When a
// replica cannot be connected to (or answers LOADING or MASTERDOWN, which
// it does without running anything), the call goes to the next replica and
// finally to the primary. A replica that timed out or broke the connection
// after the query was sent is not left for another server: the error is
// returned, as the query may have run. [Client.Query], [Client.DeleteGraph]
// and [Client.ListGraphs] always go to the primary, and so does
// [Client.Explain] (FalkorDB declares GRAPH.EXPLAIN a write command, which
// replicas refuse). Writes are never resent.
//
// Replication is asynchronous: a read from a replica may not yet see a
// write the primary has acknowledged, even one made by the same Client
// just before. Callers that need to read their own writes use a Client
// without ReadFromReplicas for those reads (or the Redis WAIT command
// through [Client.Redis], which bounds but does not remove the lag).
// Replicas do not take over by themselves: promoting one (with Sentinel or
// by hand) needs a new Client with the new primary's URL.
//
// Scoped calls ([Client.WithScope]) read from the primary: ACL users are
// not replicated, and the scoped users are set up on the primary only.
//
// # Parameters
//
// Parameter names must be Cypher identifiers (ASCII letters, digits and _, not
// starting with a digit). Values may be nil, bool, string, any Go integer or
// float type, json.Number, []any, map[string]any, and other slices, arrays,
// string-keyed maps and pointers of these. Numbers that are integral and fit
// in an int64 are sent as integers (so JSON's 2 and 2.0 both become the
// integer 2); NaN and ±Inf, integers beyond int64, strings containing a NUL
// byte, map keys containing a backtick or NUL, []byte, structs and nesting
// deeper than 32 levels are refused. Strings otherwise arrive exactly as
// given: quotes, backslashes, newlines, tabs, any Unicode.
//
// # Results
//
// Values in [Result].Rows are JSON-ready: see [Result] for the Go types.
// FalkorDB prints floats with 15 significant digits, so a float read back may
// differ from the one stored in the last digits.
package falkor
