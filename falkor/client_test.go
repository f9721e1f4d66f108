package falkor_test

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestOpenURLForms(t *testing.T) {
	db := startDB(t)
	ctx := context.Background()
	require.True(t, strings.HasPrefix(db.URL, "redis://") || strings.HasPrefix(db.URL, "unix://"), db.URL)
	urls := []string{db.URL}
	if strings.HasPrefix(db.URL, "redis://") {
		urls = append(urls, "falkor://"+strings.TrimPrefix(db.URL, "redis://"))
	}
	for _, u := range urls {
		c, err := falkor.Open(ctx, u, falkor.Options{})
		require.NoError(t, err, u)
		require.NoError(t, c.Ping(ctx))
		require.NoError(t, c.Redis().Ping(ctx).Err())
		require.NoError(t, c.Close())
		require.ErrorIs(t, c.Ping(ctx), falkor.ErrClosed)
	}
}

func TestOpenErrorsHideSecretsAndAddresses(t *testing.T) {
	addr := closedAddr(t)
	ctx := context.Background()
	tests := []struct {
		name string
		url  string
		want error // nil: any error
	}{
		{"refused", "redis://:s3cret@" + addr, falkor.ErrUnavailable},
		{"refused falkor scheme", "falkor://user:s3cret@" + addr, falkor.ErrUnavailable},
		{"missing unix socket", "unix:///nonexistent/dir/s3cret.sock?password=s3cret", falkor.ErrUnavailable},
		{"bad port", "redis://:s3cret@127.0.0.1:notaport", nil},
		{"bad scheme", "http://:s3cret@127.0.0.1:1", nil},
		{"bad option", "redis://:s3cret@127.0.0.1:1?s3cret=1", nil},
		{"no scheme", "127.0.0.1:6379", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := falkor.Open(ctx, tt.url, falkor.Options{DialTimeout: time.Second})
			require.Error(t, err)
			require.Nil(t, c)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			require.NotContains(t, err.Error(), "s3cret")
			require.NotContains(t, err.Error(), "127.0.0.1")
			require.NotContains(t, err.Error(), addr)
		})
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	for _, o := range []falkor.Options{{MaxTimeout: -1}, {DialTimeout: -1}, {MaxRows: -1}, {MaxQueryLen: -1}, {PoolSize: -1}} {
		_, err := falkor.Open(context.Background(), "redis://127.0.0.1:1", o)
		require.ErrorContains(t, err, "invalid options")
	}
}

func TestROQueryRefusesWrites(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("ro")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE (:Seed {v: 1})", nil)
	require.NoError(t, err)
	writes := []string{
		"CREATE (:X)",
		"MERGE (:X)",
		"MATCH (s:Seed) SET s.v = 2",
		"MATCH (s:Seed) DELETE s",
		"MATCH (s:Seed) REMOVE s.v",
		"CREATE INDEX FOR (n:Seed) ON (n.v)",
	}
	for _, q := range writes {
		_, err := c.ROQuery(ctx, g, q, nil)
		require.ErrorIs(t, err, falkor.ErrReadOnly, q)
		require.Contains(t, err.Error(), "read-only")
		var qe *falkor.QueryError
		require.ErrorAs(t, err, &qe)
		require.Contains(t, qe.Message, "read-only")
	}
	require.Zero(t, count(t, c, g, "(n:X)"))
	res, err := c.ROQuery(ctx, g, "MATCH (s:Seed) RETURN s.v", nil)
	require.NoError(t, err)
	require.Equal(t, [][]any{{int64(1)}}, res.Rows)
}

func TestGraphNotFound(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("missing")
	ctx := context.Background()
	_, err := c.ROQuery(ctx, g, "MATCH (n) RETURN n", nil)
	require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	_, err = c.Explain(ctx, g, "MATCH (n) RETURN n", nil)
	require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	_, err = c.Schema(ctx, g)
	require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	err = c.DeleteGraph(ctx, g)
	require.ErrorIs(t, err, falkor.ErrGraphNotFound)
	require.Equal(t, "falkor: graph not found", err.Error())
}

func TestListDeleteExplainSchema(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("admin")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE (:Person {name: 'a'})-[:KNOWS {since: 1}]->(:Person:Admin {age: 3})", nil)
	require.NoError(t, err)

	graphs, err := c.ListGraphs(ctx)
	require.NoError(t, err)
	require.Contains(t, graphs, g)

	plan, err := c.Explain(ctx, g, "MATCH (p:Person {name: $name}) RETURN p", map[string]any{"name": "a"})
	require.NoError(t, err)
	require.NotEmpty(t, plan)
	require.Equal(t, "Results", plan[0])
	require.Contains(t, strings.Join(plan, "\n"), "Label Scan")

	s, err := c.Schema(ctx, g)
	require.NoError(t, err)
	require.Equal(t, &falkor.Schema{
		Labels:            []string{"Person", "Admin"},
		RelationshipTypes: []string{"KNOWS"},
		PropertyKeys:      []string{"name", "since", "age"},
	}, s)

	require.NoError(t, c.DeleteGraph(ctx, g))
	graphs, err = c.ListGraphs(ctx)
	require.NoError(t, err)
	require.NotContains(t, graphs, g)
	require.ErrorIs(t, c.DeleteGraph(ctx, g), falkor.ErrGraphNotFound)
}

func TestQueryError(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("qerr")
	ctx := context.Background()
	for _, q := range []string{"RETURN foo(", "RETURN 1/0", "RETURN $missing"} {
		_, err := c.Query(ctx, g, q, nil)
		var qe *falkor.QueryError
		require.ErrorAs(t, err, &qe, q)
		require.NotEmpty(t, qe.Message)
		require.Nil(t, qe.Kind)
		require.Equal(t, "falkor: server error: "+qe.Message, err.Error())
		for _, s := range []error{falkor.ErrGraphNotFound, falkor.ErrReadOnly, falkor.ErrTimeout, falkor.ErrUnavailable} {
			require.NotErrorIs(t, err, s)
		}
	}
}

// slowPart returns a read-only query part that keeps the server busy for
// about target, calibrated on this machine (roughly: it may be loaded),
// without allocating much memory.
func slowPart(t *testing.T, c *falkor.Client, graph string, target time.Duration) string {
	t.Helper()
	const side = 1500 // 2.25e6 iterations
	_, err := c.Query(context.Background(), graph, "RETURN 1", nil)
	require.NoError(t, err)
	start := time.Now()
	_, err = c.ROQuery(context.Background(), graph, slowQuery(side), nil)
	require.NoError(t, err)
	per := max(time.Since(start)/(side*side), time.Nanosecond)
	n := max(int64(math.Sqrt(float64(target/per))), side)
	return slowQuery(n)
}

func slowQuery(side int64) string {
	s := strconv.FormatInt(side, 10)
	return "UNWIND range(1, " + s + ") AS a UNWIND range(1, " + s + ") AS b WITH a, b WHERE (a + b) % 7 = 0 RETURN count(*)"
}

// A write slower than go-redis' default 3 s read timeout runs exactly once
// (go-redis' defaults would resend it up to 3 times).
//
// Not parallel: FalkorDB holds the Redis lock while a write runs, so the
// whole server, PING included, waits for it.
func TestSlowWriteRunsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 5 s")
	}
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	slow := slowPart(t, c, db.Graph("calibrate"), 4*time.Second)
	// The machine's speed varies (shared CI): if a run ends before 3 s it
	// proves nothing, so try again with a longer query (each run must also
	// have created exactly one node).
	for attempt := range 3 {
		g := db.Graph("slow" + strconv.Itoa(attempt))
		start := time.Now()
		res, err := c.Query(context.Background(), g, "CREATE (:Once) WITH 1 AS one "+slow, nil)
		elapsed := time.Since(start)
		require.NoError(t, err)
		require.Equal(t, int64(1), res.Stats.NodesCreated)
		require.Equal(t, int64(1), count(t, c, g, "(n:Once)"))
		if elapsed > 3200*time.Millisecond {
			return
		}
		t.Logf("attempt %d took only %v; trying a longer query", attempt, elapsed)
		slow = strings.Replace(slow, "UNWIND range(1, ", "UNWIND range(1, 2 * ", 1)
	}
	t.Fatal("could not make a query slower than 3.2 s")
}

func TestContextDeadline(t *testing.T) {
	t.Parallel()
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("deadline")
	_, err := c.Query(context.Background(), g, "RETURN 1", nil)
	require.NoError(t, err)
	slow := slowQuery(10000) // the server stops it at the TIMEOUT passed with it

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = c.ROQuery(ctx, g, slow, nil)
	require.ErrorIs(t, err, falkor.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "127.0.0.1")

	// The client still works afterwards.
	res, err := c.ROQuery(context.Background(), g, "RETURN 1", nil)
	require.NoError(t, err)
	require.Equal(t, [][]any{{int64(1)}}, res.Rows)
}

func TestMaxTimeout(t *testing.T) {
	t.Parallel()
	db := startDB(t)
	c := open(t, db, falkor.Options{MaxTimeout: 200 * time.Millisecond})
	g := db.Graph("maxtimeout")
	_, err := c.Query(context.Background(), g, "RETURN 1", nil)
	require.NoError(t, err)
	_, err = c.ROQuery(context.Background(), g, slowQuery(10000), nil)
	require.ErrorIs(t, err, falkor.ErrTimeout)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestDoneContext(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("done")

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := c.Query(expired, g, "CREATE (:X)", nil)
	require.ErrorIs(t, err, falkor.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = c.Query(canceled, g, "CREATE (:X)", nil)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, falkor.ErrTimeout)

	graphs, err := c.ListGraphs(context.Background())
	require.NoError(t, err)
	require.NotContains(t, graphs, g, "nothing may be sent")
}

func TestMaxRows(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{MaxRows: 3})
	g := db.Graph("rows")
	ctx := context.Background()
	tests := []struct {
		n         int
		rows      int
		truncated bool
	}{{0, 0, false}, {2, 2, false}, {3, 3, false}, {4, 3, true}, {1000, 3, true}}
	for _, tt := range tests {
		res, err := c.Query(ctx, g, "UNWIND range(1, $n) AS x RETURN x", map[string]any{"n": tt.n})
		require.NoError(t, err)
		require.Len(t, res.Rows, tt.rows, tt.n)
		require.Equal(t, tt.truncated, res.Truncated, tt.n)
		for i, row := range res.Rows {
			require.Equal(t, int64(i+1), row[0])
		}
	}
}

func TestMaxQueryLen(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{MaxQueryLen: 40})
	g := db.Graph("len")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "RETURN 1", nil)
	require.NoError(t, err)
	_, err = c.Query(ctx, g, "RETURN '"+strings.Repeat("x", 40)+"'", nil)
	require.ErrorIs(t, err, falkor.ErrQueryTooLong)
	_, err = c.Query(ctx, g, "RETURN $p", map[string]any{"p": strings.Repeat("x", 40)})
	require.ErrorIs(t, err, falkor.ErrQueryTooLong)
	require.Contains(t, err.Error(), "with its parameters")
	_, err = c.Explain(ctx, g, "RETURN '"+strings.Repeat("x", 40)+"'", nil)
	require.ErrorIs(t, err, falkor.ErrQueryTooLong)
}

func TestDenyLoadCSV(t *testing.T) {
	db := startDB(t)
	deny := open(t, db, falkor.Options{DenyLoadCSV: true})
	allow := open(t, db, falkor.Options{})
	g := db.Graph("csv")
	ctx := context.Background()
	q := "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row"
	_, err := deny.Query(ctx, g, q, nil)
	require.ErrorIs(t, err, falkor.ErrLoadCSVDenied)
	_, err = deny.ROQuery(ctx, g, q, nil)
	require.ErrorIs(t, err, falkor.ErrLoadCSVDenied)
	_, err = allow.Query(ctx, g, q, nil)
	require.NotErrorIs(t, err, falkor.ErrLoadCSVDenied) // the server decides
	res, err := deny.Query(ctx, g, "MATCH (d:Download) RETURN d.csv_file", nil)
	require.NoError(t, err)
	require.Empty(t, res.Rows)
	// Words passed as parameters are fine.
	res, err = deny.Query(ctx, g, "RETURN $w", map[string]any{"w": "LOAD CSV"})
	require.NoError(t, err)
	require.Equal(t, "LOAD CSV", res.Rows[0][0])
}

func TestMentionsLoadCSV(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{"LOAD CSV FROM 'x' AS r RETURN r", true},
		{"load csv from 'x' as r return r", true},
		{"LoAd CsV FROM 'x' AS r RETURN r", true},
		{"LOAD\tCSV", true},
		{"LOAD\n\r\n  CSV", true},
		{"LOAD/* comment */CSV", true},
		{"LOAD // line comment\nCSV", true},
		{"LOAD /* a */ /* b */ WITH HEADERS CSV", true}, // odd, but refused: err on the safe side
		{"WITH 1 AS x LOAD CSV WITH HEADERS FROM $u AS r RETURN r", true},
		{"RETURN 1\nLOAD\u00a0CSV", true},
		{"`x`LOAD CSV", true},
		{"1LOAD CSV", true},
		{"LOAD CSV", true},
		{"RETURN 'load' + 'x.csv'", true}, // false positive by design
		{"MATCH (d:Download) RETURN d.csv_file", false},
		{"MATCH (n:LOADER) RETURN n.CSV1", false},
		{"RETURN 1", false},
		{"CSV LOAD", false},
		{"", false},
		{"LOAD", false},
		{"xLOAD CSV", false},
		{"LOAD CSVx", false},
		{"LOAD _CSV", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, falkor.MentionsLoadCSV(tt.q), tt.q)
	}
}

// FuzzMentionsLoadCSV: LOAD and CSV as separate words, with anything but
// identifier characters around them, are always found.
func FuzzMentionsLoadCSV(f *testing.F) {
	f.Add("RETURN 1 ", " /* c */ ", " FROM 'x'", uint8(0))
	f.Add("", "\n//x\n", "", uint8(3))
	f.Add("'", "\t", "'", uint8(5))
	f.Fuzz(func(t *testing.T, before, between, after string, caseMask uint8) {
		load, csv := []byte("load"), []byte("csv")
		for i := range load {
			if caseMask&(1<<i) != 0 {
				load[i] -= 'a' - 'A'
			}
		}
		for i := range csv {
			if caseMask&(1<<(4+i)) != 0 {
				csv[i] -= 'a' - 'A'
			}
		}
		q := before + " " + string(load) + " " + between + " " + string(csv) + " " + after
		require.True(t, falkor.MentionsLoadCSV(q), "%q", q)
		_ = falkor.MentionsLoadCSV(before + between + after) // never panics
	})
}

func TestClosedClient(t *testing.T) {
	db := startDB(t)
	c, err := falkor.Open(context.Background(), db.URL, falkor.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = c.Query(context.Background(), db.Graph("closed"), "RETURN 1", nil)
	require.ErrorIs(t, err, falkor.ErrClosed)
	require.False(t, errors.Is(err, falkor.ErrUnavailable))
}
