package authn

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// tokenCache maps SHA-256(token) to verified results. It holds at most max
// entries; each lives until the earliest of the token's exp and ttl.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*cacheEntry
	max int
	ttl time.Duration
}

type cacheEntry struct {
	p     *Principal
	ti    *auth.TokenInfo
	in    *issuer
	set   *keySet // the key set that verified the token
	until time.Time
}

// keyBufs holds buffers for hashing tokens without allocating.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func cacheKey(token string) [32]byte {
	bp := keyBufs.Get().(*[]byte)
	b := append((*bp)[:0], token...)
	k := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*bp = b
		keyBufs.Put(bp)
	}
	return k
}

// valid reports whether a cached entry may still be used: not expired, and
// verified by the issuer's current, fresh key set (a key-set refresh or
// staleness invalidates entries).
func (e *cacheEntry) valid(now time.Time) bool {
	if !now.Before(e.until) {
		return false
	}
	if r := e.in.remote; r != nil {
		return r.usable(now) == e.set
	}
	return true
}

func (c *tokenCache) get(k [32]byte, now time.Time) *cacheEntry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.until) {
		return nil
	}
	return e
}

func (c *tokenCache) put(k [32]byte, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Evict: expired entries among a few visited (map order is
		// random), else the first visited one.
		var victim [32]byte
		found, visited, freed := false, 0, false
		for key, old := range c.m {
			if !found {
				victim, found = key, true
			}
			if !now.Before(old.until) {
				delete(c.m, key)
				freed = true
			}
			if visited++; visited >= 16 {
				break
			}
		}
		if !freed && found {
			delete(c.m, victim)
		}
	}
	c.m[k] = e
}

func (c *tokenCache) dropJTI(jti string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.JTI == jti {
			delete(c.m, k)
		}
	}
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
