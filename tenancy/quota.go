package tenancy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tenantgraph/tenantgraph/graphname"
)

// quotaRefresh is how long a measurement of a tenant's graphs is trusted
// before the middleware measures again. Writes through this process update
// the measurement at once; writes through other replicas are seen after at
// most this long.
const quotaRefresh = 10 * time.Second

// quotas enforces the graph-count and memory quotas of plans.
type quotas struct {
	store GraphStore
	r     *graphname.Resolver
	now   func() time.Time

	mu      sync.Mutex
	tenants map[string]*holdings // by physical prefix; one small entry per tenant that wrote
}

// holdings is what the middleware knows of one tenant's graphs.
type holdings struct {
	create sync.Mutex // held by calls that may create graphs, check to write

	mu   sync.Mutex
	mem  map[string]int64 // graph key -> bytes
	at   map[string]time.Time
	full time.Time // when every graph of the tenant was last measured
}

func (q *quotas) of(prefix string) *holdings {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.tenants[prefix]
	if h == nil {
		h = &holdings{mem: map[string]int64{}, at: map[string]time.Time{}}
		q.tenants[prefix] = h
	}
	return h
}

func checkFailed(err error) error {
	return fmt.Errorf("%w: %w", ErrQuotaCheck, err)
}

// before checks the quotas of pl for a write to keys by tenant. On success
// it returns a function to call when the write is over.
func (q *quotas) before(ctx context.Context, pl *Plan, tenant, prefix string, keys []string) (done func(), err error) {
	if q.store == nil {
		return nil, checkFailed(fmt.Errorf("plan %q has quotas but the middleware has no GraphStore", pl.Name))
	}
	h := q.of(prefix)
	keys = uniq(keys)
	var fresh []string
	for _, k := range keys {
		ok, err := q.store.GraphExists(ctx, k)
		if err != nil {
			return nil, checkFailed(err)
		}
		if !ok {
			fresh = append(fresh, k)
		}
	}
	done = func() {}
	if pl.MaxGraphs > 0 && len(fresh) > 0 {
		// One creation at a time per tenant in this process, so that
		// concurrent calls cannot each see room for one more graph.
		h.create.Lock()
		done = h.create.Unlock
	}
	if err := q.check(ctx, pl, h, tenant, keys, fresh); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// check compares what the tenant holds with the quotas of pl; fresh are the
// keys the write would create.
func (q *quotas) check(ctx context.Context, pl *Plan, h *holdings, tenant string, keys, fresh []string) error {
	if pl.MaxGraphs > 0 && len(fresh) > 0 {
		held, err := q.tenantKeys(ctx, tenant)
		if err != nil {
			return checkFailed(err)
		}
		if n := len(held); n+len(fresh) > pl.MaxGraphs {
			return &QuotaError{Plan: pl.Name, Quota: "maxGraphs", Limit: int64(pl.MaxGraphs), Used: int64(n)}
		}
	}
	if pl.MaxGraphMemory > 0 {
		for _, k := range keys {
			if slices.Contains(fresh, k) {
				continue
			}
			b, err := q.graphBytes(ctx, h, k)
			if err != nil {
				return checkFailed(err)
			}
			if b >= pl.MaxGraphMemory {
				g, _ := q.r.Strip(tenant, k)
				return &QuotaError{Plan: pl.Name, Quota: "maxGraphMemory", Limit: pl.MaxGraphMemory, Used: b, Graph: g}
			}
		}
	}
	if pl.MaxTotalMemory > 0 {
		total, err := q.totalBytes(ctx, h, tenant)
		if err != nil {
			return checkFailed(err)
		}
		if total >= pl.MaxTotalMemory {
			return &QuotaError{Plan: pl.Name, Quota: "maxTotalMemory", Limit: pl.MaxTotalMemory, Used: total}
		}
	}
	return nil
}

// after measures the graphs a write reached, so that the next write sees
// their new size. Failures only make the next check measure again.
func (q *quotas) after(ctx context.Context, pl *Plan, prefix string, keys []string) {
	if q.store == nil || pl.MaxGraphMemory <= 0 && pl.MaxTotalMemory <= 0 {
		return
	}
	h := q.of(prefix)
	for _, k := range uniq(keys) {
		b, err := q.store.GraphMemory(ctx, k)
		h.mu.Lock()
		if err != nil {
			delete(h.at, k)
			h.full = time.Time{}
		} else {
			if _, known := h.mem[k]; !known {
				h.full = time.Time{} // a new graph: count again
			}
			h.mem[k], h.at[k] = b, q.now()
		}
		h.mu.Unlock()
	}
}

// deleted forgets the graphs a deletion reached.
func (q *quotas) deleted(prefix string, keys []string) {
	h := q.of(prefix)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		delete(h.mem, k)
		delete(h.at, k)
	}
	h.full = time.Time{}
}

// tenantKeys returns the keys of the tenant's graphs.
func (q *quotas) tenantKeys(ctx context.Context, tenant string) ([]string, error) {
	all, err := q.store.ListGraphs(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range all {
		if _, ok := q.r.Strip(tenant, k); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (q *quotas) graphBytes(ctx context.Context, h *holdings, key string) (int64, error) {
	h.mu.Lock()
	b, known := h.mem[key]
	at := h.at[key]
	h.mu.Unlock()
	if known && q.now().Sub(at) < quotaRefresh {
		return b, nil
	}
	b, err := q.store.GraphMemory(ctx, key)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	h.mem[key], h.at[key] = b, q.now()
	h.mu.Unlock()
	return b, nil
}

func (q *quotas) totalBytes(ctx context.Context, h *holdings, tenant string) (int64, error) {
	h.mu.Lock()
	if !h.full.IsZero() && q.now().Sub(h.full) < quotaRefresh {
		var total int64
		for _, b := range h.mem {
			total += b
		}
		h.mu.Unlock()
		return total, nil
	}
	h.mu.Unlock()
	keys, err := q.tenantKeys(ctx, tenant)
	if err != nil {
		return 0, err
	}
	mem := map[string]int64{}
	var total int64
	for _, k := range keys {
		b, err := q.store.GraphMemory(ctx, k)
		if err != nil {
			return 0, err
		}
		mem[k] = b
		total += b
	}
	now := q.now()
	h.mu.Lock()
	h.mem, h.at = mem, make(map[string]time.Time, len(mem))
	for k := range mem {
		h.at[k] = now
	}
	h.full = now
	h.mu.Unlock()
	return total, nil
}

func uniq(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	out := slices.Clone(keys)
	slices.Sort(out)
	return slices.Compact(out)
}
