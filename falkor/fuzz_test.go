package falkor_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

// encodeSeeds are the seed inputs of FuzzEncodeParams.
var encodeSeeds = []struct {
	name, s, key string
	fl           float64
	n            int64
	b            bool
}{
	{"p", "plain", "key", 1.5, 7, true},
	{"CYPHER", `it's \'quoted\' \\ "x"`, "a b", 2.0, -1, false},
	{"x=1 CREATE (:P) //", "\x00", "a`b", math.Inf(1), math.MinInt64, true},
	{"_1", "line\nbreak\ttab\r\u200b😀\xff", "", 1e300, math.MaxInt64, false},
	{"a", "'}) CREATE (:P) //", "`}) CREATE (:P) //", -0.0025, 0, true},
	{"f", "\\", "é\n", 1e-7, 42, false},
	{"", "\\'", "\x00", math.NaN(), 1, true},
}

// TestEncodeParamsSeeds runs the fuzz seeds through the local parser check
// alone, so that it runs even without a FalkorDB.
func TestEncodeParamsSeeds(t *testing.T) {
	for _, sd := range encodeSeeds {
		fuzzEncode(t, nil, "", sd.name, sd.s, sd.key, sd.fl, sd.n, sd.b)
	}
}

// FuzzEncodeParams: the encoder never panics; it refuses exactly the values
// that cannot be sent; otherwise its output parses back (with a local parser
// that follows FalkorDB's rules) to the same values, and the server returns
// them from RETURN $name.
func FuzzEncodeParams(f *testing.F) {
	for _, sd := range encodeSeeds {
		f.Add(sd.name, sd.s, sd.key, sd.fl, sd.n, sd.b)
	}
	db := startDB(f)
	c := open(f, db, falkor.Options{})
	g := db.Graph("fuzz")
	f.Fuzz(func(t *testing.T, name, s, key string, fl float64, n int64, b bool) {
		fuzzEncode(t, c, g, name, s, key, fl, n, b)
	})
}

// fuzzEncode checks the encoding of parameters built from the inputs; with a
// nil c it uses the local parser only.
func fuzzEncode(t *testing.T, c *falkor.Client, g, name, s, key string, fl float64, n int64, b bool) {
	// 1. Everything together: refused exactly when something in it
	// cannot be sent.
	params := map[string]any{
		"f": fl,
		"n": n,
		"l": []any{s, fl, nil, b, []any{}},
		"m": map[string]any{key: s, "x": map[string]any{}},
	}
	params[name] = s
	checkEncoding(t, c, g, params)

	// 2. The sendable parts alone: they must be encoded and round trip.
	params = map[string]any{"n": n, "b": b}
	list := []any{nil, b}
	if isIdent(name) {
		params[name] = n
	}
	if !strings.ContainsRune(s, 0) {
		params["s"] = s
		list = append(list, s)
		if !strings.ContainsAny(key, "`\x00") {
			params["m"] = map[string]any{key: s}
		}
	}
	if !math.IsNaN(fl) && !math.IsInf(fl, 0) {
		params["f"] = fl
		list = append(list, fl)
	}
	params["l"] = list
	require.Empty(t, unsendable(params))
	checkEncoding(t, c, g, params)
}

// checkEncoding encodes params and checks the outcome: a refusal when
// something cannot be sent, otherwise a prefix that parses back to params
// and, when a server is reachable, comes back from RETURN.
func checkEncoding(t *testing.T, c *falkor.Client, g string, params map[string]any) {
	t.Helper()
	var out string
	var err error
	require.NotPanics(t, func() { out, err = falkor.EncodeParams(params) })
	if reason := unsendable(params); reason != "" {
		require.ErrorIs(t, err, falkor.ErrInvalidParameter, reason)
		return
	}
	require.NoError(t, err)
	got, perr := parsePrefix(out)
	require.NoError(t, perr, "%q", out)
	require.Equal(t, normalize(params), got, "%q", out)

	if c == nil {
		return
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	res, err := c.Query(context.Background(), g, "RETURN $"+strings.Join(names, ", $"), params)
	require.NoError(t, err, "%q", out)
	for i, k := range names {
		requireApprox(t, normalize(params[k]), res.Rows[0][i], k)
	}
}

// unsendable says why params cannot be encoded, or "".
func unsendable(params map[string]any) string {
	for k, v := range params {
		if !isIdent(k) {
			return "name " + strconv.Quote(k)
		}
		if r := unsendableValue(v); r != "" {
			return r
		}
	}
	return ""
}

func unsendableValue(v any) string {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return "NUL in string"
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "non-finite"
		}
	case []any:
		for _, e := range v {
			if r := unsendableValue(e); r != "" {
				return r
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsAny(k, "`\x00") {
				return "map key " + strconv.Quote(k)
			}
			if r := unsendableValue(e); r != "" {
				return r
			}
		}
	}
	return ""
}

func isIdent(s string) bool {
	for i, c := range []byte(s) {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// normalize gives the value the server should hold: integral floats in the
// int64 range are integers.
func normalize(v any) any {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0 {
			return int64(v)
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// requireApprox compares a sent value with the server's: floats to the 15
// significant digits FalkorDB prints.
func requireApprox(t *testing.T, want, got any, where string) {
	t.Helper()
	switch w := want.(type) {
	case float64:
		if s, ok := got.(string); ok && math.Abs(w) > 1.79769313486231e308 && strings.HasSuffix(s, "Infinity") {
			return // printed as 1.79769313486232e+308, which overflows
		}
		g, ok := got.(float64)
		require.True(t, ok, "%s: got %T %v, want %v", where, got, got, w)
		require.InEpsilon(t, w, g, 1e-14, where)
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, where)
		require.Len(t, g, len(w), where)
		for i := range w {
			requireApprox(t, w[i], g[i], where+"["+strconv.Itoa(i)+"]")
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, where)
		require.Len(t, g, len(w), where)
		for k := range w {
			requireApprox(t, w[k], g[k], where+"."+k)
		}
	default:
		require.Equal(t, want, got, where)
	}
}

// parsePrefix reads "CYPHER `name`=value ..." back, following FalkorDB's
// rules: in '...' strings \\ and \' are escapes and every other byte is
// itself; backtick names end at the next backtick.
func parsePrefix(s string) (map[string]any, error) {
	p := &prefixParser{s: s}
	if !strings.HasPrefix(s, "CYPHER ") {
		return nil, fmt.Errorf("no CYPHER")
	}
	p.i = len("CYPHER ")
	out := map[string]any{}
	for p.i < len(s) {
		name, err := p.quoted('`')
		if err != nil {
			return nil, err
		}
		if err := p.expect('='); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.expect(' '); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("duplicate %q", name)
		}
		out[name] = v
	}
	return out, nil
}

type prefixParser struct {
	s string
	i int
}

func (p *prefixParser) expect(c byte) error {
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("want %q at %d", c, p.i)
	}
	p.i++
	return nil
}

// quoted reads a backtick name (no escapes) or a single-quoted string.
func (p *prefixParser) quoted(q byte) (string, error) {
	if err := p.expect(q); err != nil {
		return "", err
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && q == '\'' && p.i < len(p.s) && (p.s[p.i] == '\\' || p.s[p.i] == '\''):
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated %q", q)
}

func (p *prefixParser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("value expected")
	}
	for _, lit := range []struct {
		text string
		v    any
	}{{"null", nil}, {"true", true}, {"false", false}} {
		if strings.HasPrefix(p.s[p.i:], lit.text) {
			p.i += len(lit.text)
			return lit.v, nil
		}
	}
	switch p.s[p.i] {
	case '\'':
		return p.quoted('\'')
	case '[':
		p.i++
		out := []any{}
		for first := true; ; first = false {
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return out, nil
			}
			if !first {
				if err := p.expect(','); err != nil {
					return nil, err
				}
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	case '{':
		p.i++
		out := map[string]any{}
		for first := true; ; first = false {
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return out, nil
			}
			if !first {
				if err := p.expect(','); err != nil {
					return nil, err
				}
			}
			k, err := p.quoted('`')
			if err != nil {
				return nil, err
			}
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
	}
	j := p.i
	for j < len(p.s) && strings.IndexByte("0123456789+-.eE", p.s[j]) >= 0 {
		j++
	}
	num := p.s[p.i:j]
	p.i = j
	if strings.ContainsAny(num, ".eE") {
		return strconv.ParseFloat(num, 64)
	}
	return strconv.ParseInt(num, 10, 64)
}
