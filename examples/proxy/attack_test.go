package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/tenantgraph/tenantgraph/authn/authntest"
	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/graphname"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// attackBench is the scene of the attack suite: one proxy in production
// mode with real tokens, a victim tenant holding a graph with a marker, and
// an attacker tenant. check records every answer an attacker gets and
// requires that none shows the victim's data, graph names or physical
// prefix, the FalkorDB address, or a stack trace.
type attackBench struct {
	rdb              redis.UniversalClient // direct access to FalkorDB (server or cluster), for set-up and checks
	iss              *issuer
	tp               *testProxy
	victim, attacker string
	marker           string   // a value only in the victim's graph
	forbidden        []string // strings no answer to the attacker may hold
	counts           map[string]int
}

const victimGraph = "vgraph-q7" // the victim's graph: its name must never reach the attacker

// newAttackBench sets the suite up on one proxy over the test's FalkorDB.
func newAttackBench(t *testing.T) *attackBench {
	db := falkortest.Start(t)
	iss := newIssuer(t)
	tp := startProxy(t, db, merge(iss.env(), map[string]string{"RATE_LIMIT": "off", "CONCURRENCY_LIMIT": "0"}))
	victim, attacker := tenants(db)
	return newAttackBenchOn(t, tp, iss, db.Redis(t), victim, attacker, db.Addr)
}

// newAttackBenchOn sets the suite up on proxy tp (verifying iss's tokens,
// with RATE_LIMIT=off) whose FalkorDB rdb reaches directly, at addrs.
func newAttackBenchOn(t *testing.T, tp *testProxy, iss *issuer, rdb redis.UniversalClient, victim, attacker string, addrs ...string) *attackBench {
	require.True(t, tp.dbACL, "the suite runs with per-tenant database users")
	b := &attackBench{rdb: rdb, iss: iss, tp: tp, victim: victim, attacker: attacker,
		marker: "VICTIM-MARKER-" + authntest.RandomID()[:8], counts: map[string]int{}}
	v := connect(t, tp.url, "streamable", iss.token(victim, "read write"))
	for _, g := range []string{"users", victimGraph} {
		mustCall(t, v, "falkordb_query", map[string]any{"graphName": g, "query": createQuery, "parameters": map[string]any{"name": b.marker}})
	}
	b.forbidden = []string{b.marker, victim + "_", victimGraph, "redis://", "goroutine ", ".go:", "panic", "runtime."}
	for _, addr := range addrs {
		b.forbidden = append(b.forbidden, addr)
		if _, port, err := net.SplitHostPort(addr); err == nil {
			b.forbidden = append(b.forbidden, ":"+port)
		}
	}
	// The attacker's own graph, to show that refused writes changed nothing.
	require.NoError(t, rdb.Do(context.Background(), "GRAPH.QUERY", attacker+"_own", "UNWIND range(1, 3) AS i CREATE (:Mine {i: i})").Err())
	t.Cleanup(func() {
		classes := make([]string, 0, len(b.counts))
		total := 0
		for c, n := range b.counts {
			classes = append(classes, fmt.Sprintf("%s=%d", c, n))
			total += n
		}
		sort.Strings(classes)
		t.Logf("attack cases: %d in all: %s", total, strings.Join(classes, ", "))
	})
	return b
}

// check records one case of class: answer must hold nothing forbidden once
// the strings the attacker supplied itself are removed from it.
func (b *attackBench) check(t *testing.T, class, name, answer string, supplied ...string) {
	t.Helper()
	b.counts[class]++
	for _, s := range supplied {
		if s != "" {
			answer = strings.ReplaceAll(answer, s, "")
		}
	}
	for _, f := range b.forbidden {
		require.NotContains(t, answer, f, "%s: %s: the answer leaks %q", class, name, f)
	}
}

// victimIntact requires the victim's graphs to be unchanged.
func (b *attackBench) victimIntact(t *testing.T) {
	t.Helper()
	for _, g := range []string{"users", victimGraph} {
		res, err := b.rdb.Do(context.Background(), "GRAPH.RO_QUERY", b.victim+"_"+g, "MATCH (n) RETURN count(n), collect(n.name)").Result()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint([]any{int64(1), []any{b.marker}}), fmt.Sprint(res.([]any)[1].([]any)[0]), "victim graph %s", g)
	}
}

// ownCount is the number of :Mine nodes of the attacker's own graph (3).
func (b *attackBench) ownCount(t *testing.T) int64 {
	t.Helper()
	res, err := b.rdb.Do(context.Background(), "GRAPH.RO_QUERY", b.attacker+"_own", "MATCH (n) RETURN count(n)").Result()
	require.NoError(t, err)
	return res.([]any)[1].([]any)[0].([]any)[0].(int64)
}

// outcome is everything an attacker sees of a tool call.
func outcome(t *testing.T, res *mcp.CallToolResult, err error) (string, bool) {
	t.Helper()
	if err != nil {
		return err.Error(), true
	}
	return text(res) + structured(t, res), res.IsError
}

const toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

func rawToolCall(tool string, args any) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": args}})
	return string(b)
}

// TestAttacks runs the attack suite over the real HTTP server.
func TestAttacks(t *testing.T) { runAttacks(t, newAttackBench(t)) }

// runAttacks runs the attack suite against the bench's proxy.
func runAttacks(t *testing.T, b *attackBench) {
	url := b.tp.url
	now := time.Now()
	claims := func(edit func(c map[string]any)) map[string]any {
		c := authntest.Claims(b.iss.jwks.URL, b.iss.aud, b.attacker, now, time.Hour)
		c["scope"] = "read write admin"
		edit(c)
		return c
	}
	good := b.iss.token(b.attacker, "read write admin")
	victimRead := rawToolCall("falkordb_ro_query", map[string]any{"graphName": "users", "query": "MATCH (n) RETURN n.name"})

	t.Run("token", func(t *testing.T) {
		other := authntest.CachedRSA(t, 2048, 1) // a key the issuer never published
		hs := authntest.HS256(b.iss.key.PEM(), map[string]any{"kid": b.iss.key.KeyID, "typ": "at+jwt"}, claims(func(map[string]any) {}))
		cases := map[string]string{
			"alg none, victim's tenant":           authntest.Unsigned(claims(func(c map[string]any) { c["sub"] = b.victim })),
			"HS256 keyed with the RSA public key": hs,
			"wrong aud":                           b.iss.key.Mint(claims(func(c map[string]any) { c["aud"] = "https://elsewhere.test/mcp" })),
			"missing aud":                         b.iss.key.Mint(claims(func(c map[string]any) { delete(c, "aud") })),
			"wrong iss":                           b.iss.key.Mint(claims(func(c map[string]any) { c["iss"] = "https://evil.test" })),
			"expired":                             b.iss.key.Mint(claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })),
			"nbf in the future":                   b.iss.key.Mint(claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })),
			"iat in the future":                   b.iss.key.Mint(claims(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })),
			"missing exp":                         b.iss.key.Mint(claims(func(c map[string]any) { delete(c, "exp") })),
			"missing tenant":                      b.iss.key.Mint(claims(func(c map[string]any) { delete(c, "sub") })),
			"empty tenant":                        b.iss.key.Mint(claims(func(c map[string]any) { c["sub"] = "" })),
			"tenant with separator":               b.iss.key.Mint(claims(func(c map[string]any) { c["sub"] = b.victim + "_users" })),
			"tenant with glob":                    b.iss.key.Mint(claims(func(c map[string]any) { c["sub"] = b.victim[:4] + "*" })),
			"tenant upper case":                   b.iss.key.Mint(claims(func(c map[string]any) { c["sub"] = strings.ToUpper(b.victim) })),
			"tenant not a string":                 b.iss.key.Mint(claims(func(c map[string]any) { c["sub"] = []string{b.victim} })),
			"unknown kid":                         other.Mint(claims(func(map[string]any) {})),
			"known kid, other key":                other.MintWithHeader(map[string]any{"alg": "RS256", "kid": b.iss.key.KeyID, "typ": "at+jwt"}, claims(func(map[string]any) {})),
			"tampered payload":                    authntest.Tamper(good, claims(func(c map[string]any) { c["sub"] = b.victim })),
			"oversized (20 KiB)":                  b.iss.key.Mint(claims(func(c map[string]any) { c["pad"] = strings.Repeat("x", 20<<10) })),
			"5-part JWE":                          authntest.JWE(),
			"crit header":                         b.iss.key.MintWithHeader(map[string]any{"alg": "RS256", "kid": b.iss.key.KeyID, "typ": "at+jwt", "crit": []string{"exp"}}, claims(func(map[string]any) {})),
			"jku header":                          other.MintWithHeader(map[string]any{"alg": "RS256", "kid": other.KeyID, "jku": b.iss.jwks.JWKSURL()}, claims(func(map[string]any) {})),
			"embedded jwk":                        other.MintWithHeader(map[string]any{"alg": "RS256", "jwk": other.JWK()}, claims(func(map[string]any) {})),
			"garbage":                             "a.b.c",
			"two parts":                           strings.Join(strings.Split(good, ".")[:2], "."),
			"signature stripped":                  strings.Join(strings.Split(good, ".")[:2], ".") + ".",
		}
		for name, tok := range cases {
			for _, body := range []string{toolsList, victimRead} {
				code, hdr, resp := postJSON(t, url+"/mcp", tok, body)
				require.Equal(t, http.StatusUnauthorized, code, name)
				require.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`, name)
				require.NotContains(t, resp, tok, name)
				// The refusal may quote the attacker's own (invalid) tenant claim.
				b.check(t, "token", name, resp+hdr.Get("WWW-Authenticate"), jsonText(jsonText(b.victim+"_users")), b.victim+"_users")
			}
		}
		// A token too big for the header limit never reaches the verifier.
		huge := b.iss.key.Mint(claims(func(c map[string]any) { c["pad"] = strings.Repeat("x", 100<<10) }))
		code, _, resp := postJSON(t, url+"/mcp", huge, toolsList)
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
		b.check(t, "token", "oversized (100 KiB)", resp)
		// Other schemes.
		for _, h := range []string{"Basic " + good, "Bearer", "Bearer  " + good + " x", "bearer"} {
			req, err := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(toolsList))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", h)
			r, err := httpClient(t, "").Do(req)
			require.NoError(t, err)
			r.Body.Close()
			require.Equal(t, http.StatusUnauthorized, r.StatusCode, h)
			b.counts["token"]++
		}
		b.victimIntact(t)
	})

	t.Run("token in query string or form", func(t *testing.T) {
		for _, q := range []string{"access_token", "token", "apiKey", "api_key", "jwt", "bearer", "authorization"} {
			code, _, resp := postJSON(t, url+"/mcp?"+q+"="+good, "", victimRead)
			require.Equal(t, http.StatusUnauthorized, code, q)
			b.check(t, "query-string token", "POST /mcp ?"+q, resp)
			code, _, resp = get(t, url+"/sse?"+q+"="+good, "")
			require.Equal(t, http.StatusUnauthorized, code, q)
			b.check(t, "query-string token", "GET /sse ?"+q, resp)
		}
		// RFC 6750 form-encoded body parameter: not read either.
		req, err := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader("access_token="+good))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r, err := httpClient(t, "").Do(req)
		require.NoError(t, err)
		r.Body.Close()
		require.Equal(t, http.StatusUnauthorized, r.StatusCode)
		b.counts["query-string token"]++
	})

	atk := connect(t, url, "streamable", good)

	t.Run("list and info leakage", func(t *testing.T) {
		graphs := listGraphs(t, atk)
		require.NotContains(t, graphs, "users", "the victim's graphs are not listed")
		require.NotContains(t, graphs, victimGraph)
		for _, g := range graphs {
			require.NoError(t, tenancy.StrictGraphNames(g), g)
		}
		res := mustCall(t, atk, "falkordb_list_graphs", map[string]any{})
		b.check(t, "list and info", "list", text(res)+structured(t, res))

		names := toolNames(t, atk)
		require.ElementsMatch(t, []string{"falkordb_query", "falkordb_ro_query", "falkordb_list_graphs", "falkordb_graph_schema", "falkordb_explain", "falkordb_delete_graph", "tenant_usage"}, names,
			"no tool exposes GRAPH.INFO, GRAPH.CONFIG, GRAPH.UDF or GRAPH.LIST unfiltered")
		// The usage tool reports the caller's own tenant only.
		res = mustCall(t, atk, "tenant_usage", map[string]any{"days": 90})
		b.check(t, "list and info", "usage", text(res)+structured(t, res))
		res, err := call(t, atk, "tenant_usage", map[string]any{"tenant": b.victim})
		require.NoError(t, err)
		require.True(t, res.IsError, "the usage tool takes no tenant")
		b.check(t, "list and info", "usage of another tenant", text(res), b.victim)
		for _, tool := range []string{"graph_info", "falkordb_info", "GRAPH.INFO", "falkordb_config", "query_graph", "list_graphs"} {
			res, err := call(t, atk, tool, map[string]any{"graphName": "users"})
			out, isErr := outcome(t, res, err)
			require.True(t, isErr, tool)
			b.check(t, "list and info", "tool "+tool, out)
		}
		// Procedures that read server-wide state show no tenant data.
		for _, q := range []string{"CALL dbms.procedures() YIELD name RETURN collect(name)", "CALL db.labels()", "CALL db.indexes()",
			"CALL db.meta.stats()"} {
			res, err := call(t, atk, "falkordb_ro_query", map[string]any{"graphName": "own", "query": q})
			out, _ := outcome(t, res, err)
			b.check(t, "list and info", q, out)
		}
		// Side doors.
		for _, m := range []string{`"resources/list"`, `"prompts/list"`, `"resources/templates/list"`} {
			code, _, resp := postJSON(t, url+"/mcp", good, `{"jsonrpc":"2.0","id":5,"method":`+m+`,"params":{}}`)
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, resp, `"error"`, m)
			b.check(t, "list and info", m, resp)
		}
	})

	t.Run("graph names", func(t *testing.T) {
		names := []string{
			"_users", "users_", "_", "__users", b.victim + "_users", b.victim + "_" + victimGraph, "../" + b.victim + "_users",
			" users", "users ", "us ers", "users\t", "users\n", "users\x00", "users\x00" + b.victim, "usеrs" /* Cyrillic е */, "ｕsers",
			"users\u200b", strings.Repeat("a", 200), strings.Repeat("a", 129), "*", "users*", b.victim + "_*", "u?ers", "[u]sers",
			"{users}", "{" + b.victim + "}_users", "users:1", ":", b.victim + ":users", "", ".", ".users", "%2e%2e", `\users`, "users/x",
			"USERS", "Users",
		}
		for _, tool := range []string{"falkordb_ro_query", "falkordb_query"} {
			for _, g := range names {
				res, err := call(t, atk, tool, map[string]any{"graphName": g, "query": "MATCH (n) RETURN n.name"})
				out, isErr := outcome(t, res, err)
				if graphname.ValidateGraph(g) != nil || tenancy.StrictGraphNames(g) != nil {
					require.True(t, isErr, "%s %q accepted", tool, g)
				}
				// Accepted names are the attacker's own graphs: they hold no marker.
				b.check(t, "graph name", fmt.Sprintf("%s %q", tool, g), out, g, fmt.Sprintf("%q", g), jsonText(g))
			}
		}
		// Arguments of the wrong type or given twice.
		for name, raw := range map[string]string{
			"array":      `{"graphName":["users"],"query":"MATCH (n) RETURN n"}`,
			"object":     `{"graphName":{"users":1},"query":"MATCH (n) RETURN n"}`,
			"number":     `{"graphName":1,"query":"MATCH (n) RETURN n"}`,
			"twice":      `{"graphName":"own","graphName":"` + b.victim + `_users","query":"MATCH (n) RETURN n"}`,
			"other case": `{"graphName":"own","GraphName":"users","query":"MATCH (n) RETURN n"}`,
			"null":       `{"graphName":null,"query":"MATCH (n) RETURN n"}`,
		} {
			body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"falkordb_ro_query","arguments":` + raw + `}}`
			code, _, resp := postJSON(t, url+"/mcp", good, body)
			require.Equal(t, http.StatusOK, code, name)
			require.True(t, strings.Contains(resp, `"isError":true`) || strings.Contains(resp, `"error":`), "%s: %s", name, resp)
			b.check(t, "graph name", name, resp, b.victim+"_users")
		}
		b.victimIntact(t)
	})

	t.Run("scope escalation", func(t *testing.T) {
		ro := connect(t, url, "streamable", b.iss.token(b.attacker, "read"))
		rw := connect(t, url, "streamable", b.iss.token(b.attacker, "read write"))
		require.NotContains(t, toolNames(t, ro), "falkordb_delete_graph")
		require.NotContains(t, toolNames(t, rw), "falkordb_delete_graph")
		writes := []string{
			"CREATE (:Mine {i: 99})", "MERGE (:Mine {i: 100})", "MATCH (n:Mine) SET n.i = 0", "MATCH (n:Mine) DELETE n",
			"MATCH (n:Mine) DETACH DELETE n", "MATCH (n:Mine) REMOVE n.i", "CREATE INDEX FOR (n:Mine) ON (n.i)",
			"CALL db.idx.fulltext.createNodeIndex('Mine', 'i')", "MATCH (n:Mine) WITH n CREATE (:Mine {i: n.i + 10})",
		}
		for _, q := range writes {
			for _, c := range []struct {
				cs   *mcp.ClientSession
				tool string
			}{{ro, "falkordb_query"}, {ro, "falkordb_ro_query"}, {rw, "falkordb_ro_query"}} {
				res, err := call(t, c.cs, c.tool, map[string]any{"graphName": "own", "query": q})
				out, isErr := outcome(t, res, err)
				require.True(t, isErr, "%s: %s", c.tool, q)
				require.Contains(t, out, "read-only", "%s: %s", c.tool, q)
				b.check(t, "scope escalation", c.tool+" "+q, out)
			}
		}
		for _, c := range []struct {
			name string
			cs   *mcp.ClientSession
		}{{"read", ro}, {"read write", rw}} {
			res, err := call(t, c.cs, "falkordb_delete_graph", map[string]any{"graphName": "own", "confirm": true})
			out, isErr := outcome(t, res, err)
			require.True(t, isErr, c.name)
			b.check(t, "scope escalation", "delete with "+c.name, out)
		}
		// A token with no known scope sees and calls nothing.
		none := connect(t, url, "streamable", b.iss.token(b.attacker, "profile"))
		require.Empty(t, toolNames(t, none))
		res, err := call(t, none, "falkordb_ro_query", map[string]any{"graphName": "own", "query": "MATCH (n) RETURN n"})
		out, isErr := outcome(t, res, err)
		require.True(t, isErr)
		b.check(t, "scope escalation", "no scope", out)
		require.EqualValues(t, 3, b.ownCount(t), "no refused write changed anything")
		b.victimIntact(t)
	})

	t.Run("sse hijack", func(t *testing.T) {
		endpoint, events := openSSE(t, url, b.iss.token(b.victim, "read write"))
		const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
		for name, body := range map[string]string{"initialize": initialize, "read victim graph": victimRead,
			"delete victim graph": rawToolCall("falkordb_query", map[string]any{"graphName": "users", "query": "MATCH (n) DETACH DELETE n"})} {
			code, _, resp := postJSON(t, url+endpoint, good, body)
			require.Equal(t, http.StatusForbidden, code, name)
			b.check(t, "sse hijack", name, resp)
		}
		select {
		case ev := <-events:
			t.Fatalf("the victim's stream got a message from the attacker's posts: %v", ev)
		case <-time.After(100 * time.Millisecond):
		}
		code, _, resp := postJSON(t, url+"/sse?sessionid=nosuchsession", good, initialize)
		require.Equal(t, http.StatusNotFound, code)
		b.check(t, "sse hijack", "guessed session", resp)
		b.victimIntact(t)
	})

	t.Run("oversized", func(t *testing.T) {
		big := rawToolCall("falkordb_query", map[string]any{"graphName": "own", "query": "RETURN '" + strings.Repeat("x", 2<<20) + "'"})
		code, _, resp := postJSON(t, url+"/mcp", good, big)
		require.Equal(t, http.StatusRequestEntityTooLarge, code)
		b.check(t, "oversized", "2 MiB body", resp)

		deep := map[string]any{"v": 1}
		for range 40 {
			deep = map[string]any{"v": deep}
		}
		many := map[string]any{}
		for i := range 5000 {
			many[fmt.Sprintf("p%d", i)] = i
		}
		for name, args := range map[string]map[string]any{
			"parameters nested 41 deep": {"graphName": "own", "query": "RETURN $v", "parameters": deep},
			"5000 parameters":           {"graphName": "own", "query": "RETURN $p1", "parameters": many},
			"query of 500 KiB":          {"graphName": "own", "query": "MATCH (n) WHERE n.i IN [" + strings.Repeat("1,", 250<<10) + "1] RETURN count(n)"},
			"graph name of 100 KiB":     {"graphName": strings.Repeat("g", 100<<10), "query": "RETURN 1"},
		} {
			res, err := call(t, atk, "falkordb_ro_query", args)
			out, _ := outcome(t, res, err)
			b.check(t, "oversized", name, out, strings.Repeat("g", 40))
		}
		// JSON nested beyond any decoder's depth.
		body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"falkordb_ro_query","arguments":{"graphName":"own","query":"RETURN 1","parameters":{"a":` +
			strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}}}`
		code, _, resp = postJSON(t, url+"/mcp", good, body)
		require.NotEqual(t, http.StatusInternalServerError, code)
		b.check(t, "oversized", "JSON nested 20000 deep", resp)
		mustCall(t, atk, "falkordb_ro_query", map[string]any{"graphName": "own", "query": "RETURN 1"})
		require.EqualValues(t, 3, b.ownCount(t))
	})

	t.Run("parameter injection", func(t *testing.T) {
		for name, params := range map[string]map[string]any{
			"name closing the map":       {"x}) MATCH (n) DETACH DELETE n //": 1},
			"name with space":            {"a MATCH (n) DETACH DELETE n": 1},
			"name with backtick":         {"a`": 1},
			"name starting with digit":   {"1a": 1},
			"name with unicode":          {"nаme": 1},
			"name with $":                {"$a": 1},
			"name CYPHER prefix":         {"a=1 CYPHER b": 1},
			"map key with backtick":      {"m": map[string]any{"k`: 1}) MATCH (n) DETACH DELETE n //": 1}},
			"map key with NUL":           {"m": map[string]any{"k\x00": 1}},
			"string with NUL":            {"s": "a\x00b"},
			"nested map key injection":   {"m": map[string]any{"a": map[string]any{"`}) MATCH (n:Mine) SET n.i = 0 //": 1}}},
			"list of maps key injection": {"l": []any{map[string]any{"x`}) CREATE (:Mine {i: 7}) //": 1}}},
		} {
			res, err := call(t, atk, "falkordb_query", map[string]any{"graphName": "own", "query": "RETURN 1", "parameters": params})
			out, isErr := outcome(t, res, err)
			require.True(t, isErr, name)
			require.Contains(t, out, "invalid query parameter", name)
			b.check(t, "parameter injection", name, out)
		}
		// Cypher in values is data: it arrives as the same string.
		for _, v := range []string{"' }) MATCH (n) DETACH DELETE n //", `\' MATCH (n) RETURN n //`, "\"; DROP", "$x", "`x`", "a\u200bb", "CYPHER x=1 RETURN 1"} {
			res := mustCall(t, atk, "falkordb_query", map[string]any{"graphName": "own", "query": "RETURN $v AS v", "parameters": map[string]any{"v": v}})
			var out struct{ Rows [][]any }
			require.NoError(t, json.Unmarshal([]byte(structured(t, res)), &out))
			require.Equal(t, [][]any{{v}}, out.Rows)
			b.check(t, "parameter injection", "value "+v, text(res), v)
		}
		require.EqualValues(t, 3, b.ownCount(t))
		b.victimIntact(t)
	})

	t.Run("load csv", func(t *testing.T) {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
		t.Cleanup(srv.Close)
		for _, q := range []string{
			"LOAD CSV FROM 'http://127.0.0.1:1/x' AS r RETURN r",
			"LOAD CSV FROM '" + srv.URL + "/x' AS r RETURN r",
			"load csv with headers from '" + srv.URL + "/x' AS r RETURN r",
			"LOAD/* */CSV FROM '" + srv.URL + "/x' AS r RETURN r",
			"LOAD\n// c\nCSV FROM '" + srv.URL + "/x' AS r RETURN r",
			"LOAD CSV FROM 'file:///etc/passwd' AS r RETURN r",
			"WITH 1 AS x LOAD CSV FROM $u AS r RETURN r",
		} {
			for _, tool := range []string{"falkordb_query", "falkordb_ro_query", "falkordb_explain"} {
				res, err := call(t, atk, tool, map[string]any{"graphName": "own", "query": q, "parameters": map[string]any{"u": srv.URL}})
				out, isErr := outcome(t, res, err)
				require.True(t, isErr, "%s: %s", tool, q)
				require.Contains(t, out, "LOAD CSV is not allowed", "%s: %s", tool, q)
				b.check(t, "load csv", tool+" "+q, out, q)
			}
		}
		require.Zero(t, hits.Load(), "FalkorDB fetched nothing")
	})

	t.Run("error hygiene", func(t *testing.T) {
		for name, args := range map[string]map[string]any{
			"syntax error":       {"graphName": "own", "query": "MATCH (n RETURN n"},
			"unknown function":   {"graphName": "own", "query": "RETURN nosuch(1)"},
			"type error":         {"graphName": "own", "query": "RETURN 1 + 'a' + [1]"},
			"missing parameter":  {"graphName": "own", "query": "RETURN $nope"},
			"missing graph":      {"graphName": "nosuchgraph", "query": "MATCH (n) RETURN n"},
			"division by zero":   {"graphName": "own", "query": "RETURN 1 / 0"},
			"unknown procedure":  {"graphName": "own", "query": "CALL db.nosuch()"},
			"bad parameter type": {"graphName": "own", "query": "RETURN $f", "parameters": map[string]any{"f": map[string]any{"a`": 1}}},
			"huge integer":       {"graphName": "own", "query": "RETURN 9223372036854775808"},
		} {
			res, err := call(t, atk, "falkordb_ro_query", args)
			out, isErr := outcome(t, res, err)
			// FalkorDB answers some of these with a value (null): only the
			// text matters here.
			if !slices.Contains([]string{"type error", "division by zero", "huge integer"}, name) {
				require.True(t, isErr, name)
			}
			b.check(t, "error hygiene", name, out)
		}
		for name, body := range map[string]string{
			"invalid JSON":      `{"jsonrpc":"2.0","id":1,"method":`,
			"unknown method":    `{"jsonrpc":"2.0","id":1,"method":"nosuch/method"}`,
			"arguments a list":  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"falkordb_ro_query","arguments":[1]}}`,
			"params not object": `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}`,
		} {
			code, _, resp := postJSON(t, url+"/mcp", good, body)
			require.NotEqual(t, http.StatusInternalServerError, code, name)
			b.check(t, "error hygiene", name, resp)
		}
	})

	require.True(t, slices.Contains(listGraphs(t, connect(t, url, "streamable", b.iss.token(b.victim, "read"))), victimGraph))
	// After the attacks, the attacker's list still holds only its own
	// graphs (some with names made to look like the victim's keys).
	for _, g := range listGraphs(t, atk) {
		n, err := b.rdb.Exists(context.Background(), b.attacker+"_"+g).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "listed graph %q is the attacker's", g)
	}
	b.victimIntact(t)
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	j, _ := json.Marshal(s)
	return string(j[1 : len(j)-1])
}
