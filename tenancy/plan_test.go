package tenancy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/graphname"
)

const testPolicy = `{
  "planClaim": "plan",
  "defaultPlan": "free",
  "plans": {
    "free": {"graphs": ["users", "orders-*"], "scopes": ["read"], "rate": 5, "burst": 10,
             "maxGraphs": 3, "maxGraphMemory": "64MiB", "maxTotalMemory": 1000,
             "queryTimeout": "2s", "maxRows": 100},
    "pro":  {"rate": 50, "burst": 100, "queryTimeout": "30s"}
  },
  "tenants": {
    "acme": {"plan": "pro", "graphs": ["users"], "maxRows": 7},
    "bob":  {"plan": "free"}
  }
}`

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(testPolicy))
	require.NoError(t, err)
	require.Equal(t, "plan", p.PlanClaim)
	require.Equal(t, "free", p.DefaultPlan)
	require.Equal(t, &Plan{Name: "free", Graphs: []string{"users", "orders-*"}, Scopes: []string{"read"}, Rate: 5, Burst: 10,
		MaxGraphs: 3, MaxGraphMemory: 64 << 20, MaxTotalMemory: 1000, QueryTimeout: 2 * time.Second, MaxRows: 100}, p.Plans["free"])
	require.Equal(t, &Plan{Name: "pro", Rate: 50, Burst: 100, QueryTimeout: 30 * time.Second}, p.Plans["pro"])
	// A tenant entry with overrides gets its own plan: the base plan's
	// values with the overrides; the base plan is unchanged.
	require.Equal(t, "pro+acme", p.Tenants["acme"])
	require.Equal(t, &Plan{Name: "pro+acme", Graphs: []string{"users"}, Rate: 50, Burst: 100, QueryTimeout: 30 * time.Second, MaxRows: 7}, p.Plans["pro+acme"])
	require.Equal(t, "free", p.Tenants["bob"])
}

func TestParsePolicyRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"not JSON", `{"plans": `, "unexpected EOF"},
		{"unknown field", `{"plans": {"free": {"maxGraph": 3}}}`, `unknown field "maxGraph"`},
		{"unknown top field", `{"default": "free"}`, `unknown field "default"`},
		{"trailing data", `{} {}`, "data after the policy object"},
		{"bad size unit", `{"plans": {"free": {"maxGraphMemory": "64 parsecs"}}}`, `unknown unit "parsecs"`},
		{"fractional size", `{"plans": {"free": {"maxGraphMemory": "1.5GiB"}}}`, "unknown unit"},
		{"size overflow", `{"plans": {"free": {"maxGraphMemory": "9999999999999TiB"}}}`, "too large"},
		{"bad duration", `{"plans": {"free": {"queryTimeout": "2 parsecs"}}}`, "queryTimeout"},
		{"numeric duration", `{"plans": {"free": {"queryTimeout": 2}}}`, "want a duration string"},
		{"negative", `{"plans": {"free": {"maxRows": -1}}}`, "maxRows: -1 is negative"},
		{"negative rate", `{"plans": {"free": {"rate": -1}}}`, "rate: -1 is negative"},
		{"bad pattern", `{"plans": {"free": {"graphs": ["a["]}}}`, `pattern "a["`},
		{"empty pattern", `{"plans": {"free": {"graphs": [""]}}}`, "empty pattern"},
		{"bad scope", `{"plans": {"free": {"scopes": ["read write"]}}}`, "not a scope"},
		{"undefined default", `{"defaultPlan": "gold", "plans": {"free": {}}}`, `default plan "gold" is not defined`},
		{"tenant without plan", `{"plans": {"free": {}}, "tenants": {"acme": {"maxRows": 1}}}`, `tenant "acme" names no plan`},
		{"tenant with unknown plan", `{"plans": {"free": {}}, "tenants": {"acme": {"plan": "gold"}}}`, `plan "gold" is not defined`},
		{"plan naming a plan", `{"plans": {"free": {"plan": "pro"}}}`, "belongs in tenant entries"},
		{"null plan", `{"plans": {"free": null}}`, "is null"},
		{"wrong type", `{"plans": {"free": {"maxRows": "many"}}}`, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.file))
			require.ErrorIs(t, err, ErrInvalidPolicy)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "64MiB": 64 << 20, "500 MB": 500e6, "2GiB": 2 << 30, "7B": 7, "1KB": 1000, "3TiB": 3 << 40} {
		got, err := ParseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "12 XB", "99999999999999999999"} {
		_, err := ParseBytes(in)
		require.Error(t, err, in)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 64 << 20: "64 MiB", 3 << 40: "3 TiB"} {
		require.Equal(t, want, FormatBytes(n))
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(testPolicy))
	f.Add([]byte(`{"plans": {"a": {"graphs": []}}, "tenants": {"t": {"plan": "a", "scopes": []}}}`))
	f.Add([]byte(`{"plans": {"a": {}}, "tenants": {"a": {"plan": "a", "rate": 1}}, "defaultPlan": "a+a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidPolicy)
			return
		}
		// Whatever parses is consistent: every tenant and the default
		// resolve to a defined plan with valid values.
		require.NoError(t, p.Check())
		for tenant := range p.Tenants {
			pl, err := p.Plan(&Identity{Tenant: tenant})
			require.NoError(t, err)
			require.NoError(t, pl.check())
		}
	})
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"64MiB", "1", "9223372036854775807", "9223372036854775807KiB", " 5 GB "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err == nil {
			require.GreaterOrEqual(t, n, int64(0))
		}
	})
}

// claimed is an identity whose token carries claims.
func claimed(tenant string, claims map[string]any, scopes ...string) *Identity {
	id := ident(tenant, scopes...)
	id.Token = &auth.TokenInfo{Scopes: scopes, Extra: map[string]any{ExtraTenant: tenant, ExtraClaims: claims}}
	return id
}

func TestPolicyPlanSelection(t *testing.T) {
	p, err := ParsePolicy([]byte(testPolicy))
	require.NoError(t, err)
	noDefault := *p
	noDefault.DefaultPlan = ""
	for _, tc := range []struct {
		name   string
		policy *Policy
		id     *Identity
		want   string // plan name, or "" for a refusal
	}{
		{"tenant entry", p, ident("acme"), "pro+acme"},
		{"tenant entry beats the claim", p, claimed("acme", map[string]any{"plan": "free"}), "pro+acme"},
		{"claim", p, claimed("carol", map[string]any{"plan": "pro"}), "pro"},
		{"default", p, ident("carol"), "free"},
		{"default without claims", p, claimed("carol", map[string]any{"sub": "x"}), "free"},
		{"unknown plan claim refused", p, claimed("carol", map[string]any{"plan": "gold"}), ""},
		{"non-string claim refused", p, claimed("carol", map[string]any{"plan": 7}), ""},
		{"empty claim refused", p, claimed("carol", map[string]any{"plan": ""}), ""},
		{"no default refuses", &noDefault, ident("carol"), ""},
		{"no tenant refused", p, &Identity{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := tc.policy.Plan(tc.id)
			if tc.want == "" {
				require.ErrorIs(t, err, ErrNoPlan)
				require.Nil(t, pl)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, pl.Name)
		})
	}
}

// planTools is the policy of the plan tests: the test tools and a probe
// that reports the plan and deadline it sees.
func planEnv(t *testing.T, cfg Config) *env {
	if cfg.Tools == nil {
		cfg.Tools = MergeTools(allTools(), map[string]ToolPolicy{"probe": {}})
	}
	e := newEnv(t, cfg)
	e.srv.AddTool(&mcp.Tool{Name: "probe", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		e.rec.add(ctx, "probe", req.Params.Arguments)
		out := map[string]any{}
		if pl := PlanFromContext(ctx); pl != nil {
			out["plan"], out["maxRows"] = pl.Name, pl.MaxRows
		}
		if dl, ok := ctx.Deadline(); ok {
			out["deadlineMs"] = time.Until(dl).Milliseconds()
		}
		id, _ := FromContext(ctx)
		out["scopes"] = id.Scopes
		b, _ := json.Marshal(out)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil
	})
	return e
}

func TestPlanEnforcedByMiddleware(t *testing.T) {
	p, err := ParsePolicy([]byte(testPolicy))
	require.NoError(t, err)
	noDefault := *p
	noDefault.DefaultPlan = ""
	e := planEnv(t, Config{Plans: p})

	acme := e.connect(ident("acme", ScopeRead, ScopeWrite, ScopeAdmin)) // plan pro+acme: graphs [users]
	bob := e.connect(ident("bob", ScopeRead, ScopeWrite, ScopeAdmin))   // plan free: read only, users + orders-*

	t.Run("allow-list refuses other graph names before the tool runs", func(t *testing.T) {
		before := e.rec.count()
		res, err := callTool(t, acme, "falkordb_ro_query", map[string]any{"graphName": "orders-2026", "query": "RETURN 1"})
		require.NoError(t, err)
		require.True(t, res.IsError)
		require.Contains(t, text(res), `the tenant's plan does not allow graph "orders-2026"`)
		require.NotContains(t, text(res), "acme_")
		require.Equal(t, before, e.rec.count(), "the tool must not run")

		res, err = callTool(t, acme, "falkordb_ro_query", map[string]any{"graphName": "users", "query": "RETURN 1"})
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		require.Equal(t, "acme_users", e.rec.last().args["graphName"])

		res, err = callTool(t, bob, "falkordb_ro_query", map[string]any{"graphName": "orders-2026", "query": "RETURN 1"})
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		res, err = callTool(t, bob, "falkordb_ro_query", map[string]any{"graphName": "orders", "query": "RETURN 1"})
		require.NoError(t, err)
		require.True(t, res.IsError)
	})

	t.Run("graph lists hide names outside the allow-list", func(t *testing.T) {
		res, err := callTool(t, acme, "falkordb_list_graphs", map[string]any{})
		require.NoError(t, err)
		require.Equal(t, `{"graphs":["users"]}`, structured(t, res)) // not "orders"
	})

	t.Run("scopes are the intersection of token and plan", func(t *testing.T) {
		// bob's token grants write and admin, his plan only read: a write
		// is routed to the read-only tool, a delete refused.
		res, err := callTool(t, bob, "falkordb_query", map[string]any{"graphName": "users", "query": "CREATE ()"})
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		require.Equal(t, "falkordb_ro_query", e.rec.last().tool)
		before := e.rec.count()
		res, err = callTool(t, bob, "falkordb_delete_graph", map[string]any{"graphName": "users", "confirm": true})
		require.NoError(t, err)
		require.True(t, res.IsError)
		require.Contains(t, text(res), "permission denied")
		require.Equal(t, before, e.rec.count())
		// The tool sees the intersected scopes.
		res, err = callTool(t, bob, "probe", map[string]any{})
		require.NoError(t, err)
		require.Contains(t, text(res), `"scopes":["read"]`)
		// tools/list shows what the plan admits.
		lr, err := bob.ListTools(context.Background(), nil)
		require.NoError(t, err)
		for _, tl := range lr.Tools {
			require.NotEqual(t, "falkordb_delete_graph", tl.Name)
		}
		// A plan without scope limits keeps the token's scopes.
		res, err = callTool(t, acme, "falkordb_query", map[string]any{"graphName": "users", "query": "CREATE ()"})
		require.NoError(t, err)
		require.False(t, res.IsError)
		require.Equal(t, "falkordb_query", e.rec.last().tool)
	})

	t.Run("the tool sees the plan and its timeout", func(t *testing.T) {
		res, err := callTool(t, acme, "probe", map[string]any{})
		require.NoError(t, err)
		var got struct {
			Plan       string
			MaxRows    int
			DeadlineMs int64
		}
		require.NoError(t, json.Unmarshal([]byte(text(res)), &got))
		require.Equal(t, "pro+acme", got.Plan)
		require.Equal(t, 7, got.MaxRows)
		require.InDelta(t, 30_000, got.DeadlineMs, 5_000)
	})

	t.Run("a caller without a plan is refused everything", func(t *testing.T) {
		e2 := planEnv(t, Config{Plans: &noDefault})
		carol := e2.connect(ident("carol", ScopeRead, ScopeWrite))
		res, err := callTool(t, carol, "falkordb_ro_query", map[string]any{"graphName": "users", "query": "RETURN 1"})
		require.NoError(t, err)
		require.True(t, res.IsError)
		require.Contains(t, text(res), "no plan of this server admits the tenant")
		require.Zero(t, e2.rec.count())
		lr, err := carol.ListTools(context.Background(), nil)
		require.NoError(t, err)
		require.Empty(t, lr.Tools)
	})
}

func TestPlanTimeoutCancelsTheTool(t *testing.T) {
	p := &Policy{Plans: map[string]*Plan{"p": {Name: "p", QueryTimeout: 50 * time.Millisecond}}, DefaultPlan: "p"}
	e := planEnv(t, Config{Plans: p})
	cs := e.connect(acmeRO)
	start := time.Now()
	res, err := callTool(t, cs, "block", map[string]any{}) // returns when its context ends
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.Less(t, time.Since(start), 5*time.Second, "the plan's timeout must end the call")
}

func TestPlanRateLimit(t *testing.T) {
	p := &Policy{Plans: map[string]*Plan{"p": {Name: "p", Rate: 0.001, Burst: 2}}, DefaultPlan: "p"}
	e := planEnv(t, Config{Plans: p})
	acme, bob := e.connect(acmeRO), e.connect(ident("bob", ScopeRead))
	for i, want := range []bool{false, false, true} {
		res, err := callTool(t, acme, "probe", map[string]any{})
		require.NoError(t, err)
		require.Equal(t, want, res.IsError, "call %d", i)
	}
	res, err := callTool(t, bob, "probe", map[string]any{})
	require.NoError(t, err)
	require.False(t, res.IsError, "another tenant has its own budget")
}

func TestCaseFoldedTenantGetsItsOwnPlan(t *testing.T) {
	r, err := graphname.New(graphname.Options{TenantCase: graphname.CaseFold})
	require.NoError(t, err)
	p := &Policy{Plans: map[string]*Plan{"narrow": {Name: "narrow", Graphs: []string{"a"}}, "wide": {Name: "wide"}},
		Tenants: map[string]string{"acme": "narrow"}, DefaultPlan: "wide"}
	e := planEnv(t, Config{Plans: p, Resolver: r})
	cs := e.connect(ident("ACME", ScopeRead))
	res, err := callTool(t, cs, "falkordb_ro_query", map[string]any{"graphName": "b", "query": "RETURN 1"})
	require.NoError(t, err)
	require.True(t, res.IsError, "ACME is acme: the narrow plan applies")
}

func writePolicy(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func TestPolicyFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["x"]}}}`)
	f, err := OpenPolicyFile(path)
	require.NoError(t, err)
	v1 := f.Version()
	require.Len(t, v1, 64)

	changed, err := f.Reload()
	require.NoError(t, err)
	require.False(t, changed, "same content")

	// A bad file keeps the old policy and says why.
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["x"], "maxRowz": 1}}}`)
	changed, err = f.Reload()
	require.ErrorIs(t, err, ErrInvalidPolicy)
	require.ErrorContains(t, err, `unknown field "maxRowz"`)
	require.ErrorContains(t, err, path)
	require.False(t, changed)
	require.Equal(t, v1, f.Version())
	pl, err := f.Plan(ident("acme"))
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, pl.Graphs)

	// A missing file too.
	require.NoError(t, os.Remove(path))
	_, err = f.Reload()
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Equal(t, v1, f.Version())

	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["y"]}}}`)
	changed, err = f.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.NotEqual(t, v1, f.Version())
	pl, err = f.Plan(ident("acme"))
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, pl.Graphs)

	_, err = OpenPolicyFile(filepath.Join(t.TempDir(), "none.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestPolicyFileWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["x"]}}}`)
	f, err := OpenPolicyFile(path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reports := make(chan error, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Watch(ctx, 10*time.Millisecond, func(changed bool, err error) { reports <- err })
	}()
	next := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the change was not seen")
			return nil
		}
	}
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["xy"]}}}`)
	require.NoError(t, next())
	require.Equal(t, []string{"xy"}, f.Policy().Plans["a"].Graphs)
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["xyz"], "nope": 1}}}`)
	require.ErrorIs(t, next(), ErrInvalidPolicy)
	require.Equal(t, []string{"xy"}, f.Policy().Plans["a"].Graphs, "the bad file keeps the old policy")
	// Another file renamed over it with the same size and modification
	// time (as a ConfigMap update may look) is seen too.
	writePolicy(t, path, `{"defaultPlan": "a", "plans": {"a": {"graphs": ["yx"]}}}`)
	require.NoError(t, next())
	require.Equal(t, []string{"yx"}, f.Policy().Plans["a"].Graphs)
	st, err := os.Stat(path)
	require.NoError(t, err)
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(`{"defaultPlan": "a", "plans": {"a": {"graphs": ["zw"]}}}`+strings.Repeat(" ", int(st.Size())-56)), 0o600))
	require.NoError(t, os.Chtimes(tmp, st.ModTime(), st.ModTime()))
	require.NoError(t, os.Rename(tmp, path))
	require.NoError(t, next())
	require.Equal(t, []string{"zw"}, f.Policy().Plans["a"].Graphs)
	cancel()
	<-done // Watch returns when its context ends
}

// TestPolicyReloadUnderLoad swaps the policy while 8 clients call: every
// call is answered, by the old or the new policy, and none fails.
func TestPolicyReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	body := func(i int) string {
		return `{"defaultPlan": "a", "plans": {"a": {"graphs": ["users", "g` + string(rune('a'+i%26)) + `"], "maxRows": ` + string(rune('1'+i%9)) + `}}}`
	}
	writePolicy(t, path, body(0))
	f, err := OpenPolicyFile(path)
	require.NoError(t, err)
	e := planEnv(t, Config{Plans: f})

	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		cs := e.connect(ident("t"+string(rune('a'+w)), ScopeRead))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "falkordb_ro_query",
					Arguments: map[string]any{"graphName": "users", "query": "RETURN 1"}})
				calls.Add(1)
				if err != nil || res.IsError {
					failed.Add(1)
				}
			}
		}()
	}
	reloads := 0
	for i := 1; reloads < 50; i++ {
		writePolicy(t, path, body(i))
		changed, err := f.Reload()
		require.NoError(t, err)
		if changed {
			reloads++
		}
		if i%5 == 0 {
			// A bad file in between keeps the old policy.
			writePolicy(t, path, `{"plans": {`)
			_, err := f.Reload()
			require.Error(t, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load(), "of %d calls", calls.Load())
	require.Greater(t, calls.Load(), int64(50))
}

func TestResultCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var events []*Event
	var evMu sync.Mutex
	cache := NewResultCache(&CacheOptions{TTL: 5 * time.Second, Now: clock})
	e := newEnv(t, Config{Cache: cache, Auditor: AuditFunc(func(_ context.Context, ev *Event) {
		evMu.Lock()
		defer evMu.Unlock()
		cp := *ev
		events = append(events, &cp)
	})})
	acme, bob := e.connect(acmeRW), e.connect(bobRW)
	read := func(cs *mcp.ClientSession, graph string) string {
		t.Helper()
		res, err := callTool(t, cs, "falkordb_ro_query", map[string]any{"graphName": graph, "query": "MATCH (n) RETURN n"})
		require.NoError(t, err)
		require.False(t, res.IsError, text(res))
		return text(res)
	}
	lastCached := func() bool {
		evMu.Lock()
		defer evMu.Unlock()
		return events[len(events)-1].Cached
	}

	require.Equal(t, "falkordb_ro_query ran on users", read(acme, "users"))
	n := e.rec.count()
	require.Equal(t, "falkordb_ro_query ran on users", read(acme, "users"))
	require.Equal(t, n, e.rec.count(), "the second identical read is served from the cache")
	require.True(t, lastCached())

	// Never across tenants: bob's identical call runs the tool, on his graph.
	require.Equal(t, "falkordb_ro_query ran on users", read(bob, "users"))
	require.Equal(t, n+1, e.rec.count())
	require.Equal(t, "bob_users", e.rec.last().args["graphName"])
	require.False(t, lastCached())

	// Other arguments are other entries.
	read(acme, "orders")
	require.Equal(t, n+2, e.rec.count())

	// A write by the tenant to the graph drops its entries, not bob's and
	// not those of its other graphs.
	_, err := callTool(t, acme, "falkordb_query", map[string]any{"graphName": "users", "query": "CREATE ()"})
	require.NoError(t, err)
	n = e.rec.count()
	read(acme, "users")
	require.Equal(t, n+1, e.rec.count(), "invalidated by the write")
	read(bob, "users")
	read(acme, "orders")
	require.Equal(t, n+1, e.rec.count(), "bob's entry and acme's other graph stay")

	// Entries expire after the TTL.
	advance(6 * time.Second)
	read(acme, "users")
	read(bob, "users")
	require.Equal(t, n+3, e.rec.count())

	// Purge drops a tenant's entries only.
	cache.Purge("acme_")
	read(acme, "users")
	read(bob, "users")
	require.Equal(t, n+4, e.rec.count())

	// Errors are not cached.
	for range 2 {
		res, err := callTool(t, acme, "fail", map[string]any{"text": "boom"})
		require.NoError(t, err)
		require.True(t, res.IsError)
	}
}

func TestResultCacheRace(t *testing.T) {
	// A read that ran while a write to its graph ran is not cached.
	c := NewResultCache(nil)
	k := cacheKey("acme_", "t", []byte(`{}`))
	_, _, seq, ok := c.get(k)
	require.False(t, ok)
	c.invalidate([]string{"acme_g"}) // the write ends while the read runs
	c.put(k, "acme_", []string{"acme_g"}, seq, &mcp.CallToolResult{}, 0)
	_, _, _, ok = c.get(k)
	require.False(t, ok)

	// Keys are injective in their parts.
	require.NotEqual(t, cacheKey("ab", "c", nil), cacheKey("a", "bc", nil))
	require.NotEqual(t, cacheKey("a", "b", []byte("c")), cacheKey("a", "bc", nil))

	// The size bound holds.
	small := NewResultCache(&CacheOptions{MaxEntries: 2})
	for i := range 5 {
		_, _, seq, _ := small.get(cacheKey("p", "t", []byte{byte(i)}))
		small.put(cacheKey("p", "t", []byte{byte(i)}), "p", nil, seq, &mcp.CallToolResult{}, 0)
	}
	require.Equal(t, 2, small.Len())
	big := NewResultCache(&CacheOptions{MaxResultBytes: 10})
	_, _, seq, _ = big.get(k)
	big.put(k, "p", nil, seq, &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", 100)}}}, 0)
	require.Zero(t, big.Len())
}

// TestQuotaWithoutStoreFailsClosed: a plan with quotas and no GraphStore
// refuses the writes the quotas apply to; reads still run.
func TestQuotaWithoutStoreFailsClosed(t *testing.T) {
	p := &Policy{Plans: map[string]*Plan{"q": {Name: "q", MaxGraphs: 5}}, DefaultPlan: "q"}
	var events []*Event
	var mu sync.Mutex
	e := planEnv(t, Config{Plans: p, Auditor: AuditFunc(func(_ context.Context, ev *Event) {
		mu.Lock()
		defer mu.Unlock()
		cp := *ev
		events = append(events, &cp)
	})})
	cs := e.connect(acmeRW)
	res, err := callTool(t, cs, "falkordb_query", map[string]any{"graphName": "users", "query": "CREATE ()"})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "the tenant's quotas could not be checked")
	require.Zero(t, e.rec.count(), "the write did not run")
	mu.Lock()
	require.ErrorIs(t, events[len(events)-1].Err, ErrQuotaCheck)
	require.Equal(t, "quota_check", events[len(events)-1].Class)
	mu.Unlock()
	res, err = callTool(t, cs, "falkordb_ro_query", map[string]any{"graphName": "users", "query": "RETURN 1"})
	require.NoError(t, err)
	require.False(t, res.IsError, text(res))
}
