package falkor_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
)

// A Redis ACL user that may only run GRAPH.RO_QUERY on its graph gets fully
// decoded nodes and edges (falkordb-go returns them empty with a nil error,
// because it refreshes its label cache through GRAPH.QUERY), and its writes
// are refused by the server.
func TestReadOnlyACLUser(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	g := db.Graph("acl")
	ctx := context.Background()
	_, err := admin.Query(ctx, g, "CREATE (:Person {name: 'Ann'})-[:KNOWS {since: 1}]->(:Person:Admin {name: 'Bob'})", nil)
	require.NoError(t, err)

	user, pass := db.Namespace()+"_ro", "pw-"+db.Namespace()
	rdb := admin.Redis()
	require.NoError(t, rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+pass, "~"+g,
		"+ping", "+hello", "+client|setinfo", "+graph.ro_query").Err())
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })

	u, err := url.Parse(db.URL)
	require.NoError(t, err)
	u.User = url.UserPassword(user, pass)
	ro, err := falkor.Open(ctx, u.String(), falkor.Options{})
	require.NoError(t, err)
	defer ro.Close()

	res, err := ro.ROQuery(ctx, g, "MATCH (a)-[k]->(b) RETURN a, k, b", nil)
	require.NoError(t, err)
	require.Equal(t, []any{
		falkor.Node{ID: 0, Labels: []string{"Person"}, Properties: map[string]any{"name": "Ann"}},
		falkor.Edge{ID: 0, Type: "KNOWS", Source: 0, Destination: 1, Properties: map[string]any{"since": int64(1)}},
		falkor.Node{ID: 1, Labels: []string{"Person", "Admin"}, Properties: map[string]any{"name": "Bob"}},
	}, res.Rows[0])

	s, err := ro.Schema(ctx, g)
	require.NoError(t, err)
	require.Equal(t, []string{"Person", "Admin"}, s.Labels)

	_, err = ro.Query(ctx, g, "CREATE (:X)", nil)
	var qe *falkor.QueryError
	require.ErrorAs(t, err, &qe)
	require.Contains(t, qe.Message, "NOPERM")
	_, err = ro.ROQuery(ctx, db.Graph("other"), "RETURN 1", nil)
	require.ErrorAs(t, err, &qe)
	require.Contains(t, qe.Message, "NOPERM")
	require.Zero(t, count(t, admin, g, "(n:X)"))
}

// scopeFor is a Scope for the keys ns+tenant+"_*", with a user deleted when
// the test ends.
func scopeFor(t *testing.T, db *falkortest.DB, tenant string) falkor.Scope {
	t.Helper()
	s := falkor.Scope{User: db.Namespace() + "-" + tenant, KeyPattern: db.Namespace() + tenant + "_*"}
	rdb := db.Redis(t)
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", s.User) })
	return s
}

// With a deliberately broken mapping (tenant b's scope, tenant a's key),
// the database refuses every data command with NOPERM, and the
// administrative graph commands are refused to scoped users altogether.
func TestScopeIsolation(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	ctx := context.Background()
	keyA, keyB := db.Namespace()+"a_users", db.Namespace()+"b_users"
	_, err := admin.Query(ctx, keyA, "CREATE (:Secret {v: 'a-marker'})", nil)
	require.NoError(t, err)
	sa, sb := scopeFor(t, db, "a"), scopeFor(t, db, "b")

	// Each scope works on its own keys.
	require.NoError(t, admin.WithScope(ctx, sb, func(c *falkor.Client) error {
		if _, err := c.Query(ctx, keyB, "CREATE (:Own {v: 'b'})", nil); err != nil {
			return err
		}
		res, err := c.ROQuery(ctx, keyB, "MATCH (n:Own) RETURN n.v", nil)
		require.NoError(t, err)
		require.Equal(t, [][]any{{"b"}}, res.Rows)
		s, err := c.Schema(ctx, keyB)
		require.NoError(t, err)
		require.Equal(t, []string{"Own"}, s.Labels)
		_, err = c.Explain(ctx, keyB, "MATCH (n) RETURN n", nil)
		return err
	}))
	require.NoError(t, admin.WithScope(ctx, sa, func(c *falkor.Client) error {
		res, err := c.ROQuery(ctx, keyA, "MATCH (n:Secret) RETURN n.v", nil)
		require.NoError(t, err)
		require.Equal(t, [][]any{{"a-marker"}}, res.Rows)
		return nil
	}))

	// b's user reaching for a's key.
	cross := map[string]func(c *falkor.Client) error{
		"ro_query": func(c *falkor.Client) error {
			_, err := c.ROQuery(ctx, keyA, "MATCH (n) RETURN n.v", nil)
			return err
		},
		"query": func(c *falkor.Client) error {
			_, err := c.Query(ctx, keyA, "MATCH (n) SET n.v = 'b-was-here'", nil)
			return err
		},
		"explain": func(c *falkor.Client) error {
			_, err := c.Explain(ctx, keyA, "MATCH (n) RETURN n", nil)
			return err
		},
		"schema": func(c *falkor.Client) error {
			_, err := c.Schema(ctx, keyA)
			return err
		},
		"delete":     func(c *falkor.Client) error { return c.DeleteGraph(ctx, keyA) },
		"list":       func(c *falkor.Client) error { _, err := c.ListGraphs(ctx); return err },
		"GRAPH.INFO": func(c *falkor.Client) error { return c.Redis().Do(ctx, "GRAPH.INFO").Err() },
		"GRAPH.CONFIG": func(c *falkor.Client) error {
			return c.Redis().Do(ctx, "GRAPH.CONFIG", "SET", "TIMEOUT_MAX", "1").Err()
		},
		"GRAPH.UDF":  func(c *falkor.Client) error { return c.Redis().Do(ctx, "GRAPH.UDF", "LIST").Err() },
		"GRAPH.COPY": func(c *falkor.Client) error { return c.Redis().Do(ctx, "GRAPH.COPY", keyA, keyB+"2").Err() },
		"GET":        func(c *falkor.Client) error { return c.Redis().Do(ctx, "GET", keyB).Err() },
		"KEYS":       func(c *falkor.Client) error { return c.Redis().Do(ctx, "KEYS", "*").Err() },
		"ACL":        func(c *falkor.Client) error { return c.Redis().Do(ctx, "ACL", "SETUSER", sb.User, "allkeys").Err() },
	}
	for name, f := range cross {
		err := admin.WithScope(ctx, sb, f)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "NOPERM", name)
		if name == strings.ToLower(name) { // the Client's own methods
			require.ErrorIs(t, err, falkor.ErrPermission, name)
			var qe *falkor.QueryError
			require.ErrorAs(t, err, &qe, name)
			require.True(t, strings.HasPrefix(qe.Message, "NOPERM"), name)
			require.NotContains(t, err.Error(), keyA, name)
		}
	}
	res, err := admin.ROQuery(ctx, keyA, "MATCH (n:Secret) RETURN n.v", nil)
	require.NoError(t, err)
	require.Equal(t, [][]any{{"a-marker"}}, res.Rows, "a's graph is intact")
}

// The tools run as the Scope's user: a route that hands tenant b's scope to
// a call naming a's graph (a broken name mapping) is refused by the database,
// and shows none of a's data. Listing stays on the administrator.
func TestToolsScope(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	ctx := context.Background()
	keyA, keyB := db.Namespace()+"a_users", db.Namespace()+"b_users"
	_, err := admin.Query(ctx, keyA, "CREATE (:Secret {v: 'a-marker'})", nil)
	require.NoError(t, err)
	sb := scopeFor(t, db, "b")
	cs := connectTools(t, admin, &falkor.ToolOptions{Scope: func(context.Context) (falkor.Scope, error) { return sb, nil }})

	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{falkor.ToolROQuery, map[string]any{"graphName": keyA, "query": "MATCH (n) RETURN n.v"}},
		{falkor.ToolQuery, map[string]any{"graphName": keyA, "query": "MATCH (n) RETURN n.v"}},
		{falkor.ToolExplain, map[string]any{"graphName": keyA, "query": "MATCH (n) RETURN n.v"}},
		{falkor.ToolGraphSchema, map[string]any{"graphName": keyA}},
		{falkor.ToolDeleteGraph, map[string]any{"graphName": keyA, "confirm": true}},
	} {
		res := call(t, cs, c.tool, c.args)
		require.True(t, res.IsError, c.tool)
		msg := text(t, res)
		require.Contains(t, msg, "permission denied by the database (NOPERM)", c.tool)
		require.NotContains(t, msg, "a-marker", c.tool)
		require.NotContains(t, msg, "Secret", c.tool)
	}
	res := call(t, cs, falkor.ToolQuery, map[string]any{"graphName": keyB, "query": "CREATE (:Own) RETURN 1"})
	require.False(t, res.IsError, text(t, res))
	var list struct{ Graphs []string }
	structured(t, call(t, cs, falkor.ToolListGraphs, map[string]any{}), &list)
	require.Contains(t, list.Graphs, keyA, "listing runs as the administrator (the tenancy layer filters it)")
	require.Equal(t, int64(1), count(t, admin, keyA, "(n:Secret)"), "a's graph is intact")

	// A route that fails refuses the call; there is no fallback.
	cs = connectTools(t, admin, &falkor.ToolOptions{Scope: func(context.Context) (falkor.Scope, error) {
		return falkor.Scope{}, errors.New("no tenant in the context")
	}})
	res = call(t, cs, falkor.ToolROQuery, map[string]any{"graphName": keyA, "query": "MATCH (n) RETURN n.v"})
	require.True(t, res.IsError)
	require.Contains(t, text(t, res), "no database user for this call: no tenant in the context")
}

func TestScopeValidation(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	ctx := context.Background()
	for _, s := range []falkor.Scope{
		{User: "", KeyPattern: "a_*"},
		{User: "default", KeyPattern: "a_*"},
		{User: "has space", KeyPattern: "a_*"},
		{User: "new\nline", KeyPattern: "a_*"},
		{User: "glob*", KeyPattern: "a_*"},
		{User: ">pw", KeyPattern: "a_*"},
		{User: strings.Repeat("u", 129), KeyPattern: "a_*"},
		{User: "u", KeyPattern: ""},
		{User: "u", KeyPattern: "*"},
		{User: "u", KeyPattern: "**"},
		{User: "u", KeyPattern: "a*b*"},
		{User: "u", KeyPattern: "a?_*"},
		{User: "u", KeyPattern: "[ab]_*"},
		{User: "u", KeyPattern: `a\*`},
		{User: "u", KeyPattern: "a b_*"},
		{User: "u", KeyPattern: "a\x00_*"},
		{User: "u", KeyPattern: strings.Repeat("k", 513) + "*"},
	} {
		err := admin.WithScope(ctx, s, func(*falkor.Client) error {
			t.Fatalf("ran with invalid scope %q", s)
			return nil
		})
		require.ErrorIs(t, err, falkor.ErrInvalidScope, "%q", s)
	}
	// The administrator's own user (here "default") and a user already in
	// use with another pattern.
	s := scopeFor(t, db, "a")
	require.NoError(t, admin.WithScope(ctx, s, func(c *falkor.Client) error {
		err := admin.WithScope(ctx, falkor.Scope{User: s.User, KeyPattern: s.KeyPattern + "x"}, func(*falkor.Client) error { return nil })
		require.ErrorIs(t, err, falkor.ErrInvalidScope)
		require.ErrorIs(t, c.WithScope(ctx, s, func(*falkor.Client) error { return nil }), falkor.ErrInvalidScope, "a scoped client cannot scope")
		require.NoError(t, c.Close(), "Close on a scoped client does nothing")
		return c.Ping(ctx)
	}))
}

// Pools are bounded by MaxUsers and closed when idle; closing one removes
// its password from the user, and the administrator's Close removes all.
func TestScopePools(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{Scopes: falkor.ScopeOptions{MaxUsers: 2, PoolSize: 1, IdleTimeout: time.Hour}})
	ctx := context.Background()
	rdb := db.Redis(t)
	passwords := func(user string) int {
		reply, err := rdb.Do(ctx, "ACL", "GETUSER", user).Result()
		require.NoError(t, err)
		return len(reply.(map[any]any)["passwords"].([]any))
	}
	var scopes []falkor.Scope
	for _, name := range []string{"a", "b", "c"} {
		s := scopeFor(t, db, name)
		scopes = append(scopes, s)
		require.NoError(t, admin.WithScope(ctx, s, func(c *falkor.Client) error { return c.Ping(ctx) }))
	}
	require.Equal(t, 2, falkor.ScopePools(admin), "at most MaxUsers idle pools")
	require.Zero(t, passwords(scopes[0].User), "the evicted pool's password is gone")
	require.Equal(t, 1, passwords(scopes[2].User))

	// A busy pool is never closed; the bound applies once it is idle.
	require.NoError(t, admin.WithScope(ctx, scopes[1], func(*falkor.Client) error {
		return admin.WithScope(ctx, scopes[2], func(*falkor.Client) error {
			return admin.WithScope(ctx, scopes[0], func(c *falkor.Client) error {
				require.Equal(t, 3, falkor.ScopePools(admin))
				return c.Ping(ctx)
			})
		})
	}))
	require.NoError(t, admin.WithScope(ctx, scopes[0], func(c *falkor.Client) error { return c.Ping(ctx) }))
	require.Equal(t, 2, falkor.ScopePools(admin))

	// Idle pools close on their own.
	idle := open(t, db, falkor.Options{Scopes: falkor.ScopeOptions{IdleTimeout: 20 * time.Millisecond}})
	require.NoError(t, idle.WithScope(ctx, scopes[0], func(c *falkor.Client) error { return c.Ping(ctx) }))
	require.Eventually(t, func() bool { return falkor.ScopePools(idle) == 0 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, admin.Close())
	for _, s := range scopes {
		require.Zero(t, passwords(s.User), s.User)
	}
	require.ErrorIs(t, admin.WithScope(ctx, scopes[0], func(*falkor.Client) error { return nil }), falkor.ErrClosed)
}

// Many calls at once, for a few users, share their pools (run with -race).
func TestScopeConcurrent(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{Scopes: falkor.ScopeOptions{MaxUsers: 2, PoolSize: 2}})
	ctx := context.Background()
	scopes := []falkor.Scope{scopeFor(t, db, "a"), scopeFor(t, db, "b"), scopeFor(t, db, "c")}
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := scopes[i%len(scopes)]
			key := strings.TrimSuffix(s.KeyPattern, "*") + "g"
			errs <- admin.WithScope(ctx, s, func(c *falkor.Client) error {
				_, err := c.Query(ctx, key, "CREATE (:N {i: $i})", map[string]any{"i": i})
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := int64(0)
	for _, s := range scopes {
		total += count(t, admin, strings.TrimSuffix(s.KeyPattern, "*")+"g", "(n:N)")
	}
	require.Equal(t, int64(60), total)
	require.LessOrEqual(t, falkor.ScopePools(admin), 2)
}

// CheckScopes: an administrator may scope; a user without ACL rights may
// not, and its WithScope calls fail with ErrPermission.
func TestCheckScopes(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	ctx := context.Background()
	require.NoError(t, admin.CheckScopes(ctx))

	user, pass := db.Namespace()+"-plain", "pw-"+db.Namespace()
	rdb := admin.Redis()
	require.NoError(t, rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+pass, "~*", "+@all", "-@admin").Err())
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	u, err := url.Parse(db.URL)
	require.NoError(t, err)
	u.User = url.UserPassword(user, pass)
	plain, err := falkor.Open(ctx, u.String(), falkor.Options{})
	require.NoError(t, err)
	defer plain.Close()
	require.ErrorIs(t, plain.CheckScopes(ctx), falkor.ErrPermission)
	err = plain.WithScope(ctx, scopeFor(t, db, "a"), func(*falkor.Client) error { return nil })
	require.ErrorIs(t, err, falkor.ErrPermission)
}

// A user deleted behind the Client's back (or lost in a server restart) is
// set up again by the next call, which then succeeds: the server refused
// the password before the command was sent.
func TestScopeUserRecreated(t *testing.T) {
	db := startDB(t)
	admin := open(t, db, falkor.Options{})
	ctx := context.Background()
	s := scopeFor(t, db, "a")
	ping := func(c *falkor.Client) error { return c.Ping(ctx) }
	require.NoError(t, admin.WithScope(ctx, s, ping))
	require.NoError(t, admin.Redis().Do(ctx, "ACL", "DELUSER", s.User).Err()) // also drops its connections
	err := admin.WithScope(ctx, s, ping)
	if errors.Is(err, falkor.ErrUnavailable) {
		// The server closed the pooled connection after the call took it
		// (it closes a deleted user's connections asynchronously): not
		// resent, and the pool is dropped.
		err = admin.WithScope(ctx, s, ping)
	}
	require.NoError(t, err, "the call sets the user up again and runs once more")
	require.Contains(t, aclUsers(t, admin.Redis()), s.User)
	require.NoError(t, admin.WithScope(ctx, s, ping))
}
