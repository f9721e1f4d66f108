package falkor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// fillGraph creates a graph with labels, relationship types, a deleted
// node, an index, and properties of every storable type.
func fillGraph(t *testing.T, c *falkor.Client, g string) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		"CREATE INDEX FOR (p:Person) ON (p.name)",
		"CREATE INDEX FOR ()-[k:KNOWS]-() ON (k.since)",
		"CREATE (:Gone {x: 1})",
		`CREATE (a:Person:Admin {name: $name, age: 42, score: 3.25, active: true, big: 9007199254740993,
			tags: ['x', 'y'], nums: [1, 2.5], loc: point({latitude: 52.5, longitude: 13.4}),
			emb: vecf32([0.5, 1.5, -2]), born: date('1990-01-02'), seen: localdatetime('2024-01-02T03:04:05'),
			at: localtime('03:04:05'), span: duration('P1DT2H')}),
		(b:Person {name: 'Bob'}), (c:City {name: 'Berlin'}), (:Lone), (),
		(a)-[:KNOWS {since: 2001, w: 0.5, via: ['work']}]->(b),
		(a)-[:LIVES_IN]->(c), (b)-[:LIVES_IN {from: date('2020-05-06')}]->(c), (b)-[:KNOWS {since: 2010}]->(a)`,
		"MATCH (n:Gone) DELETE n",
	} {
		_, err := c.Query(ctx, g, q, map[string]any{"name": "O'Brien \"q\"\n ü"})
		require.NoError(t, err, q)
	}
}

// snapshotQueries read a whole graph: nodes, edges, paths, indexes.
var snapshotQueries = []string{
	"MATCH (n) RETURN n ORDER BY id(n)",
	"MATCH ()-[r]->() RETURN r ORDER BY id(r)",
	"MATCH p = (:Person)-[:KNOWS]->(:Person) RETURN p ORDER BY id(head(relationships(p)))",
	"MATCH (p:Person {name: 'Bob'})-[:LIVES_IN]->(c) RETURN p.name, c.name",
	"CALL db.indexes() YIELD label, properties, types, entitytype RETURN label, properties, types, entitytype ORDER BY entitytype, label",
}

// snapshot is the formatted result of every snapshot query, and the schema.
func snapshot(t *testing.T, c *falkor.Client, g string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, q := range snapshotQueries {
		res, err := c.ROQuery(ctx, g, q, nil)
		require.NoError(t, err, q)
		require.NotEmpty(t, res.Rows, q)
		data, err := json.Marshal(struct {
			Columns []string
			Rows    [][]any
		}{res.Columns, res.Rows})
		require.NoError(t, err)
		out = append(out, q+" => "+string(data))
	}
	s, err := c.Schema(ctx, g)
	require.NoError(t, err)
	data, err := json.Marshal(s)
	require.NoError(t, err)
	return append(out, "schema => "+string(data))
}

func TestGraphExists(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	g, str := db.Graph("exists"), db.Graph("string")
	require.NoError(t, db.Redis(t).Set(ctx, str, "x", 0).Err())
	_, err := c.Query(ctx, g, "CREATE ()", nil)
	require.NoError(t, err)

	tests := []struct {
		key  string
		want bool
	}{
		{g, true},
		{db.Graph("missing"), false},
		{str, false},
	}
	for _, tt := range tests {
		ok, err := c.GraphExists(ctx, tt.key)
		require.NoError(t, err, tt.key)
		require.Equal(t, tt.want, ok, tt.key)
	}
	require.NoError(t, c.DeleteGraph(ctx, g))
	ok, err := c.GraphExists(ctx, g)
	require.NoError(t, err)
	require.False(t, ok, "deleted")
}

func TestGraphMemory(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	small, big, str := db.Graph("small"), db.Graph("big"), db.Graph("string")
	require.NoError(t, db.Redis(t).Set(ctx, str, "x", 0).Err())
	_, err := c.Query(ctx, small, "CREATE (:A {x: 1})", nil)
	require.NoError(t, err)
	_, err = c.Query(ctx, big, "UNWIND range(1, 100000) AS i CREATE (:N {i: i, s: 'a string of some fifty bytes, to fill the memory'})", nil)
	require.NoError(t, err)

	n, err := c.GraphMemory(ctx, small)
	require.NoError(t, err)
	require.Zero(t, n, "FalkorDB reports whole MiB: a tiny graph uses 0")
	n, err = c.GraphMemory(ctx, big)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(4<<20), "100,000 nodes with a 50-byte string each")
	require.Less(t, n, int64(100<<20))
	require.Zero(t, n%(1<<20), "a multiple of 1 MiB")
	t.Logf("GraphMemory of 100,000 nodes: %d MiB", n>>20)

	_, err = c.GraphMemory(ctx, db.Graph("missing"))
	require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	_, err = c.GraphMemory(ctx, str)
	var qe *falkor.QueryError
	require.ErrorAs(t, err, &qe)
	require.Contains(t, qe.Message, "WRONGTYPE")
}

// DUMP, GRAPH.DELETE, RESTORE under the same key: the graph comes back
// identical, and the errors of DumpGraph and RestoreGraph are testable.
func TestDumpRestore(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	g, other, str := db.Graph("dump"), db.Graph("other"), db.Graph("string")
	require.NoError(t, db.Redis(t).Set(ctx, str, "x", 0).Err())
	fillGraph(t, c, g)
	want := snapshot(t, c, g)

	payload, err := c.DumpGraph(ctx, g)
	require.NoError(t, err)
	require.NoError(t, c.DeleteGraph(ctx, g))
	require.NoError(t, c.RestoreGraph(ctx, g, payload))
	require.Equal(t, want, snapshot(t, c, g))
	// The restored graph is fully usable: writes, and a new node takes the
	// deleted node's id as it would have in the original.
	res, err := c.Query(ctx, g, "CREATE (n:New) RETURN id(n)", nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), res.Rows[0][0], "the id of the deleted node is reused")
	graphs, err := c.ListGraphs(ctx)
	require.NoError(t, err)
	require.Contains(t, graphs, g)

	t.Run("an existing key is not replaced", func(t *testing.T) {
		before := snapshot(t, c, g)
		require.ErrorIs(t, c.RestoreGraph(ctx, g, payload), falkor.ErrGraphExists)
		require.Equal(t, before, snapshot(t, c, g))
		strPayload, err := db.Redis(t).Dump(ctx, str).Result()
		require.NoError(t, err)
		require.ErrorIs(t, c.RestoreGraph(ctx, str, []byte(strPayload)), falkor.ErrInvalidPayload, "not a graph")
		// A graph payload restored over a key of another type (same name):
		strGraph := db.Graph("strgraph")
		_, err = c.Query(ctx, strGraph, "CREATE ()", nil)
		require.NoError(t, err)
		p, err := c.DumpGraph(ctx, strGraph)
		require.NoError(t, err)
		require.NoError(t, c.DeleteGraph(ctx, strGraph))
		require.NoError(t, db.Redis(t).Set(ctx, strGraph, "x", 0).Err())
		require.ErrorIs(t, c.RestoreGraph(ctx, strGraph, p), falkor.ErrGraphExists)
		v, err := db.Redis(t).Get(ctx, strGraph).Result()
		require.NoError(t, err)
		require.Equal(t, "x", v)
	})

	t.Run("DumpGraph of a missing key or another type", func(t *testing.T) {
		_, err := c.DumpGraph(ctx, db.Graph("missing"))
		require.ErrorIs(t, err, falkor.ErrGraphNotFound)
		_, err = c.DumpGraph(ctx, str)
		require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	})

	t.Run("bad payloads are refused and restore nothing", func(t *testing.T) {
		flipped := slices.Clone(payload)
		flipped[len(flipped)-20] ^= 0xff // in the data: the server's checksum fails
		tests := []struct {
			name, key string
			payload   []byte
			want      string
		}{
			{"empty", other, nil, "not a FalkorDB graph dump"},
			{"garbage", other, []byte("hello, world"), "not a FalkorDB graph dump"},
			{"truncated", g + "x", payload[:40], ""},
			{"checksum", other, flipped, ""},
			{"another name", other, payload, fmt.Sprintf("dumped from the graph %q", g)},
			{"a longer name", g + "x", payload, fmt.Sprintf("dumped from the graph %q", g)},
			{"a shorter name", g[:len(g)-1], payload, fmt.Sprintf("dumped from the graph %q", g)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := c.RestoreGraph(ctx, tt.key, tt.payload)
				require.ErrorIs(t, err, falkor.ErrInvalidPayload)
				require.ErrorContains(t, err, tt.want)
				ok, err := c.GraphExists(ctx, tt.key)
				require.NoError(t, err)
				require.False(t, ok)
			})
		}
		// The checksum case reached the server: restored under its own name.
		require.NoError(t, c.DeleteGraph(ctx, g))
		err := c.RestoreGraph(ctx, g, flipped)
		require.ErrorIs(t, err, falkor.ErrInvalidPayload)
		var qe *falkor.QueryError
		require.ErrorAs(t, err, &qe)
		t.Logf("damaged payload: %s", qe.Message)
		require.NoError(t, c.RestoreGraph(ctx, g, payload))
		require.Equal(t, want, snapshot(t, c, g))
	})
}

// A payload restored on another, empty server gives the same graph; an
// uncompressed payload (rdbcompression no) restores as well.
func TestRestoreOnAnotherServer(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	g := db.Graph("moved")
	fillGraph(t, c, g)
	want := snapshot(t, c, g)
	payload, err := c.DumpGraph(ctx, g)
	require.NoError(t, err)

	srv := falkortest.StartServer(t, lite.Options{Args: []string{"--rdbcompression", "no"}})
	c2, err := falkor.Open(ctx, srv.URL(), falkor.Options{})
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.RestoreGraph(ctx, g, payload))
	require.Equal(t, want, snapshot(t, c2, g))
	graphs, err := c2.ListGraphs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{g}, graphs)
	_, err = c2.Query(ctx, g, "CREATE (:New)", nil)
	require.NoError(t, err)
	require.Equal(t, want, snapshot(t, c, g), "the original is untouched")

	plain, err := c2.DumpGraph(ctx, g)
	require.NoError(t, err)
	require.Greater(t, len(plain), len(payload), "uncompressed")
	require.NoError(t, c2.DeleteGraph(ctx, g))
	require.NoError(t, c2.RestoreGraph(ctx, g, plain))
	require.Equal(t, int64(1), count(t, c2, g, "(:New)"))
	require.ErrorIs(t, c2.RestoreGraph(ctx, g+"2", plain), falkor.ErrInvalidPayload)
}

// TestRestoreKeepsGraphName pins the FalkorDB behaviour (4.16.3) that
// RestoreGraph guards against and CopyGraph avoids: RESTORE under another
// key (here on a fresh server, where it is least harmful) keeps the dumped
// graph's name, so the server lists the old name and refuses writes to the
// new key. If this test fails after a FalkorDB upgrade, the restriction of
// RestoreGraph and CopyGraph may be lifted.
func TestRestoreKeepsGraphName(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	src := db.Graph("src")
	_, err := c.Query(ctx, src, "CREATE (:A {x: 1})-[:R]->(:A {x: 2})", nil)
	require.NoError(t, err)
	payload, err := c.DumpGraph(ctx, src)
	require.NoError(t, err)

	srv := falkortest.StartServer(t, lite.Options{})
	raw := redis.NewClient(&redis.Options{Network: srv.Network(), Addr: srv.Addr(), MaxRetries: -1})
	defer raw.Close()
	dst := db.Graph("dst")
	require.NoError(t, raw.Restore(ctx, dst, 0, string(payload)).Err())
	graphs, err := raw.Do(ctx, "GRAPH.LIST").StringSlice()
	require.NoError(t, err)
	require.Equal(t, []string{src}, graphs, "the server lists the dumped name, not the key")
	n, err := raw.Do(ctx, "GRAPH.RO_QUERY", dst, "MATCH (n) RETURN count(n)").Slice()
	require.NoError(t, err)
	require.Equal(t, []any{[]any{int64(2)}}, n[1], "reads work")
	err = raw.Do(ctx, "GRAPH.QUERY", dst, "CREATE ()").Err()
	require.ErrorContains(t, err, "Encountered an empty key when opened key "+src, "writes fail")
}

func TestCopyGraph(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	src, dst, str := db.Graph("src"), db.Graph("dst"), db.Graph("string")
	require.NoError(t, db.Redis(t).Set(ctx, str, "x", 0).Err())
	fillGraph(t, c, src)
	want := snapshot(t, c, src)

	require.NoError(t, c.CopyGraph(ctx, src, dst))
	require.Equal(t, want, snapshot(t, c, dst))
	require.Equal(t, want, snapshot(t, c, src), "the source is unchanged")
	// The copy is independent and writable under its own name.
	_, err := c.Query(ctx, dst, "MATCH (n:Person {name: 'Bob'}) SET n.age = 7 CREATE (:Extra)", nil)
	require.NoError(t, err)
	require.Equal(t, want, snapshot(t, c, src), "a write to the copy does not change the source")
	require.Equal(t, int64(1), count(t, c, dst, "(:Extra)"))
	_, err = c.Query(ctx, src, "CREATE (:OnlySrc)", nil)
	require.NoError(t, err)
	require.Zero(t, count(t, c, dst, "(:OnlySrc)"))
	graphs, err := c.ListGraphs(ctx)
	require.NoError(t, err)
	require.Contains(t, graphs, dst)

	tests := []struct {
		name, src, dst string
		want           error
	}{
		{"existing graph", src, dst, falkor.ErrGraphExists},
		{"existing key of another type", src, str, falkor.ErrGraphExists},
		{"itself", src, src, falkor.ErrGraphExists},
		{"missing source", db.Graph("missing"), db.Graph("new"), falkor.ErrGraphNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, c.CopyGraph(ctx, tt.src, tt.dst), tt.want)
		})
	}
	ok, err := c.GraphExists(ctx, db.Graph("new"))
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, int64(1), count(t, c, dst, "(:Extra)"), "an existing copy is not replaced")
}

// aclUsers lists the ACL users of a server.
func aclUsers(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	users, err := rdb.Do(context.Background(), "ACL", "USERS").StringSlice()
	require.NoError(t, err)
	return users
}

func TestDropScope(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	ctx := context.Background()
	s := scopeFor(t, db, "x")
	g := s.KeyPattern[:len(s.KeyPattern)-1] + "g"
	use := func() error {
		return c.WithScope(ctx, s, func(sc *falkor.Client) error {
			_, err := sc.Query(ctx, g, "MERGE (:S)", nil)
			return err
		})
	}
	rdb := db.Redis(t)

	require.NoError(t, use())
	require.Contains(t, aclUsers(t, rdb), s.User)
	require.Equal(t, 1, falkor.ScopePools(c))
	require.NoError(t, c.DropScope(ctx, s.User))
	require.NotContains(t, aclUsers(t, rdb), s.User)
	require.Zero(t, falkor.ScopePools(c), "the pool is closed")
	require.NoError(t, c.DropScope(ctx, s.User), "a missing user is not an error")

	require.NoError(t, use(), "WithScope creates the user again")
	require.Contains(t, aclUsers(t, rdb), s.User)
	require.Equal(t, int64(1), count(t, c, g, "(:S)"))

	// Dropped while in use: the pool closes when the call ends, and the
	// user is not created again by closing it.
	err := c.WithScope(ctx, s, func(sc *falkor.Client) error {
		require.NoError(t, c.DropScope(ctx, s.User))
		require.Zero(t, falkor.ScopePools(c))
		return nil
	})
	require.NoError(t, err)
	require.NotContains(t, aclUsers(t, rdb), s.User)
	require.NoError(t, use())

	// Dropped by another process (an erasure run from the command line)
	// while c keeps the user's pool: the next call sets the user up again
	// and succeeds; the query ran once. (ACL DELUSER also closes the
	// connections of the user.)
	//
	// The server closes the deleted user's connections asynchronously: a
	// call that took a pooled connection just before may find it closed
	// after sending (ErrUnavailable, not resent: the command may have run
	// as far as the client knows). The pool is dropped, and the next call
	// succeeds.
	other := open(t, db, falkor.Options{})
	afterDrop := func(f func() error) {
		t.Helper()
		err := f()
		if errors.Is(err, falkor.ErrUnavailable) {
			err = f()
		}
		require.NoError(t, err)
	}
	for range 3 {
		require.NoError(t, other.DropScope(ctx, s.User))
		require.NotContains(t, aclUsers(t, rdb), s.User)
		afterDrop(use)
	}
	require.Equal(t, int64(1), count(t, c, g, "(:S)"), "MERGE: one node whatever ran")
	n := count(t, c, g, "(:T)")
	require.NoError(t, other.DropScope(ctx, s.User))
	afterDrop(func() error {
		return c.WithScope(ctx, s, func(sc *falkor.Client) error {
			_, err := sc.Query(ctx, g, "CREATE (:T)", nil)
			return err
		})
	})
	require.Equal(t, n+1, count(t, c, g, "(:T)"), "the write ran exactly once")

	// A pool whose user another process deleted does not create the user
	// again when it closes (removing a password the server does not have
	// fails, and ACL SETUSER then changes nothing).
	c2 := open(t, db, falkor.Options{})
	require.NoError(t, c2.WithScope(ctx, s, func(sc *falkor.Client) error { return sc.Ping(ctx) }))
	require.NoError(t, other.DropScope(ctx, s.User))
	require.NoError(t, c2.Close())
	require.NotContains(t, aclUsers(t, rdb), s.User)

	t.Run("refused users", func(t *testing.T) {
		admin, pass := db.Namespace()+"-admin", "pw-"+db.Namespace()
		require.NoError(t, rdb.Do(ctx, "ACL", "SETUSER", admin, "reset", "on", ">"+pass, "~*", "&*", "+@all").Err())
		t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", admin) })
		u, err := url.Parse(db.URL)
		require.NoError(t, err)
		u.User = url.UserPassword(admin, pass)
		ac, err := falkor.Open(ctx, u.String(), falkor.Options{})
		require.NoError(t, err)
		defer ac.Close()
		for _, user := range []string{"default", admin, "", "a b", strings.Repeat("u", 129)} {
			require.ErrorIs(t, ac.DropScope(ctx, user), falkor.ErrInvalidScope, user)
		}
		require.Contains(t, aclUsers(t, rdb), admin)
		err = c.WithScope(ctx, s, func(sc *falkor.Client) error { return sc.DropScope(ctx, s.User) })
		require.ErrorIs(t, err, falkor.ErrInvalidScope, "a scoped client")
	})
}

// ToolOptions.MaxRows caps the rows of each query call, together with
// Options.MaxRows, and truncation is reported as for Options.MaxRows.
func TestToolsMaxRowsHook(t *testing.T) {
	db := startDB(t)
	ctx := context.Background()
	g := db.Graph("rows")
	var hook atomic.Int64
	opts := &falkor.ToolOptions{MaxRows: func(ctx context.Context) int {
		if ctx == nil {
			panic("no context")
		}
		return int(hook.Load())
	}}
	unlimited := connectTools(t, open(t, db, falkor.Options{}), opts)
	capped := connectTools(t, open(t, db, falkor.Options{MaxRows: 4}), opts)
	_, err := open(t, db, falkor.Options{}).Query(ctx, g, "UNWIND range(1, 6) AS i CREATE (:R {i: i})", nil)
	require.NoError(t, err)

	tests := []struct {
		name string
		cs   *mcp.ClientSession
		hook int
		rows int // 0: all 6, not truncated
	}{
		{"no caps", unlimited, 0, 0},
		{"negative hook", unlimited, -1, 0},
		{"hook only", unlimited, 3, 3},
		{"hook equal to the rows", unlimited, 6, 0},
		{"hook above the rows", unlimited, 100, 0},
		{"option only", capped, 0, 4},
		{"hook below the option", capped, 2, 2},
		{"hook above the option", capped, 5, 4},
	}
	for _, tt := range tests {
		for _, tool := range []string{falkor.ToolQuery, falkor.ToolROQuery} {
			t.Run(tt.name+"/"+tool, func(t *testing.T) {
				hook.Store(int64(tt.hook))
				res := call(t, tt.cs, tool, map[string]any{"graphName": g, "query": "MATCH (n:R) RETURN n.i ORDER BY n.i"})
				require.False(t, res.IsError, text(t, res))
				var out falkor.Result
				structured(t, res, &out)
				if tt.rows == 0 {
					require.False(t, out.Truncated)
					require.Len(t, out.Rows, 6)
					require.NotContains(t, text(t, res), "Truncated")
					return
				}
				require.True(t, out.Truncated)
				require.Len(t, out.Rows, tt.rows)
				require.Equal(t, int64(tt.rows), int64(out.Rows[tt.rows-1][0].(float64)))
				require.Contains(t, text(t, res), fmt.Sprintf("%d rows. Columns", tt.rows))
				require.Contains(t, text(t, res), fmt.Sprintf("Truncated: the query returned more than %d rows and only the first %d are shown", tt.rows, tt.rows))
			})
		}
	}

	t.Run("scoped calls", func(t *testing.T) {
		admin := open(t, db, falkor.Options{})
		s := scopeFor(t, db, "rows")
		sg := s.KeyPattern[:len(s.KeyPattern)-1] + "g"
		_, err := admin.Query(ctx, sg, "UNWIND range(1, 6) AS i CREATE (:R {i: i})", nil)
		require.NoError(t, err)
		cs := connectTools(t, admin, &falkor.ToolOptions{
			Scope:   func(context.Context) (falkor.Scope, error) { return s, nil },
			MaxRows: func(context.Context) int { return 2 },
		})
		res := call(t, cs, falkor.ToolROQuery, map[string]any{"graphName": sg, "query": "MATCH (n:R) RETURN n.i"})
		require.False(t, res.IsError, text(t, res))
		var out falkor.Result
		structured(t, res, &out)
		require.True(t, out.Truncated)
		require.Len(t, out.Rows, 2)
	})
}

// TestOpsCluster runs the graph operations on a cluster of 3 primaries with
// a replica each.
func TestOpsCluster(t *testing.T) {
	cl := startCluster(t)
	ctx := context.Background()
	addrs := cl.Addrs()
	// Scoped users are set up on the nodes of the slot map, which lists a
	// replica only once it has synchronized with its primary: wait for all.
	first := nodeClient(t, cl, cl.Primaries()[0])
	require.Eventually(t, func() bool {
		slots, err := first.ClusterSlots(ctx).Result()
		n := 0
		for _, s := range slots {
			n += len(s.Nodes)
		}
		return err == nil && n == len(cl.Nodes())
	}, 30*time.Second, 50*time.Millisecond)
	c, err := falkor.Open(ctx, "redis://:"+strings.ReplaceAll(cl.Password(), " ", "%20")+"@"+addrs[0],
		falkor.Options{ClusterAddrs: addrs[1:], MaxTimeout: 10 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	rdb := c.Redis()
	ns := fmt.Sprintf("ops%d", time.Now().UnixNano()%1e6)

	// A graph on every primary.
	byNode := map[*lite.Node]string{}
	for i := 0; len(byNode) < len(cl.Primaries()); i++ {
		g := fmt.Sprintf("%s_g%d", ns, i)
		if n := falkortest.SlotOwner(t, rdb, cl, g); byNode[n] == "" {
			byNode[n] = g
			fillGraph(t, c, g)
		}
	}
	primaries := cl.Primaries()
	src := byNode[primaries[0]]
	want := snapshot(t, c, src)

	t.Run("GraphExists, GraphMemory and DumpGraph reach the key's node", func(t *testing.T) {
		for _, g := range byNode {
			ok, err := c.GraphExists(ctx, g)
			require.NoError(t, err)
			require.True(t, ok, g)
			_, err = c.GraphMemory(ctx, g)
			require.NoError(t, err, g)
			_, err = c.DumpGraph(ctx, g)
			require.NoError(t, err, g)
		}
		ok, err := c.GraphExists(ctx, ns+"_missing")
		require.NoError(t, err)
		require.False(t, ok)
		_, err = c.GraphMemory(ctx, ns+"_missing")
		require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	})

	t.Run("dump, delete, restore", func(t *testing.T) {
		g := byNode[primaries[1]]
		before := snapshot(t, c, g)
		payload, err := c.DumpGraph(ctx, g)
		require.NoError(t, err)
		require.NoError(t, c.DeleteGraph(ctx, g))
		require.NoError(t, c.RestoreGraph(ctx, g, payload))
		require.Equal(t, before, snapshot(t, c, g))
		require.ErrorIs(t, c.RestoreGraph(ctx, g, payload), falkor.ErrGraphExists)
	})

	t.Run("a copy into the source's slot, by hash tag", func(t *testing.T) {
		dst := "tgbackup:label:{" + src + "}"
		require.Equal(t, primaries[0], falkortest.SlotOwner(t, rdb, cl, dst))
		require.NoError(t, c.CopyGraph(ctx, src, dst))
		require.Equal(t, want, snapshot(t, c, dst))
		_, err := c.Query(ctx, dst, "CREATE (:Extra)", nil)
		require.NoError(t, err)
		require.Equal(t, want, snapshot(t, c, src), "the source is unchanged")
		on, err := nodeClient(t, cl, primaries[0]).Do(ctx, "GRAPH.LIST").StringSlice()
		require.NoError(t, err)
		require.Contains(t, on, dst, "the copy is listed under its own name")
		require.ErrorIs(t, c.CopyGraph(ctx, src, dst), falkor.ErrGraphExists)
		require.ErrorIs(t, c.CopyGraph(ctx, ns+"_missing", "x{"+ns+"_missing}"), falkor.ErrGraphNotFound)
		all, err := c.ListGraphs(ctx)
		require.NoError(t, err)
		require.Contains(t, all, dst)
	})

	t.Run("copies across slots are refused", func(t *testing.T) {
		var sameNode, otherNode string
		for i := 0; sameNode == "" || otherNode == ""; i++ {
			k := fmt.Sprintf("%s_copy%d", ns, i)
			switch falkortest.SlotOwner(t, rdb, cl, k) {
			case primaries[0]:
				sameNode = k
			case primaries[2]:
				otherNode = k
			}
		}
		for _, dst := range []string{sameNode, otherNode} {
			require.ErrorIs(t, c.CopyGraph(ctx, src, dst), falkor.ErrCrossSlot, dst)
			ok, err := c.GraphExists(ctx, dst)
			require.NoError(t, err)
			require.False(t, ok)
		}
		// What the server itself says to a cross-slot GRAPH.COPY on the node
		// that holds both slots.
		err := nodeClient(t, cl, primaries[0]).Do(ctx, "GRAPH.COPY", src, sameNode).Err()
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), "CROSSSLOT"), err.Error())
	})

	t.Run("CopyGraph compares hash slots as the cluster does", func(t *testing.T) {
		keys := []string{"", "a", "foo", "{foo}x", "x{foo}", "{}foo", "foo{}{bar}", "foo{{bar}}", "{bar", "}{bar}",
			"tgbackup:label:{" + ns + "_none}", ns + "_none{", "{" + ns + "_none}{x}"}
		for i := range 40 {
			keys = append(keys, fmt.Sprintf("%s_k%d", ns, i), fmt.Sprintf("b{%s_k%d}", ns, i%7))
		}
		missing := ns + "_missing"
		for _, k := range keys {
			want, err := rdb.Do(ctx, "CLUSTER", "KEYSLOT", missing).Int()
			require.NoError(t, err)
			got, err := rdb.Do(ctx, "CLUSTER", "KEYSLOT", k).Int()
			require.NoError(t, err)
			err = c.CopyGraph(ctx, missing, k)
			if got == want {
				require.ErrorIs(t, err, falkor.ErrGraphNotFound, k)
			} else {
				require.ErrorIs(t, err, falkor.ErrCrossSlot, k)
			}
			missing = k // the next pair: (k, next key)
		}
	})

	t.Run("DropScope deletes the user on every node", func(t *testing.T) {
		s := falkor.Scope{User: ns + "-user", KeyPattern: ns + "_s_*"}
		use := func() error {
			return c.WithScope(ctx, s, func(sc *falkor.Client) error {
				for i := range 6 {
					if _, err := sc.Query(ctx, fmt.Sprintf("%s_s_%d", ns, i), "MERGE (:S)", nil); err != nil {
						return err
					}
				}
				return nil
			})
		}
		require.NoError(t, use())
		for _, n := range cl.Nodes() {
			require.Contains(t, aclUsers(t, nodeClient(t, cl, n)), s.User)
		}
		require.NoError(t, c.DropScope(ctx, s.User))
		for _, n := range cl.Nodes() {
			require.NotContains(t, aclUsers(t, nodeClient(t, cl, n)), s.User, "node %s", n.Addr())
		}
		require.NoError(t, use(), "WithScope creates the user again")
		require.NoError(t, c.DropScope(ctx, s.User))
	})
}
