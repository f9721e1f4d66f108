package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/graphname"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// Tenant operations: backup to a file, restore from one, erasure. They are
// run by the sub-commands (main.go) and the admin endpoints (admin.go).

// backupFormat names the backup file format; restore refuses other files.
const backupFormat = "tenantgraph-backup/1"

// backupFile is a tenant's backup: each graph's DUMP payload, by logical
// name and physical key, with its SHA-256.
type backupFile struct {
	Format  string        `json:"format"`
	Tenant  string        `json:"tenant"`
	Created time.Time     `json:"created"`
	Graphs  []backupGraph `json:"graphs"`
}

type backupGraph struct {
	Graph  string `json:"graph"`  // logical name
	Key    string `json:"key"`    // physical key it was dumped from
	SHA256 string `json:"sha256"` // of Dump
	Dump   []byte `json:"dump"`   // DUMP payload (base64 in JSON)
}

// tenantOps are the operations on one FalkorDB deployment.
type tenantOps struct {
	db       *falkor.Client
	r        *graphname.Resolver
	usage    *tenancy.Usage       // nil: no usage counters
	cache    *tenancy.ResultCache // nil: no cache in this process
	ratePref string               // key prefix of the shared rate limiter
}

// errBackup marks a backup file that cannot be restored.
var errBackup = errors.New("backup file")

// tenantGraphs returns the logical names of the tenant's graphs, sorted.
func (o *tenantOps) tenantGraphs(ctx context.Context, tenant string) ([]string, error) {
	if _, err := o.r.Prefix(tenant); err != nil {
		return nil, err
	}
	all, err := o.db.ListGraphs(ctx)
	if err != nil {
		return nil, err
	}
	gs := o.r.Filter(tenant, all)
	slices.Sort(gs)
	return gs, nil
}

// backup writes all of the tenant's graphs to w. It returns the number of
// graphs written.
func (o *tenantOps) backup(ctx context.Context, tenant string, w io.Writer) (int, error) {
	gs, err := o.tenantGraphs(ctx, tenant)
	if err != nil {
		return 0, err
	}
	f := backupFile{Format: backupFormat, Tenant: tenant, Created: time.Now().UTC(), Graphs: []backupGraph{}}
	for _, g := range gs {
		key, err := o.r.Resolve(tenant, g)
		if err != nil {
			return 0, err
		}
		dump, err := o.db.DumpGraph(ctx, key)
		if errors.Is(err, falkor.ErrGraphNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return 0, fmt.Errorf("graph %q: %w", g, err)
		}
		sum := sha256.Sum256(dump)
		f.Graphs = append(f.Graphs, backupGraph{Graph: g, Key: key, SHA256: hex.EncodeToString(sum[:]), Dump: dump})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return len(f.Graphs), enc.Encode(&f)
}

// readBackup reads and checks a backup file: format, checksums, and that
// every graph's key is the one the resolver gives for its tenant and name
// (a payload may only be restored under the key it was dumped from).
func readBackup(r *graphname.Resolver, rd io.Reader) (*backupFile, error) {
	var f backupFile
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: not a backup file: %w", errBackup, err)
	}
	if f.Format != backupFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", errBackup, f.Format, backupFormat)
	}
	seen := map[string]bool{}
	for _, g := range f.Graphs {
		sum := sha256.Sum256(g.Dump)
		if hex.EncodeToString(sum[:]) != g.SHA256 {
			return nil, fmt.Errorf("%w: graph %q: checksum mismatch (the file is damaged)", errBackup, g.Graph)
		}
		key, err := r.Resolve(f.Tenant, g.Graph)
		if err != nil {
			return nil, fmt.Errorf("%w: graph %q: %w", errBackup, g.Graph, err)
		}
		if key != g.Key {
			return nil, fmt.Errorf("%w: graph %q was saved from key %q but maps to %q here (another key scheme); restoring under another key is not supported", errBackup, g.Graph, g.Key, key)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: graph %q appears twice", errBackup, g.Graph)
		}
		seen[key] = true
	}
	return &f, nil
}

// restore creates the graphs of a backup file. Nothing is restored when
// one of the graphs exists already: erase the tenant (or delete those
// graphs) first. wantTenant, when not empty, must be the file's tenant.
func (o *tenantOps) restore(ctx context.Context, rd io.Reader, wantTenant string) (*backupFile, error) {
	f, err := readBackup(o.r, rd)
	if err != nil {
		return nil, err
	}
	if wantTenant != "" && wantTenant != f.Tenant {
		return nil, fmt.Errorf("%w: the file holds tenant %q, not %q", errBackup, f.Tenant, wantTenant)
	}
	var exist []string
	for _, g := range f.Graphs {
		ok, err := o.db.GraphExists(ctx, g.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			exist = append(exist, g.Graph)
		}
	}
	if len(exist) > 0 {
		return nil, fmt.Errorf("%w: tenant %q already has the graphs %q: erase the tenant or delete them first; nothing was restored", falkor.ErrGraphExists, f.Tenant, exist)
	}
	for i, g := range f.Graphs {
		if err := o.db.RestoreGraph(ctx, g.Key, g.Dump); err != nil {
			return nil, fmt.Errorf("graph %q (%d of %d restored before it): %w", g.Graph, i, len(f.Graphs), err)
		}
	}
	if o.cache != nil {
		p, _ := o.r.Prefix(f.Tenant)
		o.cache.Purge(p)
	}
	return f, nil
}

// erasure is what erase removed.
type erasure struct {
	Tenant    string   `json:"tenant"`
	Graphs    []string `json:"graphs"`
	UsageKeys bool     `json:"usageCounters"`
	RateLimit bool     `json:"rateLimit"`
	DBUser    bool     `json:"databaseUser"`
	Remaining int      `json:"remainingKeys"` // keys of the tenant still found by SCAN: 0
}

// erase deletes everything the tenant owns: its graphs, usage counters,
// rate-limit bucket, database ACL user and cached results (of this
// process), then counts the tenant's keys left with SCAN.
func (o *tenantOps) erase(ctx context.Context, tenant string) (*erasure, error) {
	prefix, err := o.r.Prefix(tenant)
	if err != nil {
		return nil, err
	}
	out := &erasure{Tenant: tenant, Graphs: []string{}}
	gs, err := o.tenantGraphs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		key, _ := o.r.Resolve(tenant, g)
		if err := o.db.DeleteGraph(ctx, key); err != nil && !errors.Is(err, falkor.ErrGraphNotFound) {
			return out, fmt.Errorf("deleting graph %q: %w", g, err)
		}
		out.Graphs = append(out.Graphs, g)
	}
	if o.usage != nil {
		if err := o.usage.Erase(ctx, tenant); err != nil {
			return out, fmt.Errorf("usage counters: %w", err)
		}
		out.UsageKeys = true
	}
	if o.ratePref != "" {
		if err := o.db.Redis().Del(ctx, o.ratePref+prefix).Err(); err != nil {
			return out, fmt.Errorf("rate limit bucket: %w", err)
		}
		out.RateLimit = true
	}
	if err := o.db.DropScope(ctx, aclUserPrefix+prefix); err != nil && !errors.Is(err, falkor.ErrPermission) {
		return out, fmt.Errorf("database user: %w", err)
	} else if err == nil {
		out.DBUser = true
	}
	if o.cache != nil {
		o.cache.Purge(prefix)
	}
	patterns := []string{prefix + "*"}
	if o.usage != nil {
		patterns = append(patterns, o.usage.Keys(tenant))
	}
	if o.ratePref != "" {
		patterns = append(patterns, o.ratePref+prefix)
	}
	for _, pat := range patterns {
		n, err := countKeys(ctx, o.db.Redis(), pat)
		if err != nil {
			return out, fmt.Errorf("checking for keys left: %w", err)
		}
		out.Remaining += n
	}
	return out, nil
}

// countKeys counts the keys matching pattern with SCAN, on every primary of
// a cluster.
func countKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) (int, error) {
	count := func(ctx context.Context, c redis.Cmdable) (int, error) {
		n := 0
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return count(ctx, rdb)
	}
	var total atomic.Int64
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := count(ctx, c)
		total.Add(int64(n))
		return err
	})
	return int(total.Load()), err
}
