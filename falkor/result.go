package falkor

import (
	"math"
	"strconv"
	"strings"
)

// Result is the outcome of a query, ready for encoding/json.
//
// Each cell of Rows holds one of: nil, bool, int64, float64 (finite), string,
// []any, map[string]any, [Node], [Edge], [Path], [Point] or [Vector].
// Values without an exact JSON form become strings: non-finite floats
// ("NaN", "Infinity", "-Infinity"), dates ("2024-01-02"), local date-times
// ("2024-01-02T03:04:05"), local times ("03:04:05") and durations in ISO 8601
// ("P1DT2H"). FalkorDB itself prints floats with 15 significant digits.
type Result struct {
	// Columns are the names of the returned columns, in order.
	Columns []string `json:"columns"`
	// Rows are the returned rows; each has one value per column.
	Rows [][]any `json:"rows"`
	// Stats are the query statistics reported by the server.
	Stats Stats `json:"stats"`
	// Truncated reports that the query returned more rows than the cap
	// (Options.MaxRows, or the lower cap of ToolOptions.MaxRows for a tool
	// call) and only the first rows up to the cap are in Rows.
	Truncated bool `json:"truncated"`
}

// Stats are the statistics FalkorDB reports for a query.
// The counters are zero, and left out of the JSON form, when the server did
// not report them.
type Stats struct {
	LabelsAdded          int64 `json:"labelsAdded,omitempty"`          // labels created in the graph's schema
	LabelsRemoved        int64 `json:"labelsRemoved,omitempty"`        // labels removed from nodes
	NodesCreated         int64 `json:"nodesCreated,omitempty"`         // nodes created
	NodesDeleted         int64 `json:"nodesDeleted,omitempty"`         // nodes deleted
	RelationshipsCreated int64 `json:"relationshipsCreated,omitempty"` // relationships created
	RelationshipsDeleted int64 `json:"relationshipsDeleted,omitempty"` // relationships deleted
	PropertiesSet        int64 `json:"propertiesSet,omitempty"`        // properties set
	PropertiesRemoved    int64 `json:"propertiesRemoved,omitempty"`    // properties removed
	IndicesCreated       int64 `json:"indicesCreated,omitempty"`       // indexes created
	IndicesDeleted       int64 `json:"indicesDeleted,omitempty"`       // indexes dropped
	// Cached reports that the server reused a cached execution plan.
	Cached bool `json:"cached"`
	// ExecutionTimeMs is the server's internal execution time in milliseconds.
	ExecutionTimeMs float64 `json:"executionTimeMs"`
}

// Node is a graph node.
type Node struct {
	ID         int64          `json:"id"`         // the server's internal ID (reused after deletion)
	Labels     []string       `json:"labels"`     // its labels, in order
	Properties map[string]any `json:"properties"` // its properties, values as in Result.Rows
}

// Edge is a relationship between two nodes, given by their IDs.
type Edge struct {
	ID          int64          `json:"id"`          // the server's internal ID (reused after deletion)
	Type        string         `json:"type"`        // the relationship type
	Source      int64          `json:"source"`      // ID of the start node
	Destination int64          `json:"destination"` // ID of the end node
	Properties  map[string]any `json:"properties"`  // its properties, values as in Result.Rows
}

// Path is an alternating walk of nodes and edges; len(Edges) == len(Nodes)-1.
type Path struct {
	Nodes []Node `json:"nodes"` // the nodes, from start to end
	Edges []Edge `json:"edges"` // the edges, Edges[i] between Nodes[i] and Nodes[i+1]
}

// Point is a geographic point (WGS 84).
type Point struct {
	Latitude  float64 `json:"latitude"`  // degrees north
	Longitude float64 `json:"longitude"` // degrees east
}

// Vector is a FalkorDB vector (vecf32). Its JSON form is an array of numbers,
// with non-finite elements as the strings "NaN", "Infinity" and "-Infinity".
type Vector []float32

// MarshalJSON implements [json.Marshaler].
func (v Vector) MarshalJSON() ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(v)*8)
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		switch g := float64(f); {
		case math.IsNaN(g), math.IsInf(g, 0):
			b = strconv.AppendQuote(b, nonFinite(g))
		default:
			b = strconv.AppendFloat(b, g, 'g', -1, 32)
		}
	}
	return append(b, ']'), nil
}

func nonFinite(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return "NaN"
}

// parseStats reads the statistics lines ("Nodes created: 1", "Query internal
// execution time: 0.2 milliseconds"). It is lenient: an unknown or malformed
// line is skipped rather than turning a query that ran into an error.
func parseStats(lines []any) Stats {
	var s Stats
	for _, l := range lines {
		line, ok := l.(string)
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		val = strings.TrimSuffix(val, " milliseconds")
		if name == "Query internal execution time" {
			if f, err := strconv.ParseFloat(val, 64); err == nil {
				s.ExecutionTimeMs = f
			}
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "Labels added":
			s.LabelsAdded = n
		case "Labels removed":
			s.LabelsRemoved = n
		case "Nodes created":
			s.NodesCreated = n
		case "Nodes deleted":
			s.NodesDeleted = n
		case "Relationships created":
			s.RelationshipsCreated = n
		case "Relationships deleted":
			s.RelationshipsDeleted = n
		case "Properties set":
			s.PropertiesSet = n
		case "Properties removed":
			s.PropertiesRemoved = n
		case "Indices created":
			s.IndicesCreated = n
		case "Indices deleted":
			s.IndicesDeleted = n
		case "Cached execution":
			s.Cached = n != 0
		}
	}
	return s
}
