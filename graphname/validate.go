package graphname

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Byte classes.
const (
	classTenant uint8 = 1 << iota // a-z 0-9 '-': Readable tenant ids
	classUpper                    // A-Z: folded under CaseFold
	classGraph                    // A-Z a-z 0-9 '_' '-' '.': graph names
)

var classes = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= classTenant | classGraph
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= classUpper | classGraph
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= classTenant | classGraph
	}
	t['-'] |= classTenant | classGraph
	t['_'] |= classGraph
	t['.'] |= classGraph
	return t
}()

// problem is why a tenant or graph name is refused.
type problem uint8

const (
	noProblem problem = iota
	problemEmpty
	problemTooLong
	problemChar      // a byte outside the allowed set, at an index
	problemUpper     // an upper-case ASCII letter under CaseReject, at an index
	problemDashStart // tenant starts with '-'
	problemDashEnd   // tenant ends with '-'
	problemDotStart  // graph starts with '.'
	problemUTF8      // subject is not valid UTF-8, at an index
)

// segment writes tenant's key segment into buf and returns its length, or
// the problem with tenant and the byte index it concerns. When r.plain, the
// segment is tenant itself and buf is left alone.
func (r *Resolver) segment(buf *[maxSegment + 1]byte, tenant string) (int, problem, int) {
	if len(tenant) == 0 {
		return 0, problemEmpty, 0
	}
	if len(tenant) > r.opts.MaxTenantLen {
		return 0, problemTooLong, 0
	}
	if r.opts.Scheme == OpaqueSubject {
		if !utf8.ValidString(tenant) {
			return 0, problemUTF8, invalidUTF8At(tenant)
		}
		return encodeSubject(buf, tenant), noProblem, 0
	}
	if r.plain {
		// The segment is the tenant itself: check, do not copy.
		p, at := checkTenantID(tenant)
		return len(tenant), p, at
	}
	fold := r.opts.TenantCase == CaseFold
	for i := 0; i < len(tenant) && i < len(buf); i++ {
		c := tenant[i]
		k := classes[c]
		if k&classTenant == 0 {
			if k&classUpper == 0 {
				return 0, problemChar, i
			}
			if !fold {
				return 0, problemUpper, i
			}
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if tenant[0] == '-' {
		return 0, problemDashStart, 0
	}
	if tenant[len(tenant)-1] == '-' {
		return 0, problemDashEnd, len(tenant) - 1
	}
	return len(tenant), noProblem, 0
}

// checkTenantID reports the problem with a Readable tenant id under
// CaseReject, if any, and the byte index it concerns. Its length has been
// checked.
func checkTenantID(tenant string) (problem, int) {
	if i := firstNotIn(tenant, classTenant); i >= 0 {
		if classes[tenant[i]]&classUpper != 0 {
			return problemUpper, i
		}
		return problemChar, i
	}
	if tenant[0] == '-' {
		return problemDashStart, 0
	}
	if tenant[len(tenant)-1] == '-' {
		return problemDashEnd, len(tenant) - 1
	}
	return noProblem, 0
}

// checkGraph reports the problem with graph, if any, and the byte index it
// concerns.
func (r *Resolver) checkGraph(graph string) (problem, int) {
	if len(graph) == 0 {
		return problemEmpty, 0
	}
	if len(graph) > r.opts.MaxGraphLen {
		return problemTooLong, 0
	}
	if graph[0] == '.' {
		return problemDotStart, 0
	}
	if i := firstNotIn(graph, classGraph); i >= 0 {
		return problemChar, i
	}
	return noProblem, 0
}

// firstNotIn returns the index of the first byte of s that is not in class
// (a single class bit), or -1.
func firstNotIn(s string, class uint8) int {
	i := 0
	// Four bytes per step: the class bit survives the AND only if all four
	// bytes have it.
	for ; i+4 <= len(s); i += 4 {
		if classes[s[i]]&classes[s[i+1]]&classes[s[i+2]]&classes[s[i+3]]&class == 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if classes[s[i]]&class == 0 {
			return i
		}
	}
	return -1
}

func invalidUTF8At(s string) int {
	for i, c := range s {
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// tenantError builds the error for a refused tenant.
func (r *Resolver) tenantError(tenant string, p problem, at int) error {
	if r.opts.Scheme == OpaqueSubject {
		// Subjects may be e-mail addresses or other personal data: describe
		// the problem without repeating them.
		var why string
		switch p {
		case problemEmpty:
			why = "subject is empty"
		case problemTooLong:
			why = fmt.Sprintf("subject is %d bytes long, more than %d", len(tenant), r.opts.MaxTenantLen)
		default:
			why = fmt.Sprintf("subject is not valid UTF-8 (byte %d)", at)
		}
		return fmt.Errorf("%w: %s; %s", ErrInvalidTenant, why, r.tenantRule)
	}
	var why string
	switch p {
	case problemEmpty:
		why = "empty"
	case problemTooLong:
		why = fmt.Sprintf("%d bytes long, more than %d", len(tenant), r.opts.MaxTenantLen)
	case problemUpper:
		why = fmt.Sprintf("upper-case %s at byte %d (use lower case)", describeAt(tenant, at), at)
	case problemDashStart:
		why = "starts with '-'"
	case problemDashEnd:
		why = "ends with '-'"
	default:
		why = fmt.Sprintf("%s at byte %d is not allowed", describeAt(tenant, at), at)
	}
	return fmt.Errorf("%w %s: %s; %s", ErrInvalidTenant, quote(tenant), why, r.tenantRule)
}

// graphError builds the error for a refused graph name.
func (r *Resolver) graphError(graph string, p problem, at int) error {
	var why string
	switch p {
	case problemEmpty:
		why = "empty"
	case problemTooLong:
		why = fmt.Sprintf("%d bytes long, more than %d", len(graph), r.opts.MaxGraphLen)
	case problemDotStart:
		why = "starts with '.'"
	default:
		why = fmt.Sprintf("%s at byte %d is not allowed", describeAt(graph, at), at)
	}
	return fmt.Errorf("%w %s: %s; %s", ErrInvalidGraph, quote(graph), why, r.graphRule)
}

// maxQuoted is how many bytes of a refused input an error message shows.
const maxQuoted = 40

// quote returns s as a Go string literal with every non-ASCII or
// non-printable character escaped, so look-alikes and control characters are
// visible. Longer inputs are cut to maxQuoted bytes (at a character
// boundary) and followed by their length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.QuoteToASCII(s)
	}
	cut := maxQuoted
	for cut > maxQuoted-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = maxQuoted // not UTF-8 anyway; the escapes show the bytes
	}
	return strconv.QuoteToASCII(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// describeAt names the character that starts at byte i of s.
func describeAt(s string, i int) string {
	c, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case c == utf8.RuneError && size <= 1:
		return fmt.Sprintf("byte 0x%02x (not UTF-8)", s[i])
	case c == ' ':
		return "space"
	case c < utf8.RuneSelf:
		return describeByte(byte(c))
	default:
		return fmt.Sprintf("%s (U+%04X, not ASCII)", strconv.QuoteRuneToASCII(c), c)
	}
}

// describeByte quotes an ASCII byte as a Go rune literal.
func describeByte(c byte) string {
	if c >= utf8.RuneSelf {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return strconv.QuoteRuneToASCII(rune(c))
}
