package falkor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// offlineClient is a Client whose connection is closed: a schema refresh
// fails at once. Graph "g" knows label A, type R and key k.
func offlineClient(t testing.TB) *Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	require.NoError(t, rdb.Close())
	c := &Client{rdb: rdb, opts: Options{MaxTimeout: DefaultMaxTimeout}}
	c.schemas.get("g").snap.Store(&schemaSnapshot{names: [numKinds][]string{{"A"}, {"R"}, {"k"}}})
	return c
}

func row(cells ...any) []any { return cells }

func reply(cells ...any) any {
	header := make([]any, len(cells))
	for i := range cells {
		header[i] = row(int64(columnScalar), fmt.Sprint("c", i))
	}
	return row(header, row(row(cells...)), row("Cached execution: 0"))
}

func TestDecodeMalformed(t *testing.T) {
	c := offlineClient(t)
	node := func(labels, props any) any { return row(int64(typeNode), row(int64(0), labels, props)) }
	tests := []struct {
		name  string
		reply any
		want  string
	}{
		{"not an array", "OK", "reply is string"},
		{"two parts", row(row(), row()), "2 parts"},
		{"stats not array", row("x"), "statistics"},
		{"header malformed", row(row("x"), row(), row()), "header"},
		{"row not array", row(row(row(int64(1), "a")), row("x"), row()), "row 0"},
		{"row too short", row(row(row(int64(1), "a")), row(row()), row()), "row 0"},
		{"unknown column type", row(row(row(int64(9), "a")), row(row(int64(1))), row()), "unknown type 9"},
		{"not a pair", reply("x"), "pair"},
		{"type not int", reply(row("3", int64(1))), "value type"},
		{"unknown value type", reply(row(int64(99), int64(1))), "unknown value type 99"},
		{"string not string", reply(row(int64(typeString), int64(1))), "value of type 2"},
		{"bad boolean", reply(row(int64(typeBoolean), "yes")), "value of type 4"},
		{"bad double", reply(row(int64(typeDouble), "one")), "value of type 5"},
		{"odd map", reply(row(int64(typeMap), row("a"))), "value of type 10"},
		{"map key not string", reply(row(int64(typeMap), row(int64(1), row(int64(typeNull), nil)))), "map key"},
		{"bad point", reply(row(int64(typePoint), row("1"))), "value of type 11"},
		{"bad vector", reply(row(int64(typeVectorF), row("x", true))), "vector element"},
		{"bad date", reply(row(int64(typeDate), "2024")), "value of type 14"},
		{"node malformed", reply(row(int64(typeNode), row(int64(0)))), "node is malformed"},
		{"label id not int", reply(node(row("A"), row())), "label id"},
		{"negative label id", reply(node(row(int64(-1)), row())), "negative"},
		{"unknown label id, refresh fails", reply(node(row(int64(5)), row())), "client is closed"},
		{"property not triple", reply(node(row(int64(0)), row(row(int64(0), int64(2))))), "triple"},
		{"unknown property id", reply(node(row(), row(row(int64(3), int64(typeString), "v")))), "reading the graph's names"},
		{"edge malformed", reply(row(int64(typeEdge), row(int64(0), int64(0), "x", int64(1), row()))), "edge is malformed"},
		{"path of scalars", reply(row(int64(typePath), row(row(int64(typeArray), row(row(int64(typeInteger), int64(1)))), row(int64(typeArray), row())))), "where a node belongs"},
		{"path malformed", reply(row(int64(typePath), row())), "path is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { _, err = c.decode(context.Background(), "g", tt.reply, 0, nil) })
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestDecodeKnownNames(t *testing.T) {
	c := offlineClient(t)
	res, err := c.decode(context.Background(), "g", reply(
		row(int64(typeNode), row(int64(7), row(int64(0)), row(row(int64(0), int64(typeString), "v")))),
		row(int64(typeEdge), row(int64(1), int64(0), int64(7), int64(8), row())),
		row(int64(typeDouble), 2.5), // RESP3 double
		row(int64(typeBoolean), true),
		row(int64(typeDouble), "-nan"),
		row(int64(typeDouble), "1.79769313486232e+308"),
		row(int64(typeDuration), int64(-90061)),
		row(int64(typeTime), int64(-2208977755)),
	), 0, nil)
	require.NoError(t, err)
	require.Equal(t, []any{
		Node{ID: 7, Labels: []string{"A"}, Properties: map[string]any{"k": "v"}},
		Edge{ID: 1, Type: "R", Source: 7, Destination: 8, Properties: map[string]any{}},
		2.5, true, "NaN", "Infinity", "-P1DT1H1M1S", "03:04:05",
	}, res.Rows[0])
}

func TestParseStats(t *testing.T) {
	s := parseStats([]any{
		"Labels added: 1", "Nodes created: 2", "Properties set: 3", "Relationships created: 4",
		"Nodes deleted: 5", "Relationships deleted: 6", "Properties removed: 7", "Labels removed: 8",
		"Indices created: 9", "Indices deleted: 10", "Cached execution: 1",
		"Query internal execution time: 0.25 milliseconds",
		"Unknown stat: 3", "malformed", int64(3), "Nodes created: x",
	})
	require.Equal(t, Stats{
		LabelsAdded: 1, NodesCreated: 2, PropertiesSet: 3, RelationshipsCreated: 4, NodesDeleted: 5,
		RelationshipsDeleted: 6, PropertiesRemoved: 7, LabelsRemoved: 8, IndicesCreated: 9, IndicesDeleted: 10,
		Cached: true, ExecutionTimeMs: 0.25,
	}, s)
}

func TestMapError(t *testing.T) {
	bg := context.Background()
	canceled, cancel := context.WithCancel(bg)
	cancel()
	addrErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6379}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		is   []error
		text string
	}{
		{"refused", bg, addrErr, []error{ErrUnavailable, syscall.ECONNREFUSED}, "falkor: FalkorDB unavailable: connection refused"},
		{"reset", bg, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, []error{ErrUnavailable}, "falkor: FalkorDB unavailable: connection reset"},
		{"eof", bg, io.EOF, []error{ErrUnavailable}, "falkor: FalkorDB unavailable: connection closed by the server"},
		{"pool", bg, redis.ErrPoolTimeout, []error{ErrUnavailable}, "falkor: FalkorDB unavailable: all connections are busy (pool exhausted)"},
		{"closed", bg, redis.ErrClosed, []error{ErrClosed}, "falkor: client is closed"},
		{"read timeout", bg, &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, []error{ErrTimeout}, "falkor: timeout: no reply within Options.MaxTimeout"},
		{"canceled", canceled, &net.OpError{Op: "read", Err: errors.New("x")}, []error{context.Canceled}, "falkor: call canceled"},
		{"empty key", bg, redisError("ERR Invalid graph operation on empty key"), []error{ErrGraphNotFound}, "falkor: graph not found"},
		{"read-only", bg, redisError("graph.RO_QUERY is to be executed only on read-only queries"), []error{ErrReadOnly}, ErrReadOnly.Error()},
		{"server timeout", bg, redisError("Query timed out"), []error{ErrTimeout}, "falkor: timeout"},
		{"loading", bg, redisError("LOADING Redis is loading the dataset in memory"), []error{ErrUnavailable}, "falkor: FalkorDB unavailable"},
		{"moved", bg, redisError("MOVED 3999 10.1.2.3:6379"), []error{ErrUnavailable}, "falkor: FalkorDB unavailable"},
		{"ask", bg, redisError("ASK 3999 10.1.2.3:6379"), []error{ErrUnavailable}, "falkor: FalkorDB unavailable"},
		{"cluster down", bg, redisError("CLUSTERDOWN The cluster is down"), []error{ErrUnavailable}, "falkor: FalkorDB unavailable"},
		{"other", bg, redisError("errMsg: Invalid input"), nil, "falkor: server error: errMsg: Invalid input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mapError(tt.ctx, tt.err)
			for _, s := range tt.is {
				require.ErrorIs(t, err, s)
			}
			require.Equal(t, tt.text, err.Error())
			var qe *QueryError
			if errors.As(err, &qe) {
				require.NotContains(t, qe.Message, "10.1.2.3", "the message must not show a node's address")
			}
		})
	}
}

type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

// FuzzDecode: the decoder never panics on any reply shape.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{2, 3, 2, 2, 0, 1, 3, 2, 1, 8, 2, 3, 0, 2, 1, 0, 2, 0})
	f.Add([]byte{2, 3, 2, 1, 2, 2, 0, 1, 1, 2, 1, 2, 2, 0, 10, 2, 4, 1, 'a', 2, 2, 0, 3, 0, 9, 2, 1, 1})
	c := offlineClient(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &replyGen{data: data}
		v := g.value(0)
		require.NotPanics(t, func() { _, _ = c.decode(context.Background(), "g", v, int(g.next()%4), nil) })
	})
}

// replyGen builds a reply-like value from bytes.
type replyGen struct {
	data []byte
	i    int
}

func (g *replyGen) next() byte {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return b
}

func (g *replyGen) value(depth int) any {
	switch op := g.next() % 8; {
	case op == 0:
		return int64(g.next()) - 2
	case op == 1:
		return string([]byte{g.next()})
	case op == 2 && depth < 12:
		n := int(g.next() % 6)
		arr := make([]any, n)
		for i := range arr {
			arr[i] = g.value(depth + 1)
		}
		return arr
	case op == 3:
		return nil
	case op == 4:
		return float64(g.next()) / 3
	case op == 5:
		return g.next()%2 == 0
	case op == 6:
		return []string{"nan", "inf", "-nan", "1e400", "true", "x"}[g.next()%6]
	}
	return math.MaxInt64
}
