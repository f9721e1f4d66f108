package tenancy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tenantgraph/tenantgraph/graphname"
)

// cleaner removes a tenant's physical key prefix from what goes back to the
// tenant, and recognises error texts that would reveal internals.
type cleaner struct {
	r      *graphname.Resolver
	tenant string
	prefix string // the tenant's physical prefix, e.g. "acme_"

	// For reveals: what the request itself said (tokens found there are the
	// caller's own words) and the extra detector of the Config.
	request []byte
	tool    string
	known   map[string]ToolPolicy
	extra   func(string) bool
}

// isGraphByte reports whether c may appear in a graph name (graphname's
// contract: ASCII letters, digits, '_', '-' and '.').
func isGraphByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// text replaces every occurrence of a physical key of the tenant (prefix +
// valid graph name, not preceded by a key character) by its graph name. When
// bare is set, remaining occurrences of the prefix are removed as well. It
// reports whether s changed.
func (c *cleaner) text(s string, bare bool) (string, bool) {
	i := strings.Index(s, c.prefix)
	if i < 0 {
		return s, false
	}
	var b strings.Builder
	last := 0
	for i >= 0 {
		done := false
		if i == 0 || !isGraphByte(s[i-1]) {
			start := i + len(c.prefix)
			end := start
			for end < len(s) && end-start < graphname.MaxGraphLen && isGraphByte(s[end]) {
				end++
			}
			for j := end; j > start; j-- {
				if g, ok := c.r.Strip(c.tenant, s[i:j]); ok {
					b.WriteString(s[last:i])
					b.WriteString(g)
					last, done = j, true
					break
				}
			}
		}
		if !done && bare {
			b.WriteString(s[last:i])
			last, done = i+len(c.prefix), true
		}
		next := i + 1
		if done {
			next = last
		}
		k := strings.Index(s[next:], c.prefix)
		if k < 0 {
			break
		}
		i = next + k
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	out := b.String()
	// Removing a bare prefix can join its neighbours into a new one
	// ("ac" + "acme_" + "me_"): repeat until none is left.
	for bare && strings.Contains(out, c.prefix) {
		out = strings.ReplaceAll(out, c.prefix, "")
	}
	return out, true
}

// json cleans every string (keys and values) of the JSON document raw. It
// fails when raw is not valid JSON.
func (c *cleaner) json(raw json.RawMessage, bare bool) (json.RawMessage, bool, error) {
	hasEsc := bytes.IndexByte(raw, '\\') >= 0
	if !hasEsc && !bytes.Contains(raw, []byte(c.prefix)) {
		return raw, false, nil
	}
	if !json.Valid(raw) {
		return nil, false, fmt.Errorf("structured content is not valid JSON")
	}
	var out []byte
	last := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		e, esc := scanString(raw, i)
		var s string
		if esc {
			if err := json.Unmarshal(raw[i:e], &s); err != nil {
				return nil, false, err
			}
		} else {
			s = string(raw[i+1 : e-1])
		}
		if cs, changed := c.text(s, bare); changed {
			if out == nil {
				out = make([]byte, 0, len(raw))
			}
			out = append(out, raw[last:i]...)
			q, _ := json.Marshal(cs)
			out = append(out, q...)
			last = e
		}
		i = e - 1
	}
	if out == nil {
		return raw, false, nil
	}
	out = append(out, raw[last:]...)
	return out, true, nil
}

// value cleans an arbitrary JSON-marshalable value by a JSON round trip into
// a value of the same shape (used for Meta maps and for structured content
// that is not yet JSON).
func (c *cleaner) meta(m mcp.Meta) (mcp.Meta, bool, error) {
	if len(m) == 0 {
		return m, false, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, false, err
	}
	cleaned, changed, err := c.json(raw, false)
	if err != nil || !changed {
		return m, false, err
	}
	var out mcp.Meta
	if err := json.Unmarshal(cleaned, &out); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// result returns res cleaned of the tenant's keys: text of every content,
// structured content, resource links and embedded resources, and meta. It
// never modifies res; it returns res itself when nothing changed. Tool error
// results (IsError) that would reveal internals are replaced by generic(),
// reported by the second result.
func (c *cleaner) result(res *mcp.CallToolResult, generic func() string) (*mcp.CallToolResult, bool, error) {
	if res == nil {
		return nil, false, nil
	}
	isErr := res.IsError
	var contents []mcp.Content
	for i, ct := range res.Content {
		nc, changed, err := c.content(ct, isErr)
		if err != nil {
			return nil, false, err
		}
		if changed {
			if contents == nil {
				contents = make([]mcp.Content, len(res.Content))
				copy(contents, res.Content)
			}
			contents[i] = nc
		}
	}
	var structured any
	sChanged := false
	if res.StructuredContent != nil {
		raw, err := structuredJSON(res.StructuredContent)
		if err != nil {
			return nil, false, err
		}
		cleaned, changed, err := c.json(raw, isErr)
		if err != nil {
			return nil, false, err
		}
		if changed {
			structured, sChanged = cleaned, true
		}
	}
	meta, mChanged, err := c.meta(res.Meta)
	if err != nil {
		return nil, false, err
	}
	out := res
	if contents != nil || sChanged || mChanged {
		cp := *res
		if contents != nil {
			cp.Content = contents
		}
		if sChanged {
			cp.StructuredContent = structured
		}
		if mChanged {
			cp.Meta = meta
		}
		out = &cp
	}
	if isErr && c.resultReveals(out) {
		cp := *res // keeps what the SDK set on the tool's result
		cp.Meta, cp.StructuredContent = nil, nil
		cp.IsError, cp.Content = true, []mcp.Content{&mcp.TextContent{Text: generic()}}
		return &cp, true, nil
	}
	return out, false, nil
}

// content cleans one content item, returning a new item when it changed.
func (c *cleaner) content(ct mcp.Content, bare bool) (mcp.Content, bool, error) {
	switch v := ct.(type) {
	case *mcp.TextContent:
		t, ch := c.text(v.Text, bare)
		m, mch, err := c.meta(v.Meta)
		if err != nil || !(ch || mch) {
			return ct, false, err
		}
		cp := *v
		cp.Text, cp.Meta = t, m
		return &cp, true, nil
	case *mcp.ResourceLink:
		uri, c1 := c.text(v.URI, bare)
		name, c2 := c.text(v.Name, bare)
		title, c3 := c.text(v.Title, bare)
		desc, c4 := c.text(v.Description, bare)
		m, c5, err := c.meta(v.Meta)
		if err != nil || !(c1 || c2 || c3 || c4 || c5) {
			return ct, false, err
		}
		cp := *v
		cp.URI, cp.Name, cp.Title, cp.Description, cp.Meta = uri, name, title, desc, m
		return &cp, true, nil
	case *mcp.EmbeddedResource:
		m, mch, err := c.meta(v.Meta)
		if err != nil {
			return nil, false, err
		}
		var rc *mcp.ResourceContents
		if v.Resource != nil {
			uri, c1 := c.text(v.Resource.URI, bare)
			text, c2 := c.text(v.Resource.Text, bare)
			rm, c3, err := c.meta(v.Resource.Meta)
			if err != nil {
				return nil, false, err
			}
			if c1 || c2 || c3 {
				cp := *v.Resource
				cp.URI, cp.Text, cp.Meta = uri, text, rm
				rc = &cp
			}
		}
		if rc == nil && !mch {
			return ct, false, nil
		}
		cp := *v
		if rc != nil {
			cp.Resource = rc
		}
		cp.Meta = m
		return &cp, true, nil
	case *mcp.ImageContent, *mcp.AudioContent:
		// Binary data is passed as is; only meta is cleaned.
		var m mcp.Meta
		switch v := v.(type) {
		case *mcp.ImageContent:
			m = v.Meta
		case *mcp.AudioContent:
			m = v.Meta
		}
		nm, ch, err := c.meta(m)
		if err != nil || !ch {
			return ct, false, err
		}
		switch v := v.(type) {
		case *mcp.ImageContent:
			cp := *v
			cp.Meta = nm
			return &cp, true, nil
		case *mcp.AudioContent:
			cp := *v
			cp.Meta = nm
			return &cp, true, nil
		}
	}
	// Other content types: keep them only if their JSON form holds nothing
	// to clean (fail closed).
	raw, err := json.Marshal(ct)
	if err != nil {
		return nil, false, err
	}
	if _, changed, err := c.json(raw, bare); err != nil || changed {
		return &mcp.TextContent{Text: "[content removed]"}, true, err
	}
	return ct, false, nil
}

// resultReveals reports whether any text of an error result would reveal
// internals.
func (c *cleaner) resultReveals(res *mcp.CallToolResult) bool {
	for _, ct := range res.Content {
		switch v := ct.(type) {
		case *mcp.TextContent:
			if c.reveals(v.Text) {
				return true
			}
		case *mcp.ResourceLink:
			if c.reveals(v.URI) || c.reveals(v.Name) || c.reveals(v.Description) {
				return true
			}
		case *mcp.EmbeddedResource:
			if v.Resource != nil && (c.reveals(v.Resource.URI) || c.reveals(v.Resource.Text)) {
				return true
			}
		}
	}
	if res.StructuredContent != nil {
		raw, err := structuredJSON(res.StructuredContent)
		if err != nil || c.reveals(string(raw)) {
			return true
		}
	}
	return false
}

// Patterns of texts that reveal internals.
var revealing = regexp.MustCompile(strings.Join([]string{
	`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`,          // IPv4 address
	`\[[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]`,  // bracketed IPv6 address
	`\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b`,    // full IPv6 address
	`[0-9A-Fa-f]{0,4}::[0-9A-Fa-f]{1,4}\b`,            // compressed IPv6 address
	`\b[A-Za-z][A-Za-z0-9.-]*:\d{2,5}\b`,              // host:port
	`(?i)\bdial (tcp|udp|unix)`,                       // Go net errors
	`(?i)\b(redis|rediss|falkor|falkors|unix|tcp)://`, // connection URLs
	`\.sock\b`,         // unix sockets
	`goroutine \d+ \[`, // Go stack traces
	`(?i)\bpanic:`,     // Go panics
	`\.(go|py|js|mjs|cjs|ts|rs|java|c|cc|cpp|rb):\d+`, // file.go:123
	`\bat [^\s()]+ \([^)]*:\d+:\d+\)`,                 // JavaScript stack frames
	`File "[^"]+", line \d+`,                          // Python tracebacks
	`(?i)traceback \(most recent call last\)`,         // Python tracebacks
}, "|"))

// reveals reports whether the error text s, already cleaned of the tenant's
// own keys, would reveal internals: addresses, stack traces, source
// positions, or a physical key of another tenant (a token made of a tenant
// segment, the separator and a graph name that the request itself did not
// contain and that is not a tool name).
func (c *cleaner) reveals(s string) bool {
	if s == "" {
		return false
	}
	if revealing.MatchString(s) {
		return true
	}
	if c.extra != nil && c.extra(s) {
		return true
	}
	return c.foreignKey(s)
}

// foreignKey reports whether s holds a token that has the shape of a
// physical key of some tenant other than the caller.
func (c *cleaner) foreignKey(s string) bool {
	sep := c.r.Options().Separator
	for i := 0; i < len(s); {
		if !isGraphByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isGraphByte(s[j]) {
			j++
		}
		tok := s[i:j]
		i = j
		k := strings.IndexByte(tok, sep)
		if k <= 0 || k > 63 || k == len(tok)-1 {
			continue
		}
		if !isSegment(tok[:k]) || c.r.ValidateGraph(tok[k+1:]) != nil {
			continue
		}
		if strings.HasPrefix(tok, c.prefix) {
			continue // the caller's own (bare) key
		}
		if _, ok := c.known[tok]; ok || tok == c.tool {
			continue
		}
		if bytes.Contains(c.request, []byte(tok)) {
			continue // the caller's own words, e.g. an identifier of its query
		}
		return true
	}
	return false
}

// isSegment reports whether s could be a tenant segment of a physical key
// under either graphname scheme: lower-case ASCII letters, digits and '-'.
func isSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
