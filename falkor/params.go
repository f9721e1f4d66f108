package falkor

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Parameters travel to FalkorDB as a text prefix of the query:
//
//	CYPHER `name`='value' `n`=1 MATCH ... $name ...
//
// The encoder below writes that prefix itself (falkordb-go's encoder neither
// quotes names nor escapes strings correctly, and panics on many types).
// Rules, each checked against FalkorDB 4.16 by a round trip (RETURN $p):
//
//   - Parameter names must be Cypher identifiers (ASCII letters, digits and
//     _, not starting with a digit). They are written in backticks, so that
//     keywords such as CYPHER are fine as names.
//   - Map keys may be any string without a backtick or a NUL byte; they are
//     written in backticks. FalkorDB's parameter parser keeps backtick
//     contents verbatim and knows no escape for a backtick inside them (a
//     doubled backtick is a syntax error there), so keys with one are refused.
//   - Strings are written in single quotes. FalkorDB turns \\ into \ and \'
//     into ' and keeps every other byte as it is, raw newlines, tabs and
//     invalid UTF-8 included; unknown escapes such as \u200b stay literal
//     text. So only \ and ' are escaped. A NUL byte ends the query text on
//     the server and has no escape: strings with one are refused.
//   - Integral numbers within the int64 range are written as integers (JSON
//     gives float64 for 2 as well as 2.0); other finite numbers in Go's
//     shortest round-trip form, which the server parses back to the same
//     float64. NaN and ±Inf have no literal and are refused.
//   - Lists and maps nest up to maxParamDepth levels.

// maxParamDepth bounds the nesting of lists and maps in a parameter value (and
// so the recursion of the encoder on cyclic Go values).
const maxParamDepth = 32

// encodeError is a parameter value that cannot be encoded; path locates it
// inside the parameter (e.g. ".tags[2]").
type encodeError struct {
	path string
	msg  string
}

func (e *encodeError) at(seg string) *encodeError {
	e.path = seg + e.path
	return e
}

// appendParams appends the CYPHER prefix for params (names sorted, so the same
// parameters always give the same text) to dst. It returns dst unchanged if
// params is empty.
func appendParams(dst []byte, params map[string]any) ([]byte, error) {
	if len(params) == 0 {
		return dst, nil
	}
	dst = append(dst, "CYPHER "...)
	if len(params) == 1 {
		for name, v := range params {
			return appendParam(dst, name, v)
		}
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	var err error
	for _, name := range names {
		if dst, err = appendParam(dst, name, params[name]); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendParam(dst []byte, name string, v any) ([]byte, error) {
	if !isIdentifier(name) {
		return dst, fmt.Errorf("%w: name %q is not a Cypher identifier (use ASCII letters, digits and _, not starting with a digit)", ErrInvalidParameter, name)
	}
	dst = append(dst, '`')
	dst = append(dst, name...)
	dst = append(dst, "`="...)
	dst, e := appendValue(dst, v, 0)
	if e != nil {
		return dst, fmt.Errorf("%w: parameter %q%s: %s", ErrInvalidParameter, name, e.path, e.msg)
	}
	return append(dst, ' '), nil
}

// isIdentifier reports whether s is a plain Cypher identifier.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// appendValue appends the Cypher literal of v.
func appendValue(dst []byte, v any, depth int) ([]byte, *encodeError) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v), nil
	case float64:
		return appendFloat(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case uint:
		return appendUint(dst, uint64(v))
	case uint64:
		return appendUint(dst, v)
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case float32:
		return appendFloat32(dst, v)
	case json.Number:
		return appendNumber(dst, v)
	case []any:
		if depth >= maxParamDepth {
			return dst, tooDeep()
		}
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err *encodeError
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err.at("[" + strconv.Itoa(i) + "]")
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		if depth >= maxParamDepth {
			return dst, tooDeep()
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err *encodeError
			if dst, err = appendKey(dst, k); err != nil {
				return dst, err
			}
			if dst, err = appendValue(dst, v[k], depth+1); err != nil {
				return dst, err.at(keyPath(k))
			}
		}
		return append(dst, '}'), nil
	case []byte:
		return dst, &encodeError{msg: "[]byte is not supported; pass a string or a list of numbers"}
	}
	return appendReflect(dst, reflect.ValueOf(v), depth)
}

// appendReflect handles the types the fast path does not: named types of
// basic kinds, other slices, arrays and string-keyed maps, and pointers.
func appendReflect(dst []byte, rv reflect.Value, depth int) ([]byte, *encodeError) {
	switch rv.Kind() {
	case reflect.String:
		return appendString(dst, rv.String())
	case reflect.Bool:
		return strconv.AppendBool(dst, rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(dst, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return appendUint(dst, rv.Uint())
	case reflect.Float32:
		return appendFloat32(dst, float32(rv.Float()))
	case reflect.Float64:
		return appendFloat(dst, rv.Float())
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return append(dst, "null"...), nil
		}
		if depth >= maxParamDepth {
			return dst, tooDeep()
		}
		return appendValue(dst, rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return dst, &encodeError{msg: rv.Type().String() + " is not supported; pass a string or a list of numbers"}
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(dst, "null"...), nil
		}
		if depth >= maxParamDepth {
			return dst, tooDeep()
		}
		dst = append(dst, '[')
		for i := range rv.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err *encodeError
			if dst, err = appendValue(dst, rv.Index(i).Interface(), depth+1); err != nil {
				return dst, err.at("[" + strconv.Itoa(i) + "]")
			}
		}
		return append(dst, ']'), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return dst, &encodeError{msg: rv.Type().String() + " is not supported: map keys must be strings"}
		}
		if rv.IsNil() {
			return append(dst, "null"...), nil
		}
		if depth >= maxParamDepth {
			return dst, tooDeep()
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err *encodeError
			if dst, err = appendKey(dst, k.String()); err != nil {
				return dst, err
			}
			if dst, err = appendValue(dst, rv.MapIndex(k).Interface(), depth+1); err != nil {
				return dst, err.at(keyPath(k.String()))
			}
		}
		return append(dst, '}'), nil
	}
	if !rv.IsValid() {
		return append(dst, "null"...), nil
	}
	return dst, &encodeError{msg: rv.Type().String() + " is not supported (use nil, bool, numbers, string, lists and map[string]any)"}
}

func tooDeep() *encodeError {
	return &encodeError{msg: "lists and maps nest more than " + strconv.Itoa(maxParamDepth) + " levels"}
}

func keyPath(k string) string {
	if isIdentifier(k) {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

// appendKey appends a map key in backticks followed by a colon.
func appendKey(dst []byte, k string) ([]byte, *encodeError) {
	if i := strings.IndexAny(k, "`\x00"); i >= 0 {
		what := "a backtick"
		if k[i] == 0 {
			what = "a NUL byte"
		}
		return dst, &encodeError{path: keyPath(k), msg: "map key contains " + what + ", which FalkorDB's parameter syntax cannot carry"}
	}
	dst = append(dst, '`')
	dst = append(dst, k...)
	return append(dst, "`:"...), nil
}

// appendString appends s as a single-quoted Cypher string.
func appendString(dst []byte, s string) ([]byte, *encodeError) {
	if strings.IndexByte(s, 0) >= 0 {
		return dst, &encodeError{msg: "string contains a NUL byte, which FalkorDB cannot receive"}
	}
	dst = append(dst, '\'')
	if !strings.ContainsAny(s, `\'`) {
		dst = append(dst, s...)
		return append(dst, '\''), nil
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\'' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '\''), nil
}

const twoTo63 = 9223372036854775808.0 // 2^63, exactly representable

func appendFloat(dst []byte, f float64) ([]byte, *encodeError) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, &encodeError{msg: "number is not finite (NaN and ±Inf have no Cypher literal)"}
	}
	if f == math.Trunc(f) && f >= -twoTo63 && f < twoTo63 {
		return strconv.AppendInt(dst, int64(f), 10), nil
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
}

// appendFloat32 sends the shortest decimal that reads back as the same
// float32 (0.1, not 0.10000000149011612).
func appendFloat32(dst []byte, f float32) ([]byte, *encodeError) {
	g, perr := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if perr != nil {
		return appendFloat(dst, float64(f)) // non-finite: refused there
	}
	return appendFloat(dst, g)
}

func appendUint(dst []byte, u uint64) ([]byte, *encodeError) {
	if u > math.MaxInt64 {
		return dst, &encodeError{msg: "integer " + strconv.FormatUint(u, 10) + " is out of range (FalkorDB integers are 64-bit signed)"}
	}
	return strconv.AppendUint(dst, u, 10), nil
}

// appendNumber appends a JSON number: exactly when it is an integer in range,
// as a float64 otherwise.
func appendNumber(dst []byte, n json.Number) ([]byte, *encodeError) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return strconv.AppendInt(dst, i, 10), nil
	}
	f, perr := strconv.ParseFloat(string(n), 64)
	if perr != nil {
		return dst, &encodeError{msg: "not a valid finite number"}
	}
	return appendFloat(dst, f)
}
