package tenancy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tenantgraph/tenantgraph/graphname"
)

// graphMapper maps one tenant's logical graph names to physical keys.
type graphMapper struct {
	r      *graphname.Resolver
	tenant string
	check  func(graph string) error
	plan   *Plan    // when set, its Graphs allow-list applies
	keys   []string // the physical keys mapped, when collect is set
	// collect makes resolve record the keys it maps.
	collect bool
}

// resolve maps the graph name g of argument arg. Its errors wrap
// ErrInvalidGraph and carry a message for the client, which never holds a
// physical key.
func (m *graphMapper) resolve(arg, g string) (string, error) {
	phys, err := m.r.Resolve(m.tenant, g)
	if err == nil && m.check != nil {
		err = m.check(g)
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "graphname: ")
		msg = strings.TrimPrefix(msg, "tenancy: ")
		return "", &refusal{
			err: fmt.Errorf("%w: argument %q: %w", ErrInvalidGraph, arg, err),
			msg: fmt.Sprintf("argument %q: %s", arg, msg),
		}
	}
	if m.plan != nil && !m.plan.AllowsGraph(g) {
		return "", &refusal{
			err: fmt.Errorf("%w: argument %q: %q is not in plan %q", ErrGraphNotAllowed, arg, g, m.plan.Name),
			msg: fmt.Sprintf("permission denied: argument %q: the tenant's plan does not allow graph %s", arg, quoteName(g)),
		}
	}
	if m.collect {
		m.keys = append(m.keys, phys)
	}
	return phys, nil
}

// rewritten is the outcome of rewriteArguments.
type rewritten struct {
	args      json.RawMessage // the arguments to pass on
	graph     string          // the first logical graph name, for audit
	queryHash [sha256.Size]byte
	hasQuery  bool
	changed   bool // args differs from the input
}

// span is a replacement of raw[start:end] by repl.
type span struct {
	start, end int
	repl       string
	quote      bool // repl is a string to write as a JSON string
}

// rewriteArguments maps the graph arguments named in graphArgs of the raw
// tool arguments through m and hashes the string argument queryArg (when
// hash is set). Arguments must be a JSON object (or empty, or null). A graph argument
// must be a string or an array of strings, must appear once, and must not
// appear spelled in another case (decoders such as encoding/json match keys
// case-insensitively, which would let "GraphName" reach the tool unmapped).
// Errors wrap ErrInvalidArguments or ErrInvalidGraph and are *refusal values.
func rewriteArguments(raw json.RawMessage, graphArgs []string, queryArg string, hash bool, m *graphMapper) (rewritten, error) {
	var out rewritten
	b := raw
	i := skipWS(b, 0)
	if i == len(b) || string(bytes.TrimSpace(b)) == "null" {
		out.args = raw // no arguments: the SDK client sends null for a typed nil map
		return out, nil
	}
	if b[i] != '{' || !json.Valid(b) {
		return out, refuseArgs("tool arguments must be a JSON object")
	}
	var spansBuf [4]span
	spans := spansBuf[:0]
	var seen uint64 // bit i: graphArgs[i] seen
	i++
	for {
		i = skipWS(b, i)
		if b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i++
			continue
		}
		ks := i
		ke, kesc := scanString(b, ks)
		i = skipWS(b, ke)  // at ':'
		i = skipWS(b, i+1) // at the value
		vs := i
		ve := skipValue(b, vs)
		i = ve

		keyRaw := b[ks+1 : ke-1]
		var key string
		if kesc {
			var err error
			if key, err = decodeString(b[ks:ke]); err != nil {
				return out, refuseArgs("tool arguments must be a JSON object")
			}
		}
		match := -1
		for n, name := range graphArgs {
			if (!kesc && string(keyRaw) == name) || (kesc && key == name) {
				match = n
				break
			}
			var folded bool
			if kesc {
				folded = strings.EqualFold(key, name)
			} else {
				folded = strings.EqualFold(string(keyRaw), name)
			}
			if folded {
				return out, refuseArgs(fmt.Sprintf("argument %s: graph arguments must be spelled exactly %q", quoteName(keyOf(keyRaw, key, kesc)), name))
			}
		}
		if match < 0 {
			if hash && queryArg != "" && b[vs] == '"' && ((!kesc && string(keyRaw) == queryArg) || (kesc && key == queryArg)) {
				out.queryHash, out.hasQuery = hashString(b[vs:ve]), true
			}
			continue
		}
		name := graphArgs[match]
		if match < 64 {
			if seen&(1<<match) != 0 {
				return out, refuseArgs(fmt.Sprintf("argument %q appears more than once", name))
			}
			seen |= 1 << match
		}
		if b[vs] == '"' {
			// The common case: one name, written straight into the output.
			g, err := decodeString(b[vs:ve])
			if err != nil {
				return out, refuseArgs(fmt.Sprintf("argument %q must be a string", name))
			}
			phys, err := m.resolve(name, g)
			if err != nil {
				return out, err
			}
			if out.graph == "" {
				out.graph = g
			}
			spans = append(spans, span{vs, ve, phys, true})
			continue
		}
		repl, first, err := mapGraphValue(b[vs:ve], name, m)
		if err != nil {
			return out, err
		}
		if out.graph == "" {
			out.graph = first
		}
		spans = append(spans, span{vs, ve, repl, false})
	}
	if len(spans) == 0 {
		out.args = raw
		return out, nil
	}
	n := len(b)
	for _, s := range spans {
		n += len(s.repl) + 2 - (s.end - s.start)
	}
	buf := make([]byte, 0, n)
	last := 0
	for _, s := range spans {
		buf = append(buf, b[last:s.start]...)
		if s.quote {
			buf = appendJSONString(buf, s.repl)
		} else {
			buf = append(buf, s.repl...)
		}
		last = s.end
	}
	buf = append(buf, b[last:]...)
	out.args, out.changed = buf, true
	return out, nil
}

func keyOf(raw []byte, decoded string, escaped bool) string {
	if escaped {
		return decoded
	}
	return string(raw)
}

// mapGraphValue maps the JSON value v of graph argument name: a string or an
// array of strings. It returns the JSON replacement and the first logical name.
func mapGraphValue(v []byte, name string, m *graphMapper) (repl, first string, err error) {
	switch v[0] {
	case '"':
		g, err := decodeString(v)
		if err != nil {
			return "", "", refuseArgs(fmt.Sprintf("argument %q must be a string", name))
		}
		phys, err := m.resolve(name, g)
		if err != nil {
			return "", "", err
		}
		return quoteJSON(phys), g, nil
	case '[':
		var sb strings.Builder
		sb.WriteByte('[')
		i := skipWS(v, 1)
		n := 0
		for i < len(v) && v[i] != ']' {
			if v[i] == ',' {
				i = skipWS(v, i+1)
				continue
			}
			if v[i] != '"' {
				return "", "", refuseArgs(fmt.Sprintf("argument %q must be a string or an array of strings", name))
			}
			e, _ := scanString(v, i)
			g, err := decodeString(v[i:e])
			if err != nil {
				return "", "", refuseArgs(fmt.Sprintf("argument %q must be a string or an array of strings", name))
			}
			phys, err := m.resolve(name, g)
			if err != nil {
				return "", "", err
			}
			if n > 0 {
				sb.WriteByte(',')
			} else {
				first = g
			}
			sb.WriteString(quoteJSON(phys))
			n++
			i = skipWS(v, e)
		}
		sb.WriteByte(']')
		return sb.String(), first, nil
	}
	return "", "", refuseArgs(fmt.Sprintf("argument %q must be a string or an array of strings", name))
}

func refuseArgs(msg string) error {
	return &refusal{err: fmt.Errorf("%w: %s", ErrInvalidArguments, msg), msg: msg}
}

// hashString returns the SHA-256 of the decoded JSON string token v.
func hashString(v []byte) [sha256.Size]byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return sha256.Sum256(v[1 : len(v)-1])
	}
	s, _ := decodeString(v)
	return sha256.Sum256([]byte(s))
}

// decodeString decodes the JSON string token v (with its quotes) the way
// encoding/json does, including the replacement of invalid UTF-8.
func decodeString(v []byte) (string, error) {
	if bytes.IndexByte(v, '\\') < 0 && isASCII(v) {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// appendJSONString appends s to buf as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return append(buf, quoteJSON(s)...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// quoteJSON returns s as a JSON string.
func quoteJSON(s string) string {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			simple = false
			break
		}
	}
	if simple {
		return `"` + s + `"`
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// quoteName quotes a name from a request for a message: ASCII only, cut
// after 40 bytes.
func quoteName(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return strconv.QuoteToASCII(s[:cut]) + "..." + fmt.Sprintf(" (%d bytes)", len(s))
	}
	return strconv.QuoteToASCII(s)
}

// JSON scanning over input that json.Valid accepted.

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index after the string token starting at b[i] ('"')
// and whether it holds escapes.
func scanString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return len(b), esc
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		e, _ := scanString(b, i)
		return e
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _ := scanString(b, j)
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
