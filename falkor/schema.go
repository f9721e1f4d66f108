package falkor

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Schema lists the names a graph uses. FalkorDB keeps them in creation order.
type Schema struct {
	Labels            []string `json:"labels"`            // node labels
	RelationshipTypes []string `json:"relationshipTypes"` // relationship types
	PropertyKeys      []string `json:"propertyKeys"`      // property keys of nodes and relationships
}

// Compact replies name labels, relationship types and property keys by their
// position in the graph's schema. The client keeps those lists per graph,
// read through GRAPH.RO_QUERY (so that read-only ACL users can do it), with
// the schema version FalkorDB derives from them.
//
// Positions are stable while a graph lives: names are only appended. A reply
// naming an unknown position makes the client read the lists again. Queries
// carry the version of the lists the client holds ("version" argument): if
// the graph's names changed otherwise (the graph was deleted and created
// again with other names), the server answers "version mismatch" without
// running the query; the client then reads the lists again and sends the
// query again, at most maxVersionAttempts times in all. A query the server
// ran is never sent again.

const (
	kindLabel = iota
	kindRelType
	kindPropKey
	numKinds
)

var schemaProcs = [numKinds]struct {
	query string
	what  string
}{
	{"CALL db.labels()", "label"},
	{"CALL db.relationshipTypes()", "relationship type"},
	{"CALL db.propertyKeys()", "property key"},
}

const (
	// maxSchemaGraphs bounds the number of graphs whose names are cached.
	maxSchemaGraphs = 4096
	// maxVersionAttempts bounds the sends of one query refused for a version
	// mismatch; the last attempt carries no version.
	maxVersionAttempts = 3
	// versionProbe is a query the server refuses with its current version
	// unless the version sent (0, that of a graph without names) is current.
	versionProbe = "RETURN 0"
)

// schemaSnapshot is immutable once published.
type schemaSnapshot struct {
	names   [numKinds][]string
	version string // the schema version of names, "" if unknown
}

var emptySnapshot = &schemaSnapshot{}

type graphSchema struct {
	snap atomic.Pointer[schemaSnapshot]
	sem  chan struct{} // held while refreshing: one refresh at a time
}

type schemaCache struct {
	mu     sync.RWMutex
	graphs map[string]*graphSchema
}

// peek returns the cached names of graph, or nil.
func (sc *schemaCache) peek(graph string) *graphSchema {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.graphs[graph]
}

func (sc *schemaCache) get(graph string) *graphSchema {
	if gs := sc.peek(graph); gs != nil {
		return gs
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if gs := sc.graphs[graph]; gs != nil {
		return gs
	}
	if sc.graphs == nil {
		sc.graphs = make(map[string]*graphSchema)
	}
	if len(sc.graphs) >= maxSchemaGraphs {
		for k := range sc.graphs { // drop an arbitrary entry
			delete(sc.graphs, k)
			break
		}
	}
	gs := &graphSchema{sem: make(chan struct{}, 1)}
	gs.snap.Store(emptySnapshot)
	sc.graphs[graph] = gs
	return gs
}

func (sc *schemaCache) forget(graph string) {
	sc.mu.Lock()
	delete(sc.graphs, graph)
	sc.mu.Unlock()
}

// refresh reads the graph's names again and returns the new snapshot, unless
// a concurrent refresh already replaced the snapshot stale by one that suits
// the caller (good).
func (gs *graphSchema) refresh(ctx context.Context, c *Client, graph string, stale *schemaSnapshot, good func(*schemaSnapshot) bool) (*schemaSnapshot, error) {
	select {
	case gs.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, mapError(ctx, ctx.Err())
	}
	defer func() { <-gs.sem }()
	if cur := gs.snap.Load(); cur != stale && good(cur) {
		return cur, nil
	}
	// From the primary, even for a reply of a replica: a replica's names
	// are a prefix of the primary's (names are only ever appended while
	// the graph exists), so the primary's names decode any replica's reply.
	snap, err := c.readSchema(ctx, graph, false)
	if err != nil {
		return nil, err
	}
	gs.snap.Store(snap)
	return snap, nil
}

// readSchema reads the three name lists and the schema version in one round
// trip: version, lists, version again. If the two versions differ the names
// changed meanwhile, and the snapshot keeps no version. With replica true
// (and Options.ReadFromReplicas) it reads from a replica, else from the
// primary.
func (c *Client) readSchema(ctx context.Context, graph string, replica bool) (*schemaSnapshot, error) {
	var before, after *redis.Cmd
	var cmds [numKinds]*redis.Cmd
	var byCtx bool
	var budgetErr error
	read := func(r redis.UniversalClient) error {
		var ms string
		ms, byCtx, budgetErr = c.budget(ctx)
		if budgetErr != nil {
			return budgetErr
		}
		pipe := r.Pipeline()
		probe := func() *redis.Cmd {
			return pipe.Do(ctx, "GRAPH.RO_QUERY", graph, versionProbe, "--compact", "timeout", ms, "version", "0")
		}
		before = probe()
		for kind := range numKinds {
			cmds[kind] = pipe.Do(ctx, "GRAPH.RO_QUERY", graph, schemaProcs[kind].query, "--compact", "timeout", ms)
		}
		after = probe()
		_, err := pipe.Exec(ctx)
		return err
	}
	var err error
	if replica {
		err = c.onReader(ctx, read)
	} else {
		err = read(c.rdb)
	}
	if budgetErr != nil {
		return nil, budgetErr
	}
	if err != nil {
		return nil, timeoutCause(mapError(ctx, err), byCtx)
	}
	snap := &schemaSnapshot{}
	for kind, cmd := range cmds {
		res, err := c.decode(ctx, graph, cmd.Val(), 0, noNames)
		if err != nil {
			return nil, err
		}
		if snap.names[kind], err = namesColumn(res); err != nil {
			return nil, err
		}
	}
	v1, ok1 := probedVersion(before.Val())
	v2, ok2 := probedVersion(after.Val())
	if ok1 && ok2 && v1 == v2 {
		snap.version = strconv.FormatInt(v1, 10)
	}
	return snap, nil
}

// probedVersion reads the reply to versionProbe: a version mismatch names
// the version; a result means the version is 0.
func probedVersion(reply any) (int64, bool) {
	if v, ok := versionMismatch(reply); ok {
		return v, true
	}
	top, ok := reply.([]any)
	return 0, ok && len(top) == 3
}

// versionMismatch recognizes the reply ["version mismatch", version] to a
// query the server did not run.
func versionMismatch(reply any) (int64, bool) {
	top, ok := reply.([]any)
	if !ok || len(top) != 2 {
		return 0, false
	}
	var msg string
	switch x := top[0].(type) {
	case string:
		msg = x
	case error: // go-redis gives an error element inside an array as a value
		msg = x.Error()
	}
	if msg != "version mismatch" {
		return 0, false
	}
	v, ok := top[1].(int64)
	return v, ok
}

func namesColumn(res *Result) ([]string, error) {
	names := make([]string, len(res.Rows))
	for i, row := range res.Rows {
		if len(row) != 1 {
			return nil, replyError("schema procedure row has %d columns, want 1", len(row))
		}
		s, ok := row[0].(string)
		if !ok {
			return nil, replyError("schema procedure returned %T, want a string", row[0])
		}
		names[i] = s
	}
	return names, nil
}

// Schema returns the labels, relationship types and property keys of graph,
// read with read-only queries (one round trip), on a replica with
// Options.ReadFromReplicas. It also refreshes the names the Client uses to
// decode results of graph.
//
// The Client keeps these names per graph to decode compact replies, which
// name labels, relationship types and property keys by position. Queries
// carry the schema version of the names held; when the graph's names have
// changed otherwise (it was deleted and created again elsewhere), FalkorDB
// refuses the query without running it, and the Client reads the names
// again and sends the query again.
func (c *Client) Schema(ctx context.Context, graph string) (*Schema, error) {
	snap, err := c.readSchema(ctx, graph, true)
	if err != nil {
		return nil, err
	}
	gs := c.schemas.get(graph)
	select {
	case gs.sem <- struct{}{}:
		gs.snap.Store(snap)
		<-gs.sem
	default: // a refresh is under way; it stores its own reading
	}
	return &Schema{Labels: snap.names[kindLabel], RelationshipTypes: snap.names[kindRelType], PropertyKeys: snap.names[kindPropKey]}, nil
}
