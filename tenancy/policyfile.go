package tenancy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The policy file is JSON:
//
//	{
//	  "planClaim": "plan",
//	  "defaultPlan": "free",
//	  "plans": {
//	    "free": {"graphs": ["*"], "scopes": ["read", "write"], "rate": 5, "burst": 10,
//	             "maxGraphs": 3, "maxGraphMemory": "64MiB", "maxTotalMemory": "128MiB",
//	             "queryTimeout": "2s", "maxRows": 1000},
//	    "pro":  {"rate": 50, "burst": 100, "maxGraphs": 100, "queryTimeout": "30s"}
//	  },
//	  "tenants": {
//	    "acme": {"plan": "pro", "graphs": ["users", "orders-*"]}
//	  }
//	}
//
// A tenant entry names its plan and may override any of the plan's fields
// for that tenant alone. Sizes are bytes, as a number or a string with a unit
// (B, KB, MB, GB, KiB, MiB, GiB); durations are strings for
// [time.ParseDuration]. Unknown fields are errors: a misspelt quota must not
// silently mean "no quota".

// planJSON is a plan (or a tenant's overrides) as the file spells it.
type planJSON struct {
	Plan           string    `json:"plan"` // tenants only: the plan to start from
	Graphs         *[]string `json:"graphs"`
	Scopes         *[]string `json:"scopes"`
	Rate           *float64  `json:"rate"`
	Burst          *int      `json:"burst"`
	Concurrent     *int      `json:"concurrent"`
	MaxGraphs      *int      `json:"maxGraphs"`
	MaxGraphMemory *size     `json:"maxGraphMemory"`
	MaxTotalMemory *size     `json:"maxTotalMemory"`
	QueryTimeout   *duration `json:"queryTimeout"`
	MaxRows        *int      `json:"maxRows"`
}

type policyJSON struct {
	PlanClaim   string               `json:"planClaim"`
	DefaultPlan string               `json:"defaultPlan"`
	Plans       map[string]*planJSON `json:"plans"`
	Tenants     map[string]*planJSON `json:"tenants"`
}

// apply sets the fields that j sets.
func (j *planJSON) apply(p *Plan) {
	if j.Graphs != nil {
		p.Graphs = append([]string{}, *j.Graphs...)
	}
	if j.Scopes != nil {
		p.Scopes = append([]string{}, *j.Scopes...)
	}
	set(&p.Rate, j.Rate)
	set(&p.Burst, j.Burst)
	set(&p.Concurrent, j.Concurrent)
	set(&p.MaxGraphs, j.MaxGraphs)
	set(&p.MaxRows, j.MaxRows)
	if j.MaxGraphMemory != nil {
		p.MaxGraphMemory = int64(*j.MaxGraphMemory)
	}
	if j.MaxTotalMemory != nil {
		p.MaxTotalMemory = int64(*j.MaxTotalMemory)
	}
	if j.QueryTimeout != nil {
		p.QueryTimeout = time.Duration(*j.QueryTimeout)
	}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// ParsePolicy reads a policy file's JSON (see the format above). A tenant
// entry with overrides gets a plan of its own named "<plan>+<tenant>". The
// policy is checked ([Policy.Check]); errors wrap [ErrInvalidPolicy] and say
// where the problem is.
func ParsePolicy(data []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pj policyJSON
	if err := dec.Decode(&pj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, jsonProblem(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the policy object", ErrInvalidPolicy)
	}
	p := &Policy{
		Plans:       make(map[string]*Plan, len(pj.Plans)),
		Tenants:     make(map[string]string, len(pj.Tenants)),
		PlanClaim:   pj.PlanClaim,
		DefaultPlan: pj.DefaultPlan,
	}
	for name, j := range pj.Plans {
		if j == nil {
			return nil, fmt.Errorf("%w: plan %q is null", ErrInvalidPolicy, name)
		}
		if j.Plan != "" {
			return nil, fmt.Errorf("%w: plan %q: \"plan\" belongs in tenant entries", ErrInvalidPolicy, name)
		}
		pl := &Plan{Name: name}
		j.apply(pl)
		p.Plans[name] = pl
	}
	for tenant, j := range pj.Tenants {
		if j == nil || j.Plan == "" {
			return nil, fmt.Errorf("%w: tenant %q names no plan", ErrInvalidPolicy, tenant)
		}
		base, ok := p.Plans[j.Plan]
		if !ok {
			return nil, fmt.Errorf("%w: tenant %q: plan %q is not defined", ErrInvalidPolicy, tenant, j.Plan)
		}
		if *j == (planJSON{Plan: j.Plan}) {
			p.Tenants[tenant] = j.Plan
			continue
		}
		own := *base
		own.Name = j.Plan + "+" + tenant
		if _, taken := p.Plans[own.Name]; taken {
			return nil, fmt.Errorf("%w: tenant %q: plan name %q is taken", ErrInvalidPolicy, tenant, own.Name)
		}
		j.apply(&own)
		p.Plans[own.Name] = &own
		p.Tenants[tenant] = own.Name
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}

// jsonProblem adds the line and column of a syntax or type error.
func jsonProblem(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// size is a byte count: a JSON number or a string such as "64MiB".
type size int64

func (s *size) UnmarshalJSON(b []byte) error {
	v := strings.TrimSpace(string(b))
	if strings.HasPrefix(v, `"`) {
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
	}
	n, err := ParseBytes(v)
	if err != nil {
		return err
	}
	*s = size(n)
	return nil
}

// ParseBytes reads a byte count: digits with an optional unit B, KB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), without
// fractions ("64MiB", "500MB", "1024").
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want digits and a unit such as MiB", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	units := map[string]int64{"": 1, "B": 1,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	u, ok := units[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, strings.TrimSpace(s[i:]))
	}
	if n > math.MaxInt64/u {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * u, nil
}

// FormatBytes writes a byte count with a binary unit and at most one
// decimal ("64 MiB", "1.5 GiB", "512 B").
func FormatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < 5 {
		v /= 1024
		i++
	}
	s := strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	return s + " " + "KMGTPE"[i:i+1] + "iB"
}

// duration is a time.Duration spelt as a string ("2s").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("queryTimeout: want a duration string such as \"2s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("queryTimeout: %w", err)
	}
	*d = duration(v)
	return nil
}

// PolicyFile is a [PlanSource] read from a policy file that can be reloaded
// while calls run: [PolicyFile.Reload] swaps in the new policy atomically,
// and a file that cannot be read or is not valid keeps the old policy (the
// error says why). Reload on SIGHUP, on a timer with [PolicyFile.Watch], or
// both.
type PolicyFile struct {
	path string
	cur  atomic.Pointer[loadedPolicy]
	mu   sync.Mutex // serialises reloads
}

type loadedPolicy struct {
	p       *Policy
	version string
	st      os.FileInfo // of the file read
}

// OpenPolicyFile reads and checks the policy file at path.
func OpenPolicyFile(path string) (*PolicyFile, error) {
	f := &PolicyFile{path: path}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Plan returns the caller's plan under the current policy.
func (f *PolicyFile) Plan(id *Identity) (*Plan, error) {
	return f.cur.Load().p.Plan(id)
}

// Policy returns the current policy. Do not change it.
func (f *PolicyFile) Policy() *Policy { return f.cur.Load().p }

// Version returns the hex SHA-256 of the file the current policy was read
// from: replicas running the same policy report the same version.
func (f *PolicyFile) Version() string { return f.cur.Load().version }

// Reload reads the file again. It reports whether the policy changed (the
// file's content differs from the current policy's). On an error the
// current policy stays.
func (f *PolicyFile) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("policy file: %w", err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("policy file: %w", err)
	}
	sum := sha256.Sum256(data)
	version := hex.EncodeToString(sum[:])
	old := f.cur.Load()
	if old != nil && old.version == version {
		f.cur.Store(&loadedPolicy{p: old.p, version: version, st: st})
		return false, nil
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return false, fmt.Errorf("policy file %s: %w", f.path, err)
	}
	f.cur.Store(&loadedPolicy{p: p, version: version, st: st})
	return true, nil
}

// Watch checks the file every interval until ctx ends and reloads it when
// it changed: another file renamed over it (as deployment tools and
// Kubernetes ConfigMaps do), or another modification time or size. It calls report (if not nil) after
// each reload attempt, with the error of a failed one. Watch returns when ctx
// is done.
func (f *PolicyFile) Watch(ctx context.Context, interval time.Duration, report func(changed bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := f.cur.Load()
		st, err := os.Stat(f.path)
		if err == nil && unchanged(cur.st, st) {
			continue
		}
		changed, err := f.Reload()
		if err != nil && err.Error() == lastErr {
			continue // already reported; wait for the file to change
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		if report != nil && (changed || err != nil) {
			report(changed, err)
		}
	}
}

// unchanged reports whether the file at path is still the one read.
func unchanged(read, now os.FileInfo) bool {
	return os.SameFile(read, now) && now.ModTime().Equal(read.ModTime()) && now.Size() == read.Size()
}
