package authn

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var jsonSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e3`, `-12.25E-2`, `1e400`, `01`, `1.`, `.5`, `-`, `+1`, `1e`, `1e+`,
	`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`,
	`"\u12"`, `"\x"`, "\"a\x01b\"", "\"\xff\xfe\"", "\"é\xc3\"", `"é"`,
	`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":1,}`, `{"a" 1}`, `{,}`, `[1,]`, `[1 2]`, ` { "x" : [ true , false ] } `,
	`{"a":1} x`, `{"a":1}}`, `tru`, `nul`, `trueX`, `{"iss":"https://issuer.example","aud":["a","b"],"exp":1700000000}`,
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkJSON(t, s)
	}
	checkJSON(t, strings.Repeat("[", 10000)+strings.Repeat("]", 10000))
	checkJSON(t, strings.Repeat("[", 10001)+strings.Repeat("]", 10001))
	m, err := parseJSONObject(` {"a":"b"} `)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": "b"}, m)
	for _, s := range []string{`[]`, `null`, `"x"`, ``, `{"a":1}x`} {
		_, err := parseJSONObject(s)
		require.Error(t, err, s)
	}
}

// FuzzJSON is a differential test: the claims decoder must accept exactly
// what encoding/json accepts and produce the same values.
func FuzzJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(checkJSON)
}

func checkJSON(t *testing.T, s string) {
	var want any
	stdErr := json.Unmarshal([]byte(s), &want)
	got, err := parseJSON(s)
	if stdErr != nil {
		require.Error(t, err, "accepted what encoding/json refuses: %q (%v)", s, stdErr)
		return
	}
	require.NoError(t, err, "refused what encoding/json accepts: %q", s)
	require.Equal(t, want, got, "%q", s)
}
