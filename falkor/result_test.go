package falkor_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

func TestResultValues(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("values")
	ctx := context.Background()
	tests := []struct {
		expr string
		want any
	}{
		{"null", nil},
		{"true", true},
		{"false", false},
		{"42", int64(42)},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"1.5", 1.5},
		{"toFloat(2)", 2.0},
		{"'text'", "text"},
		{"[1, 'a', null, [true]]", []any{int64(1), "a", nil, []any{true}}},
		{"{a: 1, b: {c: 'd'}}", map[string]any{"a": int64(1), "b": map[string]any{"c": "d"}}},
		{"point({latitude: 1.5, longitude: -2.25})", falkor.Point{Latitude: 1.5, Longitude: -2.25}},
		{"vecf32([1.0, 2.5, -3])", falkor.Vector{1, 2.5, -3}},
		{"date('2024-01-02')", "2024-01-02"},
		{"localdatetime('2024-01-02T03:04:05')", "2024-01-02T03:04:05"},
		{"localtime('03:04:05')", "03:04:05"},
		{"duration('P1DT2H3M4S')", "P1DT2H3M4S"},
		{"duration('PT0S')", "PT0S"},
		{"1.0/0", "Infinity"},
		{"-1.0/0", "-Infinity"},
		{"0.0/0", "NaN"},
		{"[1.0/0]", []any{"Infinity"}},
	}
	for _, tt := range tests {
		res, err := c.Query(ctx, g, "RETURN "+tt.expr, nil)
		require.NoError(t, err, tt.expr)
		require.Equal(t, []string{tt.expr}, res.Columns)
		require.Equal(t, [][]any{{tt.want}}, res.Rows, tt.expr)
		_, err = json.Marshal(res)
		require.NoError(t, err, tt.expr)
	}
}

func TestResultGraphValues(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("entities")
	ctx := context.Background()
	res, err := c.Query(ctx, g,
		"CREATE (a:Person {name: 'Ann', tags: ['x'], home: point({latitude: 1, longitude: 2})})-[k:KNOWS {since: 2020}]->(b:Person:Admin {name: 'Bob'}) RETURN a",
		nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Stats.NodesCreated)
	require.Equal(t, int64(1), res.Stats.RelationshipsCreated)
	require.Equal(t, int64(5), res.Stats.PropertiesSet)
	require.Equal(t, int64(2), res.Stats.LabelsAdded)
	require.Positive(t, res.Stats.ExecutionTimeMs)
	res, err = c.ROQuery(ctx, g, "MATCH p = (a)-[k:KNOWS]->(b) RETURN a, k, b, p, [a, b], {who: a}", nil)
	require.NoError(t, err)

	a := falkor.Node{ID: 0, Labels: []string{"Person"}, Properties: map[string]any{
		"name": "Ann", "tags": []any{"x"}, "home": falkor.Point{Latitude: 1, Longitude: 2},
	}}
	b := falkor.Node{ID: 1, Labels: []string{"Person", "Admin"}, Properties: map[string]any{"name": "Bob"}}
	k := falkor.Edge{ID: 0, Type: "KNOWS", Source: 0, Destination: 1, Properties: map[string]any{"since": int64(2020)}}
	require.Equal(t, []any{a, k, b, falkor.Path{Nodes: []falkor.Node{a, b}, Edges: []falkor.Edge{k}}, []any{a, b}, map[string]any{"who": a}}, res.Rows[0])

	data, err := json.Marshal(res.Rows[0][1])
	require.NoError(t, err)
	require.JSONEq(t, `{"id":0,"type":"KNOWS","source":0,"destination":1,"properties":{"since":2020}}`, string(data))
	data, err = json.Marshal(res.Rows[0][2])
	require.NoError(t, err)
	require.JSONEq(t, `{"id":1,"labels":["Person","Admin"],"properties":{"name":"Bob"}}`, string(data))
}

func TestResultStats(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("stats")
	ctx := context.Background()
	steps := []struct {
		q    string
		want falkor.Stats
	}{
		{"CREATE (:A {x: 1, y: 2}), (:A)", falkor.Stats{NodesCreated: 2, PropertiesSet: 2, LabelsAdded: 1}},
		{"MATCH (a:A) WHERE a.x = 1 SET a.z = 3 REMOVE a.y", falkor.Stats{PropertiesSet: 1, PropertiesRemoved: 1}},
		{"CREATE INDEX FOR (n:A) ON (n.x)", falkor.Stats{IndicesCreated: 1}},
		{"MATCH (a:A) WHERE a.x IS NULL SET a:B REMOVE a:A", falkor.Stats{LabelsAdded: 1, LabelsRemoved: 1}},
		{"MATCH (a:A), (b:B) CREATE (a)-[:R]->(b)", falkor.Stats{RelationshipsCreated: 1}},
		{"MATCH ()-[r:R]->() DELETE r", falkor.Stats{RelationshipsDeleted: 1}},
		{"DROP INDEX FOR (n:A) ON (n.x)", falkor.Stats{IndicesDeleted: 1}},
		{"MATCH (n) DELETE n", falkor.Stats{NodesDeleted: 2}},
	}
	for _, s := range steps {
		res, err := c.Query(ctx, g, s.q, nil)
		require.NoError(t, err, s.q)
		got := res.Stats
		got.ExecutionTimeMs, got.Cached = 0, false
		require.Equal(t, s.want, got, s.q)
		require.Empty(t, res.Columns)
		require.Empty(t, res.Rows)
	}
	_, err := c.Query(ctx, g, "MATCH (n) RETURN count(n)", nil) // plans it
	require.NoError(t, err)
	res, err := c.Query(ctx, g, "MATCH (n) RETURN count(n)", nil)
	require.NoError(t, err)
	require.True(t, res.Stats.Cached)
}

func TestVectorJSON(t *testing.T) {
	data, err := json.Marshal(falkor.Vector{1, 0.1, float32(math.Inf(1)), float32(math.NaN())})
	require.NoError(t, err)
	require.Equal(t, `[1,0.1,"Infinity","NaN"]`, string(data))
	data, err = json.Marshal(falkor.Vector(nil))
	require.NoError(t, err)
	require.Equal(t, `null`, string(data))
}

// A Client that cached a graph's names decodes names added later by others.
func TestSchemaRefresh(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	other := open(t, db, falkor.Options{})
	g := db.Graph("refresh")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE (:A {a: 1})-[:R]->(:B)", nil)
	require.NoError(t, err)
	res, err := c.ROQuery(ctx, g, "MATCH (n:A) RETURN n", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"A"}, res.Rows[0][0].(falkor.Node).Labels)

	_, err = other.Query(ctx, g, "CREATE (:C:D {c: 1, d: 2})-[:S {s: 3}]->(:E)", nil)
	require.NoError(t, err)
	res, err = c.ROQuery(ctx, g, "MATCH (n:C)-[r:S]->(m) RETURN n, r, m", nil)
	require.NoError(t, err)
	n, r, m := res.Rows[0][0].(falkor.Node), res.Rows[0][1].(falkor.Edge), res.Rows[0][2].(falkor.Node)
	require.Equal(t, []string{"C", "D"}, n.Labels)
	require.Equal(t, map[string]any{"c": int64(1), "d": int64(2)}, n.Properties)
	require.Equal(t, "S", r.Type)
	require.Equal(t, map[string]any{"s": int64(3)}, r.Properties)
	require.Equal(t, []string{"E"}, m.Labels)
}

// Replies decode the same over RESP2 (?protocol=2) and RESP3 (the default):
// RESP3 sends vector elements as doubles, RESP2 as strings.
func TestResultProtocols(t *testing.T) {
	db := startDB(t)
	g := db.Graph("protocols")
	sep := "?"
	if strings.Contains(db.URL, "?") {
		sep = "&"
	}
	const q = "CREATE (n:N {v: vecf32([1.5, -2]), f: 0.5, b: true, p: point({latitude: 1, longitude: 2})}) RETURN n, n.v, n.f, n.b, n.p, [1.0/0]"
	var results []*falkor.Result
	for _, u := range []string{db.URL, db.URL + sep + "protocol=2", db.URL + sep + "protocol=3"} {
		c, err := falkor.Open(context.Background(), u, falkor.Options{})
		require.NoError(t, err, u)
		res, err := c.Query(context.Background(), g, q, nil)
		require.NoError(t, err, u)
		require.NoError(t, c.Close())
		results = append(results, res)
	}
	for _, res := range results {
		row := res.Rows[0]
		require.Equal(t, falkor.Vector{1.5, -2}, row[1])
		require.Equal(t, []any{0.5, true, falkor.Point{Latitude: 1, Longitude: 2}, []any{"Infinity"}}, row[2:])
		require.Equal(t, []string{"N"}, row[0].(falkor.Node).Labels)
		require.Equal(t, row[1], row[0].(falkor.Node).Properties["v"])
	}
}

// A graph deleted by another client and created again with the same names in
// another order is decoded with its new names: the query carries the version
// of the cached names, and the server refuses it unrun when they are stale.
// A write refused that way runs once, after the names are read again.
func TestSchemaRecreatedElsewhere(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	other := open(t, db, falkor.Options{})
	g := db.Graph("recreated")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE (:A {a: 1})-[:R {r: 1}]->(:B {b: 2})", nil)
	require.NoError(t, err)
	res, err := c.ROQuery(ctx, g, "MATCH (n:A)-[r]->(m) RETURN n, r, m", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"A"}, res.Rows[0][0].(falkor.Node).Labels)

	require.NoError(t, other.DeleteGraph(ctx, g))
	_, err = other.Query(ctx, g, "CREATE (:B {b: 2})-[:S {s: 3}]->(:A {a: 1})-[:R {r: 1}]->(:B)", nil)
	require.NoError(t, err)

	res, err = c.Query(ctx, g, "MATCH (n:B)-[r:S]->(m:A) CREATE (:Once) RETURN n, r, m", nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Stats.NodesCreated)
	n, r, m := res.Rows[0][0].(falkor.Node), res.Rows[0][1].(falkor.Edge), res.Rows[0][2].(falkor.Node)
	require.Equal(t, []string{"B"}, n.Labels)
	require.Equal(t, map[string]any{"b": int64(2)}, n.Properties)
	require.Equal(t, "S", r.Type)
	require.Equal(t, map[string]any{"s": int64(3)}, r.Properties)
	require.Equal(t, []string{"A"}, m.Labels)
	require.Equal(t, map[string]any{"a": int64(1)}, m.Properties)
	require.Equal(t, int64(1), count(t, c, g, "(n:Once)"))
}
