package falkor_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
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
