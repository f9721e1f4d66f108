package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// misroute is a deliberately broken name mapping, injected after the
// tenancy middleware: every tool call of tenant from is sent to the physical
// key to instead of the one the middleware chose.
func misroute(from, to string) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			id, ok := tenancy.FromContext(ctx)
			if ct, isCall := req.(*mcp.CallToolRequest); isCall && ok && id.Tenant == from {
				var args map[string]any
				if err := json.Unmarshal(ct.Params.Arguments, &args); err == nil && args["graphName"] != nil {
					args["graphName"] = to
					ct.Params.Arguments, _ = json.Marshal(args)
				}
			}
			return next(ctx, method, req)
		}
	}
}

// TestDBACLBrokenMapping: with the name mapping broken on purpose (tenant
// b's calls sent to a's key), the per-tenant FalkorDB user refuses every
// data call with the database's NOPERM, and b sees none of a's data. With
// DB_ACL=off the same break leaks a's data: the database is what stopped it.
func TestDBACLBrokenMapping(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	ta, tb := tenants(db)
	keyA := ta + "_users"
	rdb := db.Redis(t)
	ctx := context.Background()
	require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", keyA, "CREATE (:Secret {v: 'a-marker-7f3'})").Err())
	require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", tb+"_users", "CREATE (:Own {v: 'b'})").Err())

	tp := startProxy(t, db, iss.env(), misroute(tb, keyA))
	require.True(t, tp.dbACL, "DB_ACL=auto with an administrator connection")
	require.Contains(t, tp.logs.String(), "per-tenant FalkorDB ACL users on")
	b := connect(t, tp.url, "streamable", iss.token(tb, "read write admin"))
	require.NoError(t, rdb.Do(ctx, "ACL", "LOG", "RESET").Err())
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"falkordb_ro_query", map[string]any{"graphName": "users", "query": "MATCH (n) RETURN n.v"}},
		{"falkordb_query", map[string]any{"graphName": "users", "query": "MATCH (n) SET n.v = 'b-was-here' RETURN n.v"}},
		{"falkordb_explain", map[string]any{"graphName": "users", "query": "MATCH (n) RETURN n"}},
		{"falkordb_graph_schema", map[string]any{"graphName": "users"}},
		{"falkordb_delete_graph", map[string]any{"graphName": "users", "confirm": true}},
	} {
		res, err := call(t, b, c.tool, c.args)
		require.NoError(t, err, c.tool)
		require.True(t, res.IsError, c.tool)
		// The tool's message names the key it was given (a's): the
		// middleware replaces it by a neutral one.
		out := text(res) + structured(t, res)
		require.Contains(t, out, "internal error; request id", c.tool)
		for _, leak := range []string{"a-marker-7f3", "Secret", ta} {
			require.NotContains(t, out, leak, c.tool)
		}
	}
	// The database refused them: NOPERM on a's key for b's user, at least
	// once per call (ACL LOG counts repeats of one entry; the schema tool
	// sends several commands).
	entries, err := rdb.Do(ctx, "ACL", "LOG").Slice()
	require.NoError(t, err)
	denied := int64(0)
	for _, e := range entries {
		m := e.(map[any]any)
		if m["username"] == aclUserPrefix+tb+"_" && m["reason"] == "key" && m["object"] == keyA {
			denied += m["count"].(int64)
		}
	}
	require.GreaterOrEqual(t, denied, int64(5), "NOPERM per call: %v", entries)
	res, err := rdb.Do(ctx, "GRAPH.RO_QUERY", keyA, "MATCH (n:Secret) RETURN n.v").Result()
	require.NoError(t, err)
	require.Contains(t, strings.Join(flatten(res), " "), "a-marker-7f3", "a's graph is intact")

	// The user the proxy made for b: confined to b's prefix, no admin commands.
	user, err := rdb.Do(ctx, "ACL", "GETUSER", aclUserPrefix+tb+"_").Result()
	require.NoError(t, err)
	info := user.(map[any]any)
	require.Equal(t, "~"+tb+"_*", info["keys"])
	require.Equal(t, "-@all +hello +ping +graph.query +graph.ro_query +graph.explain +graph.delete", info["commands"])

	// The same break without the database users: a's data leaks.
	off := startProxy(t, db, merge(iss.env(), map[string]string{"DB_ACL": "off"}), misroute(tb, keyA))
	require.False(t, off.dbACL)
	res2 := mustCall(t, connect(t, off.url, "streamable", iss.token(tb, "read")), "falkordb_ro_query",
		map[string]any{"graphName": "users", "query": "MATCH (n) RETURN n.v"})
	require.Contains(t, text(res2), "a-marker-7f3", "without DB_ACL the broken mapping leaks (the test's break is real)")
}

func flatten(v any) []string {
	switch x := v.(type) {
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	case string:
		return []string{x}
	}
	return nil
}

// TestDBACLModes: DB_ACL=on refuses to start without ACL rights, auto
// starts without the users (and says so), and a bad value is a
// configuration error.
func TestDBACLModes(t *testing.T) {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	ctx := context.Background()
	rdb := db.Redis(t)
	user, pass := db.Namespace()+"-noacl", "pw-"+db.Namespace()
	require.NoError(t, rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+pass, "~*", "&*", "+@all", "-@admin").Err())
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	u, err := url.Parse(db.URL)
	require.NoError(t, err)
	u.User = url.UserPassword(user, pass)

	env := merge(iss.env(), map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "FALKORDB_URL": u.String(), "DB_ACL": "on"})
	cfg, err := parseConfig(nil, envFunc(env), nil)
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = newProxy(cctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorContains(t, err, "DB_ACL=on: the FalkorDB user cannot manage ACL users")
	require.NotContains(t, err.Error(), pass)

	tp := startProxy(t, db, merge(iss.env(), map[string]string{"FALKORDB_URL": u.String(), "DB_ACL": "auto"}))
	require.False(t, tp.dbACL)
	require.Contains(t, tp.logs.String(), "tenants are kept apart by the name mapping only")
	ta, _ := tenants(db)
	a := connect(t, tp.url, "streamable", iss.token(ta, "read write"))
	mustCall(t, a, "falkordb_query", map[string]any{"graphName": "g", "query": createQuery, "parameters": map[string]any{"name": "x"}})

	_, err = parseConfig(nil, envFunc(map[string]string{"DB_ACL": "maybe"}), nil)
	require.ErrorContains(t, err, "DB_ACL")
}
