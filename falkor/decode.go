package falkor

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// replyError reports a reply the decoder does not understand. The query did
// run: for a write, its effects are in place.
func replyError(format string, args ...any) error {
	return fmt.Errorf("falkor: the query ran but its reply could not be decoded: "+format, args...)
}

// Value types of compact replies.
const (
	typeNull     = 1
	typeString   = 2
	typeInteger  = 3
	typeBoolean  = 4
	typeDouble   = 5
	typeArray    = 6
	typeEdge     = 7
	typeNode     = 8
	typePath     = 9
	typeMap      = 10
	typePoint    = 11
	typeVectorF  = 12
	typeDateTime = 13
	typeDate     = 14
	typeTime     = 15
	typeDuration = 16
)

// Column types of the header (servers before compact values carried node
// and relation columns as bare entities).
const (
	columnScalar   = 1
	columnNode     = 2
	columnRelation = 3
)

// maxReplyDepth bounds the nesting the decoder follows.
const maxReplyDepth = 512

// decoder turns a compact reply into a Result. It is used by one call only.
type decoder struct {
	ctx   context.Context
	c     *Client
	graph string
	gs    *graphSchema    // nil until a node or edge appears
	snap  *schemaSnapshot // the names known to this decoder; nil: load when needed
	fixed bool            // never refresh snap (decoding the schema itself)
}

// noNames is the snapshot for decoding replies that name nothing (the schema
// procedures): unknown ids are errors, never a reason to refresh.
var noNames = &schemaSnapshot{}

// decode turns reply into a Result, naming labels, relationship types and
// property keys from snap (the snapshot whose version the query carried), or
// from the cache if snap is nil.
func (c *Client) decode(ctx context.Context, graph string, reply any, maxRows int, snap *schemaSnapshot) (*Result, error) {
	top, ok := reply.([]any)
	if !ok {
		return nil, replyError("reply is %T, want an array", reply)
	}
	for _, part := range top {
		// An error element inside the reply (go-redis keeps it as a value).
		if rerr, ok := part.(redis.Error); ok {
			return nil, serverError(rerr.Error())
		}
	}
	res := &Result{Columns: []string{}, Rows: [][]any{}}
	switch len(top) {
	case 1: // statistics only
		stats, ok := top[0].([]any)
		if !ok {
			return nil, replyError("statistics are %T, want an array", top[0])
		}
		res.Stats = parseStats(stats)
		return res, nil
	case 3:
	default:
		return nil, replyError("reply has %d parts, want 1 or 3", len(top))
	}
	header, ok1 := top[0].([]any)
	rows, ok2 := top[1].([]any)
	stats, ok3 := top[2].([]any)
	if !ok1 || !ok2 || !ok3 {
		return nil, replyError("reply parts are %T, %T, %T, want arrays", top[0], top[1], top[2])
	}
	res.Stats = parseStats(stats)

	colTypes := make([]int64, len(header))
	res.Columns = make([]string, len(header))
	for i, h := range header {
		col, ok := h.([]any)
		if !ok || len(col) != 2 {
			return nil, replyError("column %d of the header is malformed", i)
		}
		t, ok1 := col[0].(int64)
		name, ok2 := col[1].(string)
		if !ok1 || !ok2 {
			return nil, replyError("column %d of the header is malformed", i)
		}
		colTypes[i], res.Columns[i] = t, name
	}

	n := len(rows)
	if maxRows > 0 && n > maxRows {
		n = maxRows
		res.Truncated = true
	}
	d := decoder{ctx: ctx, c: c, graph: graph, snap: snap, fixed: snap == noNames}
	res.Rows = make([][]any, n)
	for i := range n {
		cells, ok := rows[i].([]any)
		if !ok || len(cells) != len(header) {
			return nil, replyError("row %d is malformed", i)
		}
		row := make([]any, len(cells))
		for j, cell := range cells {
			var v any
			var err error
			switch colTypes[j] {
			case columnScalar:
				v, err = d.scalar(cell, 0)
			case columnNode:
				v, err = d.node(cell, 0)
			case columnRelation:
				v, err = d.edge(cell, 0)
			default:
				err = replyError("column %d has unknown type %d", j, colTypes[j])
			}
			if err != nil {
				return nil, err
			}
			row[j] = v
		}
		res.Rows[i] = row
	}
	return res, nil
}

// scalar decodes a [type, value] pair.
func (d *decoder) scalar(cell any, depth int) (any, error) {
	pair, ok := cell.([]any)
	if !ok || len(pair) != 2 {
		return nil, replyError("value is not a [type, value] pair")
	}
	t, ok := pair[0].(int64)
	if !ok {
		return nil, replyError("value type is %T, want an integer", pair[0])
	}
	return d.typed(t, pair[1], depth)
}

func (d *decoder) typed(t int64, v any, depth int) (any, error) {
	if depth > maxReplyDepth {
		return nil, replyError("values nest more than %d levels", maxReplyDepth)
	}
	switch t {
	case typeNull:
		return nil, nil
	case typeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case typeInteger:
		if i, ok := v.(int64); ok {
			return i, nil
		}
	case typeBoolean:
		switch b := v.(type) {
		case string:
			switch b {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		case bool:
			return b, nil
		}
	case typeDouble:
		if f, ok := toFloat(v); ok {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nonFinite(f), nil
			}
			return f, nil
		}
	case typeArray:
		arr, ok := v.([]any)
		if !ok {
			break
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			x, err := d.scalar(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case typeNode:
		return d.node(v, depth+1)
	case typeEdge:
		return d.edge(v, depth+1)
	case typePath:
		return d.path(v, depth+1)
	case typeMap:
		flat, ok := v.([]any)
		if !ok || len(flat)%2 != 0 {
			break
		}
		m := make(map[string]any, len(flat)/2)
		for i := 0; i < len(flat); i += 2 {
			k, ok := flat[i].(string)
			if !ok {
				return nil, replyError("map key is %T, want a string", flat[i])
			}
			x, err := d.scalar(flat[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case typePoint:
		pt, ok := v.([]any)
		if !ok || len(pt) != 2 {
			break
		}
		lat, ok1 := toFloat(pt[0])
		lon, ok2 := toFloat(pt[1])
		if ok1 && ok2 {
			return Point{Latitude: lat, Longitude: lon}, nil
		}
	case typeVectorF:
		arr, ok := v.([]any)
		if !ok {
			break
		}
		vec := make(Vector, len(arr))
		for i, e := range arr {
			f, ok := toFloat(e)
			if !ok {
				return nil, replyError("vector element is %T, want a number", e)
			}
			vec[i] = float32(f)
		}
		return vec, nil
	case typeDateTime, typeDate, typeTime, typeDuration:
		secs, ok := v.(int64)
		if !ok {
			break
		}
		return temporal(t, secs), nil
	default:
		return nil, replyError("unknown value type %d", t)
	}
	return nil, replyError("value of type %d is %T", t, v)
}

func temporal(t, secs int64) string {
	switch t {
	case typeDateTime:
		return time.Unix(secs, 0).UTC().Format("2006-01-02T15:04:05")
	case typeDate:
		return time.Unix(secs, 0).UTC().Format("2006-01-02")
	case typeTime:
		return time.Unix(secs, 0).UTC().Format("15:04:05")
	}
	return isoDuration(secs)
}

// isoDuration formats seconds as an ISO 8601 duration ("P1DT2H3M4S").
func isoDuration(secs int64) string {
	if secs == 0 {
		return "PT0S"
	}
	var b strings.Builder
	u := uint64(secs)
	if secs < 0 {
		b.WriteByte('-')
		u = uint64(-(secs + 1)) + 1
	}
	b.WriteByte('P')
	days, rest := u/86400, u%86400
	if days > 0 {
		b.WriteString(strconv.FormatUint(days, 10))
		b.WriteByte('D')
	}
	if rest > 0 {
		b.WriteByte('T')
		for _, part := range [...]struct {
			n    uint64
			unit byte
		}{{rest / 3600, 'H'}, {rest % 3600 / 60, 'M'}, {rest % 60, 'S'}} {
			if part.n > 0 {
				b.WriteString(strconv.FormatUint(part.n, 10))
				b.WriteByte(part.unit)
			}
		}
	}
	return b.String()
}

// toFloat reads a double: a string in RESP2 replies (and in RESP3 scalars),
// a float64 for RESP3 doubles.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err == nil {
			return f, true
		}
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true // ±Inf or 0: FalkorDB rounds to 15 digits, past the limits
		}
		if strings.EqualFold(strings.TrimLeft(x, "+-"), "nan") {
			return math.NaN(), true
		}
		return 0, false
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// name resolves position id of a schema list, refreshing the lists if needed.
func (d *decoder) name(kind int, v any) (string, error) {
	id, ok := v.(int64)
	if !ok {
		return "", replyError("%s id is %T, want an integer", schemaProcs[kind].what, v)
	}
	if d.snap == nil {
		d.gs = d.c.schemas.get(d.graph)
		d.snap = d.gs.snap.Load()
	}
	if names := d.snap.names[kind]; id >= 0 && id < int64(len(names)) {
		return names[id], nil
	}
	if id < 0 {
		return "", replyError("%s id %d is negative", schemaProcs[kind].what, id)
	}
	if !d.fixed {
		if d.gs == nil {
			d.gs = d.c.schemas.get(d.graph)
		}
		snap, err := d.gs.refresh(d.ctx, d.c, d.graph, d.snap, func(s *schemaSnapshot) bool {
			return id < int64(len(s.names[kind]))
		})
		if err != nil {
			return "", fmt.Errorf("falkor: reading the graph's names to decode the reply: %w", err)
		}
		d.snap = snap
		if names := snap.names[kind]; id < int64(len(names)) {
			return names[id], nil
		}
	}
	return "", replyError("%s id %d is unknown to the graph", schemaProcs[kind].what, id)
}

// properties decodes [[keyId, type, value], ...].
func (d *decoder) properties(v any, depth int) (map[string]any, error) {
	props, ok := v.([]any)
	if !ok {
		return nil, replyError("properties are %T, want an array", v)
	}
	m := make(map[string]any, len(props))
	for _, p := range props {
		triple, ok := p.([]any)
		if !ok || len(triple) != 3 {
			return nil, replyError("property is not a [key, type, value] triple")
		}
		key, err := d.name(kindPropKey, triple[0])
		if err != nil {
			return nil, err
		}
		t, ok := triple[1].(int64)
		if !ok {
			return nil, replyError("property type is %T, want an integer", triple[1])
		}
		x, err := d.typed(t, triple[2], depth+1)
		if err != nil {
			return nil, err
		}
		m[key] = x
	}
	return m, nil
}

// node decodes [id, [labelId...], properties].
func (d *decoder) node(v any, depth int) (Node, error) {
	parts, ok := v.([]any)
	if !ok || len(parts) != 3 {
		return Node{}, replyError("node is malformed")
	}
	id, ok1 := parts[0].(int64)
	labelIDs, ok2 := parts[1].([]any)
	if !ok1 || !ok2 {
		return Node{}, replyError("node is malformed")
	}
	n := Node{ID: id, Labels: make([]string, len(labelIDs))}
	for i, l := range labelIDs {
		name, err := d.name(kindLabel, l)
		if err != nil {
			return Node{}, err
		}
		n.Labels[i] = name
	}
	var err error
	if n.Properties, err = d.properties(parts[2], depth); err != nil {
		return Node{}, err
	}
	return n, nil
}

// edge decodes [id, typeId, source, destination, properties].
func (d *decoder) edge(v any, depth int) (Edge, error) {
	parts, ok := v.([]any)
	if !ok || len(parts) != 5 {
		return Edge{}, replyError("edge is malformed")
	}
	id, ok1 := parts[0].(int64)
	src, ok2 := parts[2].(int64)
	dst, ok3 := parts[3].(int64)
	if !ok1 || !ok2 || !ok3 {
		return Edge{}, replyError("edge is malformed")
	}
	typ, err := d.name(kindRelType, parts[1])
	if err != nil {
		return Edge{}, err
	}
	e := Edge{ID: id, Type: typ, Source: src, Destination: dst}
	if e.Properties, err = d.properties(parts[4], depth); err != nil {
		return Edge{}, err
	}
	return e, nil
}

// path decodes [[array of nodes], [array of edges]] (each a typed pair).
func (d *decoder) path(v any, depth int) (Path, error) {
	parts, ok := v.([]any)
	if !ok || len(parts) != 2 {
		return Path{}, replyError("path is malformed")
	}
	nodes, err := d.scalar(parts[0], depth)
	if err != nil {
		return Path{}, err
	}
	edges, err := d.scalar(parts[1], depth)
	if err != nil {
		return Path{}, err
	}
	nl, ok1 := nodes.([]any)
	el, ok2 := edges.([]any)
	if !ok1 || !ok2 {
		return Path{}, replyError("path is malformed")
	}
	p := Path{Nodes: make([]Node, len(nl)), Edges: make([]Edge, len(el))}
	for i, x := range nl {
		if p.Nodes[i], ok = x.(Node); !ok {
			return Path{}, replyError("path holds %T where a node belongs", x)
		}
	}
	for i, x := range el {
		if p.Edges[i], ok = x.(Edge); !ok {
			return Path{}, replyError("path holds %T where an edge belongs", x)
		}
	}
	return p, nil
}
