package falkor

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

func TestDecodeQueryInput(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		want    queryInput
		wantErr string // a part of the error; "" for none
	}{
		{name: "minimal", args: `{"graphName":"g","query":"RETURN 1"}`, want: queryInput{GraphName: "g", Query: "RETURN 1"}},
		{name: "null parameters", args: `{"graphName":"g","query":"q","parameters":null}`, want: queryInput{GraphName: "g", Query: "q"}},
		{name: "exact numbers", args: `{"graphName":"g","query":"q","parameters":{"big":9007199254740993,"f":1.5,"s":"x","l":[1,{"a":null}]}}`,
			want: queryInput{GraphName: "g", Query: "q", Parameters: map[string]any{
				"big": json.Number("9007199254740993"), "f": json.Number("1.5"), "s": "x",
				"l": []any{json.Number("1"), map[string]any{"a": nil}}}}},
		{name: "escaped key", args: `{"graph\u004eame":"g","query":"q"}`, want: queryInput{GraphName: "g", Query: "q"}},
		{name: "duplicate key: the last, as the SDK", args: `{"graphName":"a","graphName":"g","query":"q"}`, want: queryInput{GraphName: "g", Query: "q"}},
		{name: "unicode", args: `{"graphName":"графы","query":"RETURN '\u00e9'"}`, want: queryInput{GraphName: "графы", Query: "RETURN 'é'"}},

		{name: "empty", args: ``, wantErr: `missing properties ["graphName","query"]`},
		{name: "null", args: `null`, wantErr: `missing properties ["graphName","query"]`},
		{name: "empty object", args: `{}`, wantErr: `missing properties ["graphName","query"]`},
		{name: "no query", args: `{"graphName":"g"}`, wantErr: `missing properties ["query"]`},
		{name: "array", args: `[1]`, wantErr: "must be a JSON object"},
		{name: "string", args: `"g"`, wantErr: "must be a JSON object"},
		{name: "broken", args: `{"graphName":"g"`, wantErr: "must be a JSON object"},
		{name: "trailing garbage", args: `{"graphName":"g","query":"q"} x`, wantErr: "must be a JSON object"},
		// encoding/json would give "GraphName" to the graphName field; a
		// tenancy middleware maps only "graphName".
		{name: "key in another case", args: `{"graphName":"g","GraphName":"other_tenant_g","query":"q"}`, wantErr: `unexpected additional properties ["GraphName"]`},
		{name: "only a key in another case", args: `{"GRAPHNAME":"g","query":"q"}`, wantErr: `unexpected additional properties ["GRAPHNAME"]`},
		{name: "unknown key", args: `{"graphName":"g","query":"q","timeout":5}`, wantErr: `unexpected additional properties ["timeout"]`},
		{name: "graph name not a string", args: `{"graphName":["g"],"query":"q"}`, wantErr: `"graphName" must be a string`},
		{name: "graph name null", args: `{"graphName":null,"query":"q"}`, wantErr: `"graphName" must be a string`},
		{name: "empty graph name", args: `{"graphName":"","query":"q"}`, wantErr: `"graphName" must not be empty`},
		{name: "query a number", args: `{"graphName":"g","query":42}`, wantErr: `"query" must be a string`},
		{name: "empty query", args: `{"graphName":"g","query":""}`, wantErr: `"query" must not be empty`},
		{name: "parameters an array", args: `{"graphName":"g","query":"q","parameters":[1]}`, wantErr: `"parameters" must be an object or null`},
		{name: "parameters a string", args: `{"graphName":"g","query":"q","parameters":"{}"}`, wantErr: `"parameters" must be an object or null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeQueryInput(json.RawMessage(tt.args))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.True(t, strings.HasPrefix(err.Error(), `validating "arguments": `), err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// sdkValidator checks tool arguments the way the go-sdk's typed tools do
// (mcp.AddTool: the input schema, then decoding into queryInput), through a
// real in-memory client and server.
type sdkValidator struct {
	cs  *mcp.ClientSession
	got chan queryInput
}

func newSDKValidator(tb testing.TB) *sdkValidator {
	v := &sdkValidator{got: make(chan queryInput, 1)}
	ctx := context.Background()
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk", Version: "v0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "q", InputSchema: querySchema("graph")},
		func(_ context.Context, _ *mcp.CallToolRequest, in queryInput) (*mcp.CallToolResult, any, error) {
			v.got <- in
			return textResult("ok"), nil, nil
		})
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { ss.Close() })
	v.cs, err = mcp.NewClient(&mcp.Implementation{Name: "c", Version: "v0"}, nil).Connect(ctx, ct, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { v.cs.Close() })
	return v
}

// check returns the input the SDK's tool received, or ok false when the
// SDK refused the arguments.
func (v *sdkValidator) check(tb testing.TB, args json.RawMessage) (in queryInput, ok bool) {
	res, err := v.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "q", Arguments: args})
	require.NoError(tb, err)
	if res.IsError {
		return in, false
	}
	return <-v.got, true
}

// FuzzDecodeQueryInput: decodeQueryInput accepts exactly the arguments the
// go-sdk's schema validation accepts, and decodes the same graph name and
// query (parameters differ by design: the SDK decodes numbers as float64,
// decodeQueryInput keeps them exact).
func FuzzDecodeQueryInput(f *testing.F) {
	for _, s := range []string{
		`{"graphName":"g","query":"RETURN 1"}`,
		`{"graphName":"g","query":"q","parameters":{"id":1}}`,
		`{"graphName":"g","query":"q","parameters":null}`,
		`{"graphName":"g","GraphName":"h","query":"q"}`,
		`{"graph\u004eame":"g","query":"q"}`,
		`{"graphName":"a","graphName":"g","query":"q"}`,
		`{"graphName":"","query":"q"}`,
		`{"graphName":"g","query":42}`,
		`{"graphName":"g","query":"q","parameters":[1]}`,
		`{"graphName":"g","query":"q","x":1}`,
		`{"graphName":"\ud800","query":"q"}`,
		`{}`, `null`, `[]`, `"x"`,
	} {
		f.Add(s)
	}
	v := newSDKValidator(f)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeQueryInput(json.RawMessage(s))
		if err == nil {
			require.NotEmpty(t, got.GraphName)
			require.NotEmpty(t, got.Query)
		}
		// The client can send only what encoding/json can marshal as a
		// RawMessage; what it cannot, no SDK server ever receives.
		if !json.Valid([]byte(s)) {
			require.Error(t, err, "invalid JSON accepted")
			return
		}
		want, ok := v.check(t, json.RawMessage(s))
		require.Equal(t, ok, err == nil, "SDK accepts: %v, decodeQueryInput: %v", ok, err)
		if ok {
			require.Equal(t, want.GraphName, got.GraphName)
			require.Equal(t, want.Query, got.Query)
			require.Equal(t, len(want.Parameters), len(got.Parameters))
		}
	})
}

// FuzzJSONValue: jsonScan decodes valid JSON exactly as encoding/json does
// into an any with UseNumber.
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null,"x\u00e9\n",{"c":-1.5e3}],"a":2}`,
		` [ 1 , "\ud800" , {} , [] ] `, `"\xff\xfe"`, `0`, `-0.0e-0`, `{"":{"":[[[]]]}}`,
		`{"k\"ey":"v\\"}`, `"é"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var want any
		require.NoError(t, dec.Decode(&want))
		sc := jsonScan{b: []byte(s)}
		require.Equal(t, want, sc.value())
		sc.ws()
		require.Equal(t, len(s), sc.i, "not at the end")
	})
}

// BenchmarkDecodeQueryInput: the arguments of a point lookup, decoded and
// checked on every query tool call.
func BenchmarkDecodeQueryInput(b *testing.B) {
	args := json.RawMessage(`{"graphName":"acme_users","query":"MATCH (n:N {id: $id}) RETURN n.id AS id, n.name AS name","parameters":{"id":389}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeQueryInput(args); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzWriteJSON: writeJSON writes json.Marshal's bytes for the values of a
// row (plain values by hand, the rest by encoding/json).
func FuzzWriteJSON(f *testing.F) {
	f.Add("plain", int64(7), true, 1.5)
	f.Add("<&>\"\\\u2028\xff\x01", int64(-1<<63), false, 1e21)
	f.Fuzz(func(t *testing.T, s string, n int64, flag bool, x float64) {
		for _, v := range []any{s, n, flag, x, nil, []any{s, n, []any{flag, nil}, map[string]any{s: x}}, []string{s, s}, []any(nil), []string(nil)} {
			want, err := json.Marshal(v)
			if err != nil {
				continue // NaN, ±Inf: quoted text, not JSON
			}
			var b strings.Builder
			writeJSON(&b, v)
			require.Equal(t, string(want), b.String())
		}
	})
}

// BenchmarkFormatResult: the text of a one-row lookup result.
func BenchmarkFormatResult(b *testing.B) {
	res := &Result{Columns: []string{"id", "name"}, Rows: [][]any{{int64(389), "n389"}}, Stats: Stats{ExecutionTimeMs: 0.25, Cached: true}}
	b.ReportAllocs()
	for b.Loop() {
		formatResult(res, 1000)
	}
}
