package falkor

import (
	"encoding/json"
	"unicode/utf8"
)

// A small decoder for tool arguments, which decodeQueryInput runs on every
// call: the JSON has passed json.Valid, so it only splits it. Values decode
// as encoding/json decodes them into an any with UseNumber (strings with
// escapes or non-ASCII bytes are handed to encoding/json, which replaces
// invalid UTF-8 as usual; duplicate keys: the last wins). FuzzJSONValue
// compares it with encoding/json. It is several times cheaper than
// json.Unmarshal into a map of json.RawMessage and a json.Decoder for the
// parameters, which examples/bench measured at 18 µs per call.

// jsonScan walks valid JSON.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str returns the end of the string that starts at s.i, and whether it
// holds escapes.
func (s *jsonScan) str() (end int, escaped bool) {
	for i := s.i + 1; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return len(s.b), escaped
}

// skip moves past the value at s.i.
func (s *jsonScan) skip() {
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			s.i, _ = s.str()
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return // the end of the enclosing value
			}
			depth--
			if depth == 0 {
				s.i++
				return
			}
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return
			}
		}
		s.i++
	}
}

// members calls f with each key of the object at s.i and the span of its
// value, and leaves s.i after the object.
func (s *jsonScan) members(f func(key string, v []byte)) {
	s.i++ // '{'
	for {
		s.ws()
		switch s.b[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		ks := s.i
		ke, esc := s.str()
		s.i = ke
		s.ws()
		s.i++ // ':'
		s.ws()
		vs := s.i
		s.skip()
		f(jsonString(s.b[ks:ke], esc), s.b[vs:s.i])
	}
}

// jsonString decodes a valid JSON string literal.
func jsonString(lit []byte, escaped bool) string {
	body := lit[1 : len(lit)-1]
	if !escaped && utf8.Valid(body) {
		return string(body)
	}
	var out string
	_ = json.Unmarshal(lit, &out) // valid JSON: no error
	return out
}

// value decodes the value at s.i as encoding/json would into an any with
// UseNumber.
func (s *jsonScan) value() any {
	s.ws()
	switch c := s.b[s.i]; {
	case c == '"':
		end, esc := s.str()
		v := jsonString(s.b[s.i:end], esc)
		s.i = end
		return v
	case c == '{':
		m := map[string]any{}
		s.members(func(k string, v []byte) {
			m[k] = (&jsonScan{b: v}).value()
		})
		return m
	case c == '[':
		l := []any{}
		s.i++
		for {
			s.ws()
			switch s.b[s.i] {
			case ']':
				s.i++
				return l
			case ',':
				s.i++
				continue
			}
			l = append(l, s.value())
		}
	case c == 't':
		s.i += 4
		return true
	case c == 'f':
		s.i += 5
		return false
	case c == 'n':
		s.i += 4
		return nil
	default:
		start := s.i
		s.skip()
		return json.Number(s.b[start:s.i])
	}
}
