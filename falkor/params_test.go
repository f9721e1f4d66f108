package falkor_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

type (
	myString string
	myInt    int16
	myFloat  float64
)

// nested returns depth levels of one-element lists around "x".
func nested(depth int) any {
	var v any = "x"
	for range depth {
		v = []any{v}
	}
	return v
}

func TestParamsRoundTrip(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("params")
	str := "x"
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"empty string", "", ""},
		{"single quote", "it's", "it's"},
		{"double quote", `say "hi"`, `say "hi"`},
		{"backslash", `a\b`, `a\b`},
		{"trailing backslash", `a\`, `a\`},
		{"escaped quote lookalike", `\'`, `\'`},
		{"escape lookalikes stay literal", `\n\t\u200b\0\\x`, `\n\t\u200b\0\\x`},
		{"newline tab carriage return", "a\nb\tc\rd", "a\nb\tc\rd"},
		{"backslash before newline", "a\\\nb", "a\\\nb"},
		{"control bytes", "\x01\x1f\x7f", "\x01\x1f\x7f"},
		{"unicode", "héllo wörld ✓ 日本語", "héllo wörld ✓ 日本語"},
		{"emoji", "😀👍🏽", "😀👍🏽"},
		{"zero width space", "a\u200bb", "a\u200bb"},
		{"invalid utf-8", "a\xffb", "a\xffb"},
		{"comment markers", "/* x */ // y", "/* x */ // y"},
		{"backticks", "`a`", "`a`"},
		{"cypher text", "'}) MATCH (n) DETACH DELETE n //", "'}) MATCH (n) DETACH DELETE n //"},
		{"long string", strings.Repeat("ab'\\", 10000), strings.Repeat("ab'\\", 10000)},
		{"json integer", 42.0, int64(42)},
		{"json 2.0 is an integer", 2.0, int64(2)},
		{"negative zero", math.Copysign(0, -1), int64(0)},
		{"fraction", 1.5, 1.5},
		{"negative fraction", -0.0025, -0.0025},
		{"small", 1e-7, 1e-7},
		{"large", 1.5e300, 1.5e300},
		{"integral beyond int64", 1e19, 1e19},
		{"int", 7, int64(7)},
		{"max int64", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"min int64", int64(math.MinInt64), int64(math.MinInt64)},
		{"int8", int8(-8), int64(-8)},
		{"uint64", uint64(math.MaxInt64), int64(math.MaxInt64)},
		{"uint8", uint8(255), int64(255)},
		{"float32", float32(0.1), 0.1},
		{"json.Number beyond 2^53", json.Number("9007199254740993"), int64(9007199254740993)},
		{"json.Number fraction", json.Number("1.25"), 1.25},
		{"json.Number exponent", json.Number("1e3"), int64(1000)},
		{"true", true, true},
		{"false", false, false},
		{"nil", nil, nil},
		{"list", []any{1.0, "a", nil, true, []any{}}, []any{int64(1), "a", nil, true, []any{}}},
		{"empty map", map[string]any{}, map[string]any{}},
		{"map with awkward keys", map[string]any{
			"a": 1.0, "first name": "x", "a-b": 2.0, "é": 3.0, "": 4.0, "CYPHER": 5.0, "null": 6.0,
			"a'b": 7.0, `a\b`: 8.0, "a\nb": 9.0, "}": 10.0, "😀": 11.0,
		}, map[string]any{
			"a": int64(1), "first name": "x", "a-b": int64(2), "é": int64(3), "": int64(4), "CYPHER": int64(5), "null": int64(6),
			"a'b": int64(7), `a\b`: int64(8), "a\nb": int64(9), "}": int64(10), "😀": int64(11),
		}},
		{"nested", map[string]any{"a": []any{map[string]any{"b": []any{"c'"}}}}, map[string]any{"a": []any{map[string]any{"b": []any{"c'"}}}}},
		{"[]string", []string{"a", "b'"}, []any{"a", "b'"}},
		{"[]int", []int{1, 2}, []any{int64(1), int64(2)}},
		{"[2]float64", [2]float64{1.5, 2}, []any{1.5, int64(2)}},
		{"map[string]string", map[string]string{"k": "v"}, map[string]any{"k": "v"}},
		{"named types", []any{myString("s"), myInt(3), myFloat(2.5)}, []any{"s", int64(3), 2.5}},
		{"pointer", &str, "x"},
		{"nil pointer", (*string)(nil), nil},
		{"nil slice", []string(nil), nil},
		{"deep nesting", nested(31), nested(31)},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Query(ctx, g, "RETURN $p", map[string]any{"p": tt.in})
			require.NoError(t, err)
			require.Len(t, res.Rows, 1)
			require.Equal(t, tt.want, res.Rows[0][0])
		})
	}
}

func TestParamsNames(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	res, err := c.Query(context.Background(), db.Graph("names"), "RETURN $CYPHER, $return, $_x1, $A",
		map[string]any{"CYPHER": 1, "return": 2, "_x1": 3, "A": 4})
	require.NoError(t, err)
	require.Equal(t, []any{int64(1), int64(2), int64(3), int64(4)}, res.Rows[0])
}

func TestParamsRefused(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	tests := []struct {
		name   string
		params map[string]any
		want   string // in the error text
	}{
		{"empty name", map[string]any{"": 1}, `name ""`},
		{"name starts with digit", map[string]any{"1a": 1}, `name "1a"`},
		{"name with space", map[string]any{"a b": 1}, "not a Cypher identifier"},
		{"name with dash", map[string]any{"a-b": 1}, "not a Cypher identifier"},
		{"non-ASCII name", map[string]any{"é": 1}, "not a Cypher identifier"},
		{"name with backtick", map[string]any{"a`b": 1}, "not a Cypher identifier"},
		{"name injection", map[string]any{"x=1 CREATE (:Pwned) //": 1}, "not a Cypher identifier"},
		{"NUL in string", map[string]any{"p": "a\x00b"}, "NUL"},
		{"NUL deep inside", map[string]any{"p": map[string]any{"k": []any{"ok", "a\x00"}}}, `parameter "p".k[1]`},
		{"NaN", map[string]any{"p": math.NaN()}, "not finite"},
		{"+Inf", map[string]any{"p": math.Inf(1)}, "not finite"},
		{"-Inf in list", map[string]any{"p": []any{math.Inf(-1)}}, "not finite"},
		{"float32 Inf", map[string]any{"p": float32(math.Inf(1))}, "not finite"},
		{"uint64 beyond int64", map[string]any{"p": uint64(1) << 63}, "out of range"},
		{"json.Number NaN", map[string]any{"p": json.Number("NaN")}, "not finite"},
		{"json.Number overflow", map[string]any{"p": json.Number("1e400")}, "not a valid finite number"},
		{"map key with backtick", map[string]any{"p": map[string]any{"a`b": 1}}, "backtick"},
		{"map key injection", map[string]any{"p": map[string]any{"a`: 1} CREATE (:Pwned) //": 1}}, "backtick"},
		{"map key with NUL", map[string]any{"p": map[string]any{"a\x00": 1}}, "NUL"},
		{"[]byte", map[string]any{"p": []byte("x")}, "[]byte"},
		{"struct", map[string]any{"p": struct{ A int }{1}}, "not supported"},
		{"time.Time", map[string]any{"p": time.Unix(0, 0)}, "time.Time"},
		{"func", map[string]any{"p": func() {}}, "not supported"},
		{"chan", map[string]any{"p": make(chan int)}, "not supported"},
		{"complex", map[string]any{"p": complex(1, 2)}, "not supported"},
		{"int-keyed map", map[string]any{"p": map[int]string{1: "a"}}, "map keys must be strings"},
		{"cyclic map", map[string]any{"p": cyclic}, "nest more than"},
		{"too deep", map[string]any{"p": nested(33)}, "nest more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out string
			var err error
			require.NotPanics(t, func() { out, err = falkor.EncodeParams(tt.params) })
			require.ErrorIs(t, err, falkor.ErrInvalidParameter)
			require.Contains(t, err.Error(), tt.want)
			require.Empty(t, out)
		})
	}
}

func TestEncodeParamsDeterministic(t *testing.T) {
	out, err := falkor.EncodeParams(map[string]any{"b": "x'y", "a": map[string]any{"z": 1, "y": 2.5}, "c": nil})
	require.NoError(t, err)
	require.Equal(t, "CYPHER `a`={`y`:2.5,`z`:1} `b`='x\\'y' `c`=null ", out)
}

// An injection attempt through a parameter name, a map key or a string value
// is refused (or stays a value) and creates nothing.
func TestInjectionCreatesNothing(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("inject")
	ctx := context.Background()
	_, err := c.Query(ctx, g, "CREATE (:Seed)", nil)
	require.NoError(t, err)

	refused := []map[string]any{
		{"x=1 CREATE (:Pwned) WITH 1 AS y": 1},
		{"x": 1, "y=2 CREATE (:Pwned)//": 2},
		{"p": map[string]any{"a`: 1} CREATE (:Pwned) RETURN 1 //": 1}},
		{"p": map[string]any{"k": map[string]any{"`}} CREATE (:Pwned) //": 1}}},
		{"p": "x\x00' CREATE (:Pwned) //"},
	}
	for _, params := range refused {
		_, err := c.Query(ctx, g, "RETURN 1", params)
		require.ErrorIs(t, err, falkor.ErrInvalidParameter)
	}
	values := []string{
		"' CREATE (:Pwned) //",
		`\' CREATE (:Pwned) //`,
		"\\",
		"'}) CREATE (:Pwned) //",
		"`) CREATE (:Pwned) //",
		"\n CREATE (:Pwned) //",
	}
	for _, v := range values {
		res, err := c.Query(ctx, g, "MATCH (s:Seed) SET s.v = $v RETURN s.v", map[string]any{"v": v})
		require.NoError(t, err)
		require.Equal(t, v, res.Rows[0][0])
		res, err = c.Query(ctx, g, "RETURN $m", map[string]any{"m": map[string]any{v: v}})
		if strings.Contains(v, "`") {
			require.ErrorIs(t, err, falkor.ErrInvalidParameter)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, map[string]any{v: v}, res.Rows[0][0])
	}
	require.Zero(t, count(t, c, g, "(n:Pwned)"))
	require.Equal(t, int64(1), count(t, c, g, "(n)"))
}

func TestInvalidParameterSendsNothing(t *testing.T) {
	db := startDB(t)
	c := open(t, db, falkor.Options{})
	g := db.Graph("nothing")
	_, err := c.Query(context.Background(), g, "CREATE (:Pwned)", map[string]any{"bad name": 1})
	require.ErrorIs(t, err, falkor.ErrInvalidParameter)
	graphs, err := c.ListGraphs(context.Background())
	require.NoError(t, err)
	require.NotContains(t, graphs, g, "the query must not reach the server")
}
