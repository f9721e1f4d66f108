package tenancy

import (
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// CacheOptions configure a [ResultCache]. The zero value is usable.
type CacheOptions struct {
	// TTL is how long a result is served from the cache; 0 means 5 s.
	TTL time.Duration
	// MaxEntries bounds the number of cached results (least recently used
	// go first); 0 means 10,000.
	MaxEntries int
	// MaxResultBytes leaves results whose JSON is larger uncached; 0 means
	// 256 KiB.
	MaxResultBytes int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// ResultCache is a tenant-aware cache of read-only tool results
// ([Config].Cache), off unless configured. Results are cached per tenant,
// tool and exact arguments (with the tenant's physical graph keys), so a
// result is never served to another tenant: two tenants' calls with the same
// text never share an entry. A successful call of a tool that writes or
// deletes ([ToolPolicy].Writes, Deletes) drops the cached results of the
// graphs it named, and so does every call of such a tool that fails (it may
// have written before failing).
//
// The cache lives in one process. With several replicas, a write through one
// replica is seen by reads through another only after TTL: keep TTL short,
// or leave the cache off where reads must follow writes at once.
//
// Cached results are shared between requests: the middleware never changes
// a result after caching it, and neither may a server's own sending
// middleware.
type ResultCache struct {
	ttl      time.Duration
	max      int
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	seq     uint64                     // incremented by every lookup and invalidation
	entries map[[32]byte]*list.Element // of *cacheEntry
	lru     list.List                  // front: most recently used
	dropped map[string]dropMark        // physical graph key -> last invalidation
}

type cacheEntry struct {
	key     [32]byte
	prefix  string
	graphs  []string
	seq     uint64 // the sequence number of the lookup that missed
	expires time.Time
	res     *mcp.CallToolResult
	rows    int
}

type dropMark struct {
	seq uint64
	at  time.Time
}

// NewResultCache returns an empty cache. opts may be nil.
func NewResultCache(opts *CacheOptions) *ResultCache {
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	c := &ResultCache{ttl: o.TTL, max: o.MaxEntries, maxBytes: o.MaxResultBytes, now: o.Now,
		entries: make(map[[32]byte]*list.Element), dropped: make(map[string]dropMark)}
	if c.ttl <= 0 {
		c.ttl = 5 * time.Second
	}
	if c.max <= 0 {
		c.max = 10_000
	}
	if c.maxBytes <= 0 {
		c.maxBytes = 256 << 10
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// cacheKey is the SHA-256 of prefix, tool and arguments, each length-prefixed
// so that no two triples share a key.
func cacheKey(prefix, tool string, args []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(prefix), []byte(tool), args} {
		l := uint64(len(part))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// get returns the cached result of key, or a miss with the sequence number
// that put must be given.
func (c *ResultCache) get(key [32]byte) (res *mcp.CallToolResult, rows int, seq uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	el, found := c.entries[key]
	if !found {
		return nil, 0, c.seq, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) || c.staleLocked(e) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, 0, c.seq, false
	}
	c.lru.MoveToFront(el)
	return e.res, e.rows, 0, true
}

// staleLocked reports whether a graph of e was invalidated after e's lookup.
func (c *ResultCache) staleLocked(e *cacheEntry) bool {
	for _, g := range e.graphs {
		if d, ok := c.dropped[g]; ok && d.seq > e.seq {
			return true
		}
	}
	return false
}

// put caches res, the result of the lookup that returned seq.
func (c *ResultCache) put(key [32]byte, prefix string, graphs []string, seq uint64, res *mcp.CallToolResult, rows int) {
	if res == nil || res.IsError {
		return
	}
	if b, err := json.Marshal(res); err != nil || len(b) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: key, prefix: prefix, graphs: graphs, seq: seq, expires: c.now().Add(c.ttl), res: res, rows: rows}
	if c.staleLocked(e) {
		return // a write to one of its graphs ran while it was computed
	}
	if el, ok := c.entries[key]; ok {
		c.lru.Remove(el)
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
}

// invalidate drops the cached results of the physical graph keys.
func (c *ResultCache) invalidate(graphs []string) {
	if len(graphs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.seq++
	for _, g := range graphs {
		c.dropped[g] = dropMark{seq: c.seq, at: now}
	}
	if len(c.dropped) > 2*c.max {
		// Marks older than the TTL guard no entry any more: every entry
		// they could make stale has expired.
		for g, d := range c.dropped {
			if now.Sub(d.at) > c.ttl {
				delete(c.dropped, g)
			}
		}
	}
}

// Purge drops every cached result of the tenant whose physical key prefix
// is prefix (graphname's Resolver.Prefix), for erasing a tenant.
func (c *ResultCache) Purge(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); e.prefix == prefix {
			c.lru.Remove(el)
			delete(c.entries, e.key)
		}
		el = next
	}
}

// Len returns the number of cached results.
func (c *ResultCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
