package falkor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Graph operations for administrators: existence, memory, backup (DUMP and
// RESTORE), copies, and the removal of scoped users. Scoped users
// ([Client.WithScope]) may not run them: TYPE, DUMP, RESTORE, GRAPH.MEMORY,
// GRAPH.COPY and ACL are not among [ScopeCommands].

// Errors of graph operations. Test with [errors.Is].
var (
	// ErrGraphExists reports that the target key of [Client.RestoreGraph]
	// or [Client.CopyGraph] already exists (a graph or any other value);
	// nothing was changed.
	ErrGraphExists = errors.New("falkor: the graph already exists")

	// ErrCrossSlot reports a [Client.CopyGraph] in cluster mode between two
	// keys in different hash slots, which FalkorDB cannot copy; nothing was
	// changed.
	ErrCrossSlot = errors.New("falkor: the graphs are in different cluster hash slots")

	// ErrInvalidPayload reports a payload that [Client.RestoreGraph]
	// refuses: not a FalkorDB graph dump, damaged (the server checks its
	// checksum), or dumped from a graph of another name. Nothing was
	// restored.
	ErrInvalidPayload = errors.New("falkor: invalid graph payload")
)

// graphType is the Redis type name of FalkorDB graphs (TYPE).
const graphType = "graphdata"

// GraphExists reports whether graph exists and is a FalkorDB graph: a key of
// another type gives false. In cluster mode it asks the key's primary.
func (c *Client) GraphExists(ctx context.Context, graph string) (bool, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	reply, err := c.do(ctx, "TYPE", graph)
	if err != nil {
		return false, mapError(ctx, err)
	}
	t, ok := reply.(string)
	if !ok {
		return false, fmt.Errorf("falkor: unexpected TYPE reply %T", reply)
	}
	return t == graphType, nil
}

// GraphMemory returns the memory used by graph in bytes, as estimated by
// GRAPH.MEMORY USAGE (which samples node and edge attributes). FalkorDB
// reports whole mebibytes: it rounds each component (matrices, node and
// edge storage, indexes) down to a multiple of 2^20 bytes and adds them up,
// so the result is a multiple of 1 MiB, 0 for a graph under 1 MiB, and may
// fall short of the real use by up to a few MiB. A missing graph is
// reported as ErrGraphNotFound.
func (c *Client) GraphMemory(ctx context.Context, graph string) (int64, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	reply, err := c.doKeyAt(ctx, 2, "GRAPH.MEMORY", "USAGE", graph)
	if err != nil {
		return 0, mapError(ctx, err)
	}
	return memoryTotal(reply)
}

// memoryTotal reads total_graph_sz_mb from a GRAPH.MEMORY USAGE reply (a
// flat list of names and values in RESP2, a map in RESP3) and converts it
// to bytes.
func memoryTotal(reply any) (int64, error) {
	const field = "total_graph_sz_mb"
	var v any
	switch r := reply.(type) {
	case map[any]any:
		v = r[field]
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			if k, _ := r[i].(string); k == field {
				v = r[i+1]
				break
			}
		}
	}
	mb, ok := v.(int64)
	if !ok || mb < 0 || mb > math.MaxInt64>>20 {
		return 0, fmt.Errorf("falkor: unexpected GRAPH.MEMORY reply: no valid %s", field)
	}
	return mb << 20, nil
}

// DumpGraph returns graph serialized by the server (DUMP), for
// [Client.RestoreGraph]. The payload holds the graph's name and is tied to
// the FalkorDB version that made it (newer versions read older payloads,
// not the reverse). A missing key, or a key that holds no graph, is
// reported as ErrGraphNotFound.
func (c *Client) DumpGraph(ctx context.Context, graph string) ([]byte, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	reply, err := c.do(ctx, "DUMP", graph)
	if errors.Is(err, redis.Nil) {
		return nil, ErrGraphNotFound
	}
	if err != nil {
		return nil, mapError(ctx, err)
	}
	s, ok := reply.(string)
	if !ok {
		return nil, fmt.Errorf("falkor: unexpected DUMP reply %T", reply)
	}
	payload := []byte(s)
	if _, _, err := payloadModule(payload); err != nil {
		return nil, fmt.Errorf("%w: the key holds another type of value", ErrGraphNotFound)
	}
	return payload, nil
}

// RestoreGraph creates graph from a payload of [Client.DumpGraph] (RESTORE
// with no expiry and without REPLACE). An existing key is never replaced:
// it is reported as ErrGraphExists. A payload that is not a graph dump, is
// damaged, or was dumped from a graph of another name is refused with
// ErrInvalidPayload.
//
// Restore a payload only under the name it was dumped from: after the
// graph was deleted, or on another server (a cluster node included). The
// payload carries the graph's internal name, and FalkorDB 4.16 does not
// rename it on RESTORE: restored under another key, the graph keeps the old
// name (GRAPH.LIST shows it, writes fail with "Encountered an empty key"),
// and on the server that still holds the original the two keys share one
// graph, with doubled contents, until a write hangs or crashes the server.
// RestoreGraph therefore reads the name from the payload and refuses a
// mismatch before anything is sent. To copy a graph under a new name, use
// [Client.CopyGraph].
func (c *Client) RestoreGraph(ctx context.Context, graph string, payload []byte) error {
	name, err := payloadGraph(payload, max(len(graph), maxShownName))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	if name != graph {
		return fmt.Errorf("%w: it was dumped from the graph %q, and FalkorDB restores a graph correctly only under the name it was dumped from (use CopyGraph to copy a graph under another name)", ErrInvalidPayload, name)
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	_, err = c.do(ctx, "RESTORE", graph, 0, payload)
	c.schemas.forget(graph)
	return opError(ctx, err)
}

// CopyGraph copies the graph src to the new key dst (GRAPH.COPY): an
// independent graph with the same nodes, edges, properties and indexes.
// An existing dst is reported as ErrGraphExists, a missing src as
// ErrGraphNotFound.
//
// In cluster mode src and dst must be in the same hash slot, and the copy
// runs on the slot's primary: give dst a hash tag holding src's slot key,
// which is src itself when src has no "{...}" part (a backup of
// "acme_users" as "tgbackup:label:{acme_users}"). Keys in different slots
// are refused with ErrCrossSlot before anything is sent: GRAPH.COPY cannot
// copy across slots, and a DUMP restored under another name is not a
// usable graph (see [Client.RestoreGraph]), whether on the same node or
// another.
func (c *Client) CopyGraph(ctx context.Context, src, dst string) error {
	if c.cluster != nil {
		if s, d := keySlot(src), keySlot(dst); s != d {
			return fmt.Errorf("%w: %d and %d; give the copy a hash tag with the source's slot key", ErrCrossSlot, s, d)
		}
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	_, err := c.do(ctx, "GRAPH.COPY", src, dst)
	c.schemas.forget(dst)
	return opError(ctx, err)
}

// opError maps the errors of RESTORE and GRAPH.COPY.
func opError(ctx context.Context, err error) error {
	err = mapError(ctx, err)
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Kind != nil {
		return err
	}
	switch msg := qe.Message; {
	case strings.HasPrefix(msg, "BUSYKEY"), strings.Contains(msg, "key already exists"):
		qe.Kind = ErrGraphExists
	case strings.Contains(msg, "payload version or checksum are wrong"), strings.Contains(msg, "Bad data format"):
		qe.Kind = ErrInvalidPayload
	case strings.HasPrefix(msg, "CROSSSLOT"):
		qe.Kind = ErrCrossSlot
	}
	return err
}

// DropScope deletes the scoped database user made by [Client.WithScope]
// (ACL DELUSER; in cluster mode on every node, replicas included, as
// WithScope creates it there) and closes c's connections of the user: at
// once when idle, else when the calls using them end (the database closes
// the connections of a deleted user, so those calls fail). A user that does
// not exist is not an error. "default" and the administrator's own user are
// refused with ErrInvalidScope. A later WithScope call creates the user
// again.
//
// In cluster mode the deletion fails while a node does not answer; call
// again. A call for the same user that runs concurrently with DropScope
// may create the user again.
func (c *Client) DropScope(ctx context.Context, user string) error {
	if c.scopes == nil {
		return fmt.Errorf("%w: this client is itself scoped", ErrInvalidScope)
	}
	if err := validateUser(user); err != nil {
		return err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	who, err := c.scopes.whoami(ctx)
	if err != nil {
		return err
	}
	if who == user {
		return fmt.Errorf("%w: the user is the administrator's own", ErrInvalidScope)
	}
	c.scopes.drop(user)
	if err := c.scopes.adminDo(ctx, "ACL", "DELUSER", user); err != nil {
		return scopeAdminError(ctx, err)
	}
	return nil
}

// drop forgets user's pool and closes it now or when its calls end,
// without touching the user.
func (ss *scopeSet) drop(user string) {
	ss.mu.Lock()
	var victims []*scopeEntry
	if e := ss.entries[user]; e != nil {
		delete(ss.entries, user)
		e.gone, e.dropped = true, true
		if e.users == 0 {
			victims = append(victims, e)
		}
	}
	ss.mu.Unlock()
	closeEntries(victims)
}

// keySlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key,
// or of its hash tag (the part between the first '{' and the next '}', if
// not empty), modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// Payload inspection. A DUMP payload is one RDB value followed by the RDB
// version (2 bytes) and a CRC64 (8 bytes). For a graph, the value is a
// module value (type 7, RDB_TYPE_MODULE_2): the module type's 64-bit id
// (its 9-character name, "graphdata", and its encoding version), then
// FalkorDB's fields, the first of which is a string (opcode 5) whose
// content starts with the graph's name as a little-endian uint64 length
// (the terminating NUL included) and the name's bytes.

// maxShownName bounds the name read from a payload for error messages.
const maxShownName = 256

// RDB constants (redis/src/rdb.h).
const (
	rdbTypeModule2    = 7
	rdbModuleOpString = 5
	rdbEncLZF         = 3
	rdbTrailer        = 10 // RDB version and CRC64
)

var errPayload = errors.New("not a FalkorDB graph dump")

// payloadModule checks that p is a dump of a FalkorDB graph and returns its
// encoding version and the bytes after the module id.
func payloadModule(p []byte) (encver int, rest []byte, err error) {
	if len(p) < 1+rdbTrailer || p[0] != rdbTypeModule2 {
		return 0, nil, errPayload
	}
	id, _, rest, ok := rdbLength(p[1 : len(p)-rdbTrailer])
	if !ok || moduleName(id) != graphType {
		return 0, nil, errPayload
	}
	return int(id & 1023), rest, nil
}

// moduleName decodes the 9-character type name of a module type id.
func moduleName(id uint64) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b [9]byte
	for i := range b {
		b[i] = chars[(id>>(10+6*(8-i)))&63]
	}
	return string(b[:])
}

// payloadGraph returns the name of the graph a payload of DumpGraph holds.
// Names longer than limit bytes are reported as an error.
func payloadGraph(p []byte, limit int) (string, error) {
	_, rest, err := payloadModule(p)
	if err != nil {
		return "", err
	}
	op, _, rest, ok := rdbLength(rest)
	if !ok || op != rdbModuleOpString {
		return "", errors.New("the dump does not start with the graph's name")
	}
	n, enc, rest, ok := rdbLength(rest)
	if !ok {
		return "", errors.New("truncated dump")
	}
	want := 8 + limit + 1 // length, name, NUL
	var head []byte
	switch {
	case !enc:
		head = rest[:min(uint64(len(rest)), n, uint64(want))]
	case n == rdbEncLZF:
		clen, _, r, ok1 := rdbLength(rest)
		_, _, r, ok2 := rdbLength(r) // uncompressed length
		if !ok1 || !ok2 || clen > uint64(len(r)) {
			return "", errors.New("truncated dump")
		}
		if head, err = lzfPrefix(r[:clen], want); err != nil {
			return "", err
		}
	default:
		return "", errors.New("the dump does not start with the graph's name")
	}
	if len(head) < 8 {
		return "", errors.New("truncated dump")
	}
	size := binary.LittleEndian.Uint64(head)
	if size == 0 {
		return "", errors.New("the dump holds an empty graph name")
	}
	if size-1 > uint64(limit) {
		return "", fmt.Errorf("the dump holds a graph name longer than %d bytes", limit)
	}
	if uint64(len(head)-8) < size || head[8+size-1] != 0 {
		return "", errors.New("truncated dump")
	}
	return string(head[8 : 8+size-1]), nil
}

// rdbLength reads an RDB length (or, with enc, the kind of a special
// encoding) from the start of b.
func rdbLength(b []byte) (n uint64, enc bool, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, false, nil, false
	}
	switch b[0] >> 6 {
	case 0:
		return uint64(b[0] & 63), false, b[1:], true
	case 1:
		if len(b) < 2 {
			return 0, false, nil, false
		}
		return uint64(b[0]&63)<<8 | uint64(b[1]), false, b[2:], true
	case 3:
		return uint64(b[0] & 63), true, b[1:], true
	}
	switch b[0] {
	case 0x80:
		if len(b) < 5 {
			return 0, false, nil, false
		}
		return uint64(binary.BigEndian.Uint32(b[1:])), false, b[5:], true
	case 0x81:
		if len(b) < 9 {
			return 0, false, nil, false
		}
		return binary.BigEndian.Uint64(b[1:]), false, b[9:], true
	}
	return 0, false, nil, false
}

// lzfPrefix decompresses the first limit bytes (or a few more) of LZF data.
func lzfPrefix(in []byte, limit int) ([]byte, error) {
	out := make([]byte, 0, limit+264)
	for i := 0; i < len(in) && len(out) < limit; {
		ctrl := int(in[i])
		i++
		if ctrl < 32 { // a literal run of ctrl+1 bytes
			n := ctrl + 1
			if i+n > len(in) {
				return nil, errors.New("damaged compressed dump")
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5 // a back reference of n+2 bytes
		if n == 7 {
			if i >= len(in) {
				return nil, errors.New("damaged compressed dump")
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, errors.New("damaged compressed dump")
		}
		ref := len(out) - (ctrl&31)<<8 - int(in[i]) - 1
		i++
		if ref < 0 {
			return nil, errors.New("damaged compressed dump")
		}
		for k := range n + 2 {
			out = append(out, out[ref+k])
		}
	}
	return out, nil
}
