package tenancy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tenantgraph/tenantgraph/graphname"
)

var fuzzGraphArgs = []string{"graphName", "graphs"}

// jsonStrings returns every string (keys and values) of the JSON document b.
func jsonStrings(b []byte) (map[string]int, error) {
	out := make(map[string]int)
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return nil, err
		}
		if s, ok := tok.(string); ok {
			out[s]++
		}
	}
}

func FuzzRewriteArguments(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `null`, `"x"`, `{`, `{"graphName":"users"}`,
		`{"graphName":"users","query":"MATCH (n) RETURN n"}`,
		`{"graphName":["a","b"]}`, `{"graphs":["a", "b_c"], "graphName": "x"}`,
		`{"graphName":"users","graphName":"bob_users"}`,
		`{"graph\u004eame":"bob_users"}`, `{"GraphName":"bob_users"}`, `{"graphname":"x"}`,
		`{"graphName":"bob_users"}`, `{"graphName":"_x"}`, `{"graphName":" users"}`,
		`{"graphName":"us\u0000ers"}`, `{"graphName":"usеrs"}`, `{"graphName":null}`,
		`{"graphName":1}`, `{"graphName":{"graphName":"x"}}`, `{"nested":{"graphName":"bob_x"}}`,
		`{"graphName":"a\"b"}`, `{"graphName":"\ud800"}`, `{"graphName":"x","q":"\u0061cme_"}`,
		`{"a":[1,2,{"b":"c"}],"graphName":"ok","z":true}`, "{\"graphName\":\"\xff\"}",
		`{"graphName":"` + strings.Repeat("a", 200) + `"}`,
	} {
		f.Add([]byte(s))
	}
	r := graphname.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &graphMapper{r: r, tenant: "acme", check: StrictGraphNames}
		rw, err := rewriteArguments(data, fuzzGraphArgs, "query", true, m)
		if err != nil {
			if !errors.Is(err, ErrInvalidArguments) && !errors.Is(err, ErrInvalidGraph) {
				t.Fatalf("unexpected error class: %v", err)
			}
			var rf *refusal
			if !errors.As(err, &rf) || strings.Contains(rf.msg, "acme_") {
				t.Fatalf("refusal message %q", rf.msg)
			}
			return
		}
		out := []byte(rw.args)
		if !rw.changed {
			if !bytes.Equal(out, data) {
				t.Fatal("unchanged arguments differ")
			}
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %q", out)
		}
		// Every graph argument, however a decoder matches keys, is the
		// caller's physical key.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("output is not an object: %v", err)
		}
		for k, v := range obj {
			for _, name := range fuzzGraphArgs {
				if !strings.EqualFold(k, name) {
					continue
				}
				var one string
				var many []string
				switch {
				case json.Unmarshal(v, &one) == nil:
					many = []string{one}
				case json.Unmarshal(v, &many) == nil:
				default:
					t.Fatalf("graph argument %q is %s", k, v)
				}
				for _, key := range many {
					if _, ok := r.Strip("acme", key); !ok {
						t.Fatalf("graph argument %q holds %q, not a key of the caller", k, key)
					}
				}
			}
		}
		var typed struct {
			GraphName *string `json:"graphName"`
		}
		if json.Unmarshal(out, &typed) == nil && typed.GraphName != nil {
			if _, ok := r.Strip("acme", *typed.GraphName); !ok {
				t.Fatalf("a typed decoder sees graphName %q", *typed.GraphName)
			}
		}
		// Any string the rewrite produced is a key of the caller: no key of
		// another tenant ever comes out that did not go in.
		in, err := jsonStrings(data)
		if err != nil {
			t.Fatalf("input accepted but not decodable: %v", err)
		}
		got, err := jsonStrings(out)
		if err != nil {
			t.Fatal(err)
		}
		for s, n := range got {
			if n > in[s] {
				if _, ok := r.Strip("acme", s); !ok {
					t.Fatalf("rewrite produced %q, not a key of the caller", s)
				}
			}
		}
	})
}

func FuzzCleanText(f *testing.F) {
	for _, s := range []string{
		"", "acme_users", "graph acme_users not found", "acme_", "acacme_me_", "acme_acme_x",
		"megaacme_users", "acme_.x", "x acme_a.b. y", "bob_users", "acme_\x00", "ａcme_users",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	r := graphname.Default()
	f.Fuzz(func(t *testing.T, s string, bare bool) {
		c := &cleaner{r: r, tenant: "acme", prefix: "acme_"}
		out, changed := c.text(s, bare)
		if !changed && out != s {
			t.Fatal("unchanged text differs")
		}
		if len(out) > len(s) {
			t.Fatalf("cleaning grew the text: %q -> %q", s, out)
		}
		if bare && strings.Contains(out, "acme_") {
			t.Fatalf("prefix left in %q", out)
		}
		if !strings.Contains(s, "acme_") && changed {
			t.Fatal("changed a text without the prefix")
		}
		// The JSON form cleans the same way.
		raw, _ := json.Marshal(map[string]string{"k": s})
		cleaned, _, err := c.json(raw, bare)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]string
		if err := json.Unmarshal(cleaned, &back); err != nil {
			t.Fatalf("cleaned JSON invalid: %q", cleaned)
		}
		if s == strings.ToValidUTF8(s, "\uFFFD") && back["k"] != out {
			t.Fatalf("JSON cleaning %q differs from text cleaning %q", back["k"], out)
		}
	})
}
