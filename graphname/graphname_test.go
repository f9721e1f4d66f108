package graphname

import (
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	ruleTenant     = "tenant ids are 1-63 lower-case ASCII letters, digits or '-', not starting or ending with '-'"
	ruleTenantFold = "tenant ids are 1-63 ASCII letters, digits or '-' (upper case is folded to lower case), not starting or ending with '-'"
	ruleSubject    = "subjects are 1-1024 bytes of valid UTF-8"
	ruleGraph      = "graph names are 1-128 ASCII letters, digits, '_', '-' or '.', not starting with '.'"
)

func mustResolver(t testing.TB, opts Options) *Resolver {
	t.Helper()
	r, err := New(opts)
	require.NoError(t, err)
	return r
}

func TestResolve(t *testing.T) {
	opaque := mustResolver(t, Options{Scheme: OpaqueSubject})
	dot := mustResolver(t, Options{Separator: '.'})
	fold := mustResolver(t, Options{TenantCase: CaseFold})
	long := "https://login.example.com/|user-0123456789abcdef-0123456789abcdef" // 65 bytes

	tests := []struct {
		name          string
		r             *Resolver
		tenant, graph string
		want          string
	}{
		{"seed format", Default(), "tenant-alpha", "social_network", "tenant-alpha_social_network"},
		{"separator in graph", Default(), "a", "b_x", "a_b_x"},
		{"graph starts with separator", Default(), "a", "_x", "a__x"},
		{"graph ends with separator", Default(), "a", "x_", "a_x_"},
		{"graph case kept", Default(), "acme", "Users.v2-final", "acme_Users.v2-final"},
		{"digits only", Default(), "42", "7", "42_7"},
		{"inner dashes", Default(), "a--b", "-", "a--b_-"},
		{"longest tenant", Default(), strings.Repeat("t", 63), "g", strings.Repeat("t", 63) + "_g"},
		{"longest graph", Default(), "t", strings.Repeat("g", 128), "t_" + strings.Repeat("g", 128)},
		{"dot separator", dot, "acme", "users.v2", "acme.users.v2"},
		{"fold", fold, "AcMe", "Users", "acme_Users"},
		{"fold lower", fold, "acme", "Users", "acme_Users"},
		{"opaque auth0", opaque, "auth0|abc", "users", "mf2xi2bqprqweyy_users"},
		{"opaque one byte", opaque, "a", "g", "me_g"},
		{"opaque case-sensitive", opaque, "A", "g", "ie_g"},
		{"opaque email", opaque, "alice@example.com", "g", "mfwgsy3fibsxqylnobwgkltdn5wq_g"},
		{"opaque guid", opaque, "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "g",
			"gnddenjqgrctaljuiy4dsljrgfcdgljzieyegljqgmydkrjygjbtgmzqge_g"},
		{"opaque hashed", opaque, long, "g", "h-bezd7q6gucbgftsu6zawtz3taazz3nex5am72hdwz3jsl3o6ihjq_g"},
		{"opaque unicode", opaque, "tenаnt", "g", "orsw5ufqnz2a_g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Resolve(tt.tenant, tt.graph)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.NoError(t, tt.r.ValidateTenant(tt.tenant))
			require.NoError(t, tt.r.ValidateGraph(tt.graph))

			graph, ok := tt.r.Strip(tt.tenant, got)
			require.True(t, ok)
			require.Equal(t, tt.graph, graph)

			prefix, err := tt.r.Prefix(tt.tenant)
			require.NoError(t, err)
			require.Equal(t, prefix+tt.graph, got)
		})
	}
}

func TestPackageFunctionsUseDefault(t *testing.T) {
	key, err := Resolve("tenant-alpha", "social_network")
	require.NoError(t, err)
	require.Equal(t, "tenant-alpha_social_network", key)

	graph, ok := Strip("tenant-alpha", key)
	require.True(t, ok)
	require.Equal(t, "social_network", graph)

	require.Equal(t, []string{"social_network"}, Filter("tenant-alpha", []string{"other_x", key}))

	prefix, err := Prefix("tenant-alpha")
	require.NoError(t, err)
	require.Equal(t, "tenant-alpha_", prefix)

	require.ErrorIs(t, ValidateTenant("a_b"), ErrInvalidTenant)
	require.ErrorIs(t, ValidateGraph("a b"), ErrInvalidGraph)
	require.NoError(t, ValidateTenant("acme"))
	require.NoError(t, ValidateGraph("users"))
	require.Same(t, Default(), Default())
	require.Equal(t, Options{Scheme: Readable, Separator: '_', MaxTenantLen: 63, MaxGraphLen: 128, TenantCase: CaseReject},
		Default().Options())
}

// TestKnownCollision is the prefix collision of the earlier system.
func TestKnownCollision(t *testing.T) {
	key, err := Resolve("a", "b_x")
	require.NoError(t, err)
	require.Equal(t, "a_b_x", key)

	_, err = Resolve("a_b", "x")
	require.ErrorIs(t, err, ErrInvalidTenant)

	_, ok := Strip("a_b", key)
	require.False(t, ok)
	require.Empty(t, Filter("a_b", []string{key}))

	for _, v := range variants {
		k1, err1 := v.r.Resolve("a", "b"+v.sep()+"x")
		k2, err2 := v.r.Resolve("a"+v.sep()+"b", "x")
		if err1 == nil && err2 == nil {
			require.NotEqual(t, k1, k2, v.name)
		}
	}
}

func TestRejectedTenants(t *testing.T) {
	tenant10k := strings.Repeat("a", 10240)
	quoted40 := `"` + strings.Repeat("a", 40) + `"`
	tests := []struct {
		name   string
		tenant string
		msg    string // after "graphname: invalid tenant "
	}{
		{"empty", "", `"": empty; ` + ruleTenant},
		{"64 bytes", strings.Repeat("a", 64), quoted40 + `... (64 bytes): 64 bytes long, more than 63; ` + ruleTenant},
		{"10 kB", tenant10k, quoted40 + `... (10240 bytes): 10240 bytes long, more than 63; ` + ruleTenant},
		{"upper case", "Acme", `"Acme": upper-case 'A' at byte 0 (use lower case); ` + ruleTenant},
		{"upper case inside", "acMe", `"acMe": upper-case 'M' at byte 2 (use lower case); ` + ruleTenant},
		{"separator", "a_b", `"a_b": '_' at byte 1 is not allowed; ` + ruleTenant},
		{"leading separator", "_a", `"_a": '_' at byte 0 is not allowed; ` + ruleTenant},
		{"trailing separator", "a_", `"a_": '_' at byte 1 is not allowed; ` + ruleTenant},
		{"dot", "a.b", `"a.b": '.' at byte 1 is not allowed; ` + ruleTenant},
		{"space", "a b", `"a b": space at byte 1 is not allowed; ` + ruleTenant},
		{"tab", "a\tb", `"a\tb": '\t' at byte 1 is not allowed; ` + ruleTenant},
		{"newline", "a\n", `"a\n": '\n' at byte 1 is not allowed; ` + ruleTenant},
		{"NUL", "a\x00", `"a\x00": '\x00' at byte 1 is not allowed; ` + ruleTenant},
		{"DEL", "a\x7f", `"a\x7f": '\x7f' at byte 1 is not allowed; ` + ruleTenant},
		{"star", "a*", `"a*": '*' at byte 1 is not allowed; ` + ruleTenant},
		{"question mark", "a?", `"a?": '?' at byte 1 is not allowed; ` + ruleTenant},
		{"bracket open", "a[", `"a[": '[' at byte 1 is not allowed; ` + ruleTenant},
		{"bracket close", "a]", `"a]": ']' at byte 1 is not allowed; ` + ruleTenant},
		{"brace open", "{a", `"{a": '{' at byte 0 is not allowed; ` + ruleTenant},
		{"brace close", "a}", `"a}": '}' at byte 1 is not allowed; ` + ruleTenant},
		{"colon", "a:b", `"a:b": ':' at byte 1 is not allowed; ` + ruleTenant},
		{"slash", "a/b", `"a/b": '/' at byte 1 is not allowed; ` + ruleTenant},
		{"pipe", "auth0|x", `"auth0|x": '|' at byte 5 is not allowed; ` + ruleTenant},
		{"at", "a@b", `"a@b": '@' at byte 1 is not allowed; ` + ruleTenant},
		{"cyrillic a", "tenаnt", `"ten\u0430nt": '\u0430' (U+0430, not ASCII) at byte 3 is not allowed; ` + ruleTenant},
		{"fullwidth", "ａcme", `"\uff41cme": '\uff41' (U+FF41, not ASCII) at byte 0 is not allowed; ` + ruleTenant},
		{"zero width space", "a\u200bb", `"a\u200bb": '\u200b' (U+200B, not ASCII) at byte 1 is not allowed; ` + ruleTenant},
		{"right-to-left override", "a\u202eb", `"a\u202eb": '\u202e' (U+202E, not ASCII) at byte 1 is not allowed; ` + ruleTenant},
		{"invalid UTF-8", "a\xffb", `"a\xffb": byte 0xff (not UTF-8) at byte 1 is not allowed; ` + ruleTenant},
		{"leading dash", "-acme", `"-acme": starts with '-'; ` + ruleTenant},
		{"trailing dash", "acme-", `"acme-": ends with '-'; ` + ruleTenant},
		{"dash only", "-", `"-": starts with '-'; ` + ruleTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTenant(tt.tenant)
			require.ErrorIs(t, err, ErrInvalidTenant)
			require.NotErrorIs(t, err, ErrInvalidGraph)
			require.EqualError(t, err, "graphname: invalid tenant "+tt.msg)
			require.Less(t, len(err.Error()), 400, "messages stay short")

			_, rerr := Resolve(tt.tenant, "users")
			require.Equal(t, err.Error(), rerr.Error(), "Resolve reports the same error")
			_, perr := Prefix(tt.tenant)
			require.Equal(t, err.Error(), perr.Error(), "Prefix reports the same error")

			// No key is ever the tenant's: not even one spelled like it.
			_, ok := Strip(tt.tenant, tt.tenant+"_users")
			require.False(t, ok)
			require.Empty(t, Filter(tt.tenant, []string{tt.tenant + "_users", "acme_users"}))
		})
	}
}

func TestRejectedTenantsCaseFold(t *testing.T) {
	fold := mustResolver(t, Options{TenantCase: CaseFold})
	tests := []struct {
		name, tenant, msg string
	}{
		{"empty", "", `"": empty; ` + ruleTenantFold},
		{"separator", "A_B", `"A_B": '_' at byte 1 is not allowed; ` + ruleTenantFold},
		{"non-ASCII upper case", "ÄCME", `"\u00c4CME": '\u00c4' (U+00C4, not ASCII) at byte 0 is not allowed; ` + ruleTenantFold},
		{"cyrillic A", "АCME", `"\u0410CME": '\u0410' (U+0410, not ASCII) at byte 0 is not allowed; ` + ruleTenantFold},
		{"leading dash", "-ACME", `"-ACME": starts with '-'; ` + ruleTenantFold},
		{"trailing dash", "ACME-", `"ACME-": ends with '-'; ` + ruleTenantFold},
		{"64 bytes", strings.Repeat("A", 64), `"` + strings.Repeat("A", 40) + `"... (64 bytes): 64 bytes long, more than 63; ` + ruleTenantFold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fold.ValidateTenant(tt.tenant)
			require.ErrorIs(t, err, ErrInvalidTenant)
			require.EqualError(t, err, "graphname: invalid tenant "+tt.msg)
		})
	}
}

func TestRejectedSubjects(t *testing.T) {
	opaque := mustResolver(t, Options{Scheme: OpaqueSubject})
	short := mustResolver(t, Options{Scheme: OpaqueSubject, MaxTenantLen: 16})
	tests := []struct {
		name    string
		r       *Resolver
		subject string
		msg     string // after "graphname: invalid tenant: "
	}{
		{"empty", opaque, "", "subject is empty; " + ruleSubject},
		{"1025 bytes", opaque, "alice@" + strings.Repeat("x", 1019), "subject is 1025 bytes long, more than 1024; " + ruleSubject},
		{"10 kB", opaque, "alice@" + strings.Repeat("x", 10234), "subject is 10240 bytes long, more than 1024; " + ruleSubject},
		{"invalid UTF-8", opaque, "alice@\xff", "subject is not valid UTF-8 (byte 6); " + ruleSubject},
		{"truncated rune", opaque, "alice@\xd0", "subject is not valid UTF-8 (byte 6); " + ruleSubject},
		{"surrogate", opaque, "alice@\xed\xa0\x80", "subject is not valid UTF-8 (byte 6); " + ruleSubject},
		{"shorter limit", short, "alice@example.com", "subject is 17 bytes long, more than 16; subjects are 1-16 bytes of valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.ValidateTenant(tt.subject)
			require.ErrorIs(t, err, ErrInvalidTenant)
			require.EqualError(t, err, "graphname: invalid tenant: "+tt.msg)
			require.NotContains(t, err.Error(), "alice", "subjects are never repeated")

			_, rerr := tt.r.Resolve(tt.subject, "users")
			require.Equal(t, err.Error(), rerr.Error())
			_, ok := tt.r.Strip(tt.subject, "me_users")
			require.False(t, ok)
			require.Empty(t, tt.r.Filter(tt.subject, []string{"me_users"}))
		})
	}
}

func TestRejectedGraphs(t *testing.T) {
	quoted40 := `"` + strings.Repeat("g", 40) + `"`
	tests := []struct {
		name  string
		graph string
		msg   string // after "graphname: invalid graph name "
	}{
		{"empty", "", `"": empty; ` + ruleGraph},
		{"129 bytes", strings.Repeat("g", 129), quoted40 + `... (129 bytes): 129 bytes long, more than 128; ` + ruleGraph},
		{"10 kB", strings.Repeat("g", 10240), quoted40 + `... (10240 bytes): 10240 bytes long, more than 128; ` + ruleGraph},
		{"leading dot", ".hidden", `".hidden": starts with '.'; ` + ruleGraph},
		{"dot only", ".", `".": starts with '.'; ` + ruleGraph},
		{"space", "my graph", `"my graph": space at byte 2 is not allowed; ` + ruleGraph},
		{"leading space", " g", `" g": space at byte 0 is not allowed; ` + ruleGraph},
		{"trailing space", "g ", `"g ": space at byte 1 is not allowed; ` + ruleGraph},
		{"tab", "a\tb", `"a\tb": '\t' at byte 1 is not allowed; ` + ruleGraph},
		{"newline", "a\nb", `"a\nb": '\n' at byte 1 is not allowed; ` + ruleGraph},
		{"carriage return", "a\r", `"a\r": '\r' at byte 1 is not allowed; ` + ruleGraph},
		{"NUL", "a\x00b", `"a\x00b": '\x00' at byte 1 is not allowed; ` + ruleGraph},
		{"NUL only", "\x00", `"\x00": '\x00' at byte 0 is not allowed; ` + ruleGraph},
		{"escape", "a\x1b[31m", `"a\x1b[31m": '\x1b' at byte 1 is not allowed; ` + ruleGraph},
		{"DEL", "a\x7f", `"a\x7f": '\x7f' at byte 1 is not allowed; ` + ruleGraph},
		{"star", "a*", `"a*": '*' at byte 1 is not allowed; ` + ruleGraph},
		{"star only", "*", `"*": '*' at byte 0 is not allowed; ` + ruleGraph},
		{"question mark", "a?", `"a?": '?' at byte 1 is not allowed; ` + ruleGraph},
		{"brackets", "a[1]", `"a[1]": '[' at byte 1 is not allowed; ` + ruleGraph},
		{"closing bracket", "a]", `"a]": ']' at byte 1 is not allowed; ` + ruleGraph},
		{"hash tag", "{tag}g", `"{tag}g": '{' at byte 0 is not allowed; ` + ruleGraph},
		{"closing brace", "g}", `"g}": '}' at byte 1 is not allowed; ` + ruleGraph},
		{"colon", "a:b", `"a:b": ':' at byte 1 is not allowed; ` + ruleGraph},
		{"slash", "a/b", `"a/b": '/' at byte 1 is not allowed; ` + ruleGraph},
		{"backslash", `a\b`, `"a\\b": '\\' at byte 1 is not allowed; ` + ruleGraph},
		{"comma", "a,b", `"a,b": ',' at byte 1 is not allowed; ` + ruleGraph},
		{"quote", `a"b`, `"a\"b": '"' at byte 1 is not allowed; ` + ruleGraph},
		{"apostrophe", "a'b", `"a'b": '\'' at byte 1 is not allowed; ` + ruleGraph},
		{"dollar", "a$b", `"a$b": '$' at byte 1 is not allowed; ` + ruleGraph},
		{"pipe", "a|b", `"a|b": '|' at byte 1 is not allowed; ` + ruleGraph},
		{"umlaut", "ümlaut", `"\u00fcmlaut": '\u00fc' (U+00FC, not ASCII) at byte 0 is not allowed; ` + ruleGraph},
		{"cyrillic a", "grаph", `"gr\u0430ph": '\u0430' (U+0430, not ASCII) at byte 2 is not allowed; ` + ruleGraph},
		{"fullwidth", "ｇraph", `"\uff47raph": '\uff47' (U+FF47, not ASCII) at byte 0 is not allowed; ` + ruleGraph},
		{"fullwidth low line", "a＿b", `"a\uff3fb": '\uff3f' (U+FF3F, not ASCII) at byte 1 is not allowed; ` + ruleGraph},
		{"no-break space", "a\u00a0b", `"a\u00a0b": '\u00a0' (U+00A0, not ASCII) at byte 1 is not allowed; ` + ruleGraph},
		{"emoji", "g😀", `"g\U0001f600": '\U0001f600' (U+1F600, not ASCII) at byte 1 is not allowed; ` + ruleGraph},
		{"invalid UTF-8", "g\xc3", `"g\xc3": byte 0xc3 (not UTF-8) at byte 1 is not allowed; ` + ruleGraph},
		{"continuation bytes", strings.Repeat("\x80", 45), `"` + strings.Repeat(`\x80`, 40) + `"... (45 bytes): byte 0x80 (not UTF-8) at byte 0 is not allowed; ` + ruleGraph},
		{"long with bad byte", strings.Repeat("g", 100) + "\x00", quoted40 + `... (101 bytes): '\x00' at byte 100 is not allowed; ` + ruleGraph},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateGraph(tt.graph)
			require.ErrorIs(t, err, ErrInvalidGraph)
			require.NotErrorIs(t, err, ErrInvalidTenant)
			require.EqualError(t, err, "graphname: invalid graph name "+tt.msg)
			require.Less(t, len(err.Error()), 400, "messages stay short")

			for _, v := range variants {
				if v.maxGraph() < MaxGraphLen {
					continue // the message names the limit
				}
				tenant := "acme"
				_, rerr := v.r.Resolve(tenant, tt.graph)
				require.Equal(t, err.Error(), rerr.Error(), v.name)
				prefix, perr := v.r.Prefix(tenant)
				require.NoError(t, perr)
				_, ok := v.r.Strip(tenant, prefix+tt.graph)
				require.False(t, ok, v.name)
				require.Empty(t, v.r.Filter(tenant, []string{prefix + tt.graph}), v.name)
			}
		})
	}
}

// TestTenantCheckedFirst: when both are invalid, the tenant is reported.
func TestTenantCheckedFirst(t *testing.T) {
	_, err := Resolve("A", "")
	require.ErrorIs(t, err, ErrInvalidTenant)
	require.NotErrorIs(t, err, ErrInvalidGraph)
}

func TestQuoteCutsAtRuneBoundary(t *testing.T) {
	s := strings.Repeat("a", 39) + "ж" + strings.Repeat("b", 30) // 'ж' spans bytes 39 and 40
	err := ValidateGraph(s)
	require.ErrorIs(t, err, ErrInvalidGraph)
	require.Contains(t, err.Error(), `"`+strings.Repeat("a", 39)+`"... (71 bytes)`)
}

func TestLimits(t *testing.T) {
	r := mustResolver(t, Options{MaxTenantLen: 4, MaxGraphLen: 5})
	_, err := r.Resolve("abcd", "abcde")
	require.NoError(t, err)

	err = r.ValidateTenant("abcde")
	require.ErrorIs(t, err, ErrInvalidTenant)
	require.EqualError(t, err, `graphname: invalid tenant "abcde": 5 bytes long, more than 4; `+
		`tenant ids are 1-4 lower-case ASCII letters, digits or '-', not starting or ending with '-'`)

	err = r.ValidateGraph("abcdef")
	require.ErrorIs(t, err, ErrInvalidGraph)
	require.EqualError(t, err, `graphname: invalid graph name "abcdef": 6 bytes long, more than 5; `+
		`graph names are 1-5 ASCII letters, digits, '_', '-' or '.', not starting with '.'`)

	// A key that the default Resolver accepts but r would not produce.
	_, ok := r.Strip("abcd", "abcd_abcdef")
	require.False(t, ok)
	_, ok = Strip("abcd", "abcd_abcdef")
	require.True(t, ok)
}

func TestNewRejectsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		msg  string // after "graphname: invalid options: "
	}{
		{"dash separator", Options{Separator: '-'}, "Separator '-' is not allowed; use '_' or '.'"},
		{"colon separator", Options{Separator: ':'}, "Separator ':' is not allowed; use '_' or '.'"},
		{"letter separator", Options{Separator: 'x'}, "Separator 'x' is not allowed; use '_' or '.'"},
		{"digit separator", Options{Separator: '7'}, "Separator '7' is not allowed; use '_' or '.'"},
		{"star separator", Options{Separator: '*'}, "Separator '*' is not allowed; use '_' or '.'"},
		{"space separator", Options{Separator: ' '}, "Separator ' ' is not allowed; use '_' or '.'"},
		{"brace separator", Options{Separator: '{'}, "Separator '{' is not allowed; use '_' or '.'"},
		{"control separator", Options{Separator: 1}, `Separator '\x01' is not allowed; use '_' or '.'`},
		{"non-ASCII separator", Options{Separator: 0xc3}, "Separator byte 0xc3 is not allowed; use '_' or '.'"},
		{"unknown scheme", Options{Scheme: 7}, "unknown Scheme Scheme(7); use Readable or OpaqueSubject"},
		{"unknown case policy", Options{TenantCase: 9}, "unknown TenantCase CasePolicy(9); use CaseReject or CaseFold"},
		{"fold with opaque", Options{Scheme: OpaqueSubject, TenantCase: CaseFold},
			"TenantCase CaseFold cannot be used with OpaqueSubject; subjects are case-sensitive"},
		{"negative tenant length", Options{MaxTenantLen: -1},
			"MaxTenantLen -1 is out of range for Readable; use 1 to 63 (0 means 63)"},
		{"tenant too long", Options{MaxTenantLen: 64},
			"MaxTenantLen 64 is out of range for Readable; use 1 to 63 (0 means 63)"},
		{"subject too long", Options{Scheme: OpaqueSubject, MaxTenantLen: 1025},
			"MaxTenantLen 1025 is out of range for OpaqueSubject; use 1 to 1024 (0 means 1024)"},
		{"negative graph length", Options{MaxGraphLen: -5},
			"MaxGraphLen -5 is out of range; use 1 to 128 (0 means 128)"},
		{"graph too long", Options{MaxGraphLen: 129},
			"MaxGraphLen 129 is out of range; use 1 to 128 (0 means 128)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.opts)
			require.Nil(t, r)
			require.ErrorIs(t, err, ErrInvalidOptions)
			require.EqualError(t, err, "graphname: invalid options: "+tt.msg)
		})
	}
}

func TestNewFillsDefaults(t *testing.T) {
	tests := []struct {
		opts, want Options
	}{
		{Options{}, Options{Separator: '_', MaxTenantLen: 63, MaxGraphLen: 128}},
		{Options{Separator: '.'}, Options{Separator: '.', MaxTenantLen: 63, MaxGraphLen: 128}},
		{Options{Scheme: OpaqueSubject}, Options{Scheme: OpaqueSubject, Separator: '_', MaxTenantLen: 1024, MaxGraphLen: 128}},
		{Options{TenantCase: CaseFold, MaxTenantLen: 1, MaxGraphLen: 1},
			Options{Separator: '_', MaxTenantLen: 1, MaxGraphLen: 1, TenantCase: CaseFold}},
	}
	for _, tt := range tests {
		r := mustResolver(t, tt.opts)
		require.Equal(t, tt.want, r.Options())
	}
	require.Equal(t, "Readable", Readable.String())
	require.Equal(t, "OpaqueSubject", OpaqueSubject.String())
	require.Equal(t, "CaseReject", CaseReject.String())
	require.Equal(t, "CaseFold", CaseFold.String())
}

// TestZeroResolverFailsClosed: a Resolver not built by New refuses everything.
func TestZeroResolverFailsClosed(t *testing.T) {
	for _, r := range []*Resolver{{}, nil} {
		_, err := r.Resolve("acme", "users")
		require.ErrorIs(t, err, ErrInvalidOptions)
		require.EqualError(t, err, "graphname: invalid options: Resolver not initialised; use graphname.New or graphname.Default")
		_, err = r.Prefix("acme")
		require.ErrorIs(t, err, ErrInvalidOptions)
		require.ErrorIs(t, r.ValidateTenant("acme"), ErrInvalidOptions)
		require.ErrorIs(t, r.ValidateGraph("users"), ErrInvalidOptions)
		_, ok := r.Strip("acme", "acme_users")
		require.False(t, ok)
		require.Empty(t, r.Filter("acme", []string{"acme_users"}))
		require.NotNil(t, r.Filter("acme", []string{"acme_users"}))
		require.Equal(t, Options{}, r.Options())
	}
}

func TestStrip(t *testing.T) {
	fold := mustResolver(t, Options{TenantCase: CaseFold})
	dot := mustResolver(t, Options{Separator: '.'})
	opaque := mustResolver(t, Options{Scheme: OpaqueSubject})
	long := "https://login.example.com/|user-0123456789abcdef-0123456789abcdef"
	tests := []struct {
		name        string
		r           *Resolver
		tenant, key string
		want        string // "" means not ok
	}{
		{"own key", Default(), "acme", "acme_users", "users"},
		{"separator inside graph", Default(), "a", "a_b_x", "b_x"},
		{"graph starts with separator", Default(), "a", "a__x", "_x"},
		{"graph with dots", Default(), "a", "a_x.y", "x.y"},
		{"known collision", Default(), "a_b", "a_b_x", ""},
		{"other tenant with same start", Default(), "acme", "acme-x_users", ""},
		{"other tenant that is a prefix", Default(), "acme-x", "acme_users", ""},
		{"shorter tenant", Default(), "acm", "acme_users", ""},
		{"prefix only", Default(), "acme", "acme_", ""},
		{"tenant only", Default(), "acme", "acme", ""},
		{"no separator", Default(), "acme", "acmeusers", ""},
		{"wrong separator", Default(), "acme", "acme.users", ""},
		{"upper-case key", Default(), "acme", "ACME_users", ""},
		{"upper-case tenant", Default(), "ACME", "acme_users", ""},
		{"graph starts with dot", Default(), "acme", "acme_.users", ""},
		{"space in graph", Default(), "acme", "acme_my graph", ""},
		{"NUL in graph", Default(), "acme", "acme_users\x00", ""},
		{"glob in graph", Default(), "acme", "acme_*", ""},
		{"graph too long", Default(), "acme", "acme_" + strings.Repeat("g", 129), ""},
		{"graph at limit", Default(), "acme", "acme_" + strings.Repeat("g", 128), strings.Repeat("g", 128)},
		{"key before tenant", Default(), "acme", "xacme_users", ""},
		{"empty key", Default(), "acme", "", ""},
		{"empty tenant", Default(), "", "_users", ""},
		{"cyrillic look-alike tenant", Default(), "acmе", "acmе_users", ""},
		{"fold: mixed-case tenant", fold, "AcMe", "acme_users", "users"},
		{"fold: upper-case key", fold, "acme", "ACME_users", ""},
		{"dot separator", dot, "acme", "acme.users.v2", "users.v2"},
		{"dot separator: underscore key", dot, "acme", "acme_users", ""},
		{"dot separator: graph starts with dot", dot, "acme", "acme..users", ""},
		{"opaque", opaque, "auth0|abc", "mf2xi2bqprqweyy_users", "users"},
		{"opaque: raw subject key", opaque, "auth0|abc", "auth0|abc_users", ""},
		{"opaque: other subject", opaque, "auth0|abd", "mf2xi2bqprqweyy_users", ""},
		{"opaque: case differs", opaque, "AUTH0|ABC", "mf2xi2bqprqweyy_users", ""},
		{"opaque: hashed", opaque, long, "h-bezd7q6gucbgftsu6zawtz3taazz3nex5am72hdwz3jsl3o6ihjq_g", "g"},
		{"opaque: hashed other", opaque, long + "x", "h-bezd7q6gucbgftsu6zawtz3taazz3nex5am72hdwz3jsl3o6ihjq_g", ""},
		{"opaque: readable key", opaque, "a", "a_users", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graph, ok := tt.r.Strip(tt.tenant, tt.key)
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, tt.want, graph)
			if ok {
				key, err := tt.r.Resolve(tt.tenant, graph)
				require.NoError(t, err)
				require.Equal(t, tt.key, key)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	keys := []string{
		"acme_users",
		"globex_users",
		"acme-x_users",
		"acme_b_x",
		"acme_",
		"ACME_admin",
		"acme",
		"acme_.secret",
		"acme_my graph",
		"acme_orders",
		"acme_users", // duplicates are kept; GRAPH.LIST has none
		"a_b_x",
	}
	require.Equal(t, []string{"users", "b_x", "orders", "users"}, Filter("acme", keys))
	require.Equal(t, []string{"users"}, Filter("globex", keys))
	require.Equal(t, []string{"b_x"}, Filter("a", keys))
	require.Empty(t, Filter("a_b", keys))
	require.Empty(t, Filter("ACME", keys))
	require.Empty(t, Filter("", keys))
	require.NotNil(t, Filter("nobody", keys), "an empty list, not nil")
	require.NotNil(t, Filter("acme", nil))

	fold := mustResolver(t, Options{TenantCase: CaseFold})
	require.Equal(t, []string{"users", "b_x", "orders", "users"}, fold.Filter("ACME", keys))

	opaque := mustResolver(t, Options{Scheme: OpaqueSubject})
	okeys := []string{"mf2xi2bqprqweyy_users", "auth0|abc_raw", "mf2xi2bqprqweyy_a b", "mf2xi2bqprqweyz_x", "me_g"}
	require.Equal(t, []string{"users"}, opaque.Filter("auth0|abc", okeys))
	require.Equal(t, []string{"g"}, opaque.Filter("a", okeys))
	require.Empty(t, opaque.Filter("", okeys))
}

// TestOpaqueEncodingMatchesReference checks the encoding against
// encoding/base32 and crypto/sha256 at every length around the switch from
// direct to hashed segments, and that direct segments decode back.
func TestOpaqueEncodingMatchesReference(t *testing.T) {
	v := variants[1]
	require.Equal(t, OpaqueSubject, v.opts.Scheme)
	for n := 1; n <= 1024; n++ {
		subject := strings.Repeat("Zé|", n)[:n]
		if !strings.HasPrefix(subject, "Z") || !validUTF8(subject) {
			subject = strings.Repeat("x", n)
		}
		want, ok := v.refSegment(subject)
		require.True(t, ok)
		prefix, err := v.r.Prefix(subject)
		require.NoError(t, err)
		require.Equal(t, want+"_", prefix, "length %d", n)
		seg := prefix[:len(prefix)-1]
		require.LessOrEqual(t, len(seg), 63)
		require.Regexp(t, `^([a-z2-7]+|h-[a-z2-7]{52})$`, seg)
		if n <= 39 {
			got, err := refSubject(seg)
			require.NoError(t, err)
			require.Equal(t, subject, got)
		} else {
			require.Len(t, seg, 54)
		}
	}
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

// TestOpaqueShortSubjectsInjective enumerates every subject of one and two
// bytes (all valid UTF-8 ones) and checks that no two share a segment.
func TestOpaqueShortSubjectsInjective(t *testing.T) {
	r := variants[1].r
	seen := map[string]string{}
	add := func(subject string) {
		if !validUTF8(subject) {
			return
		}
		p, err := r.Prefix(subject)
		require.NoError(t, err)
		if prev, dup := seen[p]; dup {
			t.Fatalf("subjects %q and %q share prefix %q", prev, subject, p)
		}
		seen[p] = subject
	}
	for a := 0; a < 256; a++ {
		add(string([]byte{byte(a)}))
		for b := 0; b < 256; b++ {
			add(string([]byte{byte(a), byte(b)}))
		}
	}
	require.Greater(t, len(seen), 128+128*128)
}

// TestConcurrentUse runs every method of shared Resolvers from many
// goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	type job struct {
		v             variant
		tenant, graph string
		key           string
	}
	var jobs []job
	for _, v := range variants {
		for i := range 20 {
			tenant := "t" + strconv.Itoa(i)
			graph := "g-" + strconv.Itoa(i)
			key, ok := v.refResolve(tenant, graph)
			require.True(t, ok)
			jobs = append(jobs, job{v, tenant, graph, key})
		}
	}
	keys := make([]string, len(jobs))
	for i, j := range jobs {
		keys[i] = j.key
	}

	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 50 {
				j := jobs[(w*31+round)%len(jobs)]
				key, err := j.v.r.Resolve(j.tenant, j.graph)
				if err != nil || key != j.key {
					errs <- errors.New("Resolve: " + key)
					return
				}
				if g, ok := j.v.r.Strip(j.tenant, key); !ok || g != j.graph {
					errs <- errors.New("Strip: " + g)
					return
				}
				if got := j.v.r.Filter(j.tenant, keys); !slices.Contains(got, j.graph) {
					errs <- errors.New("Filter: " + strings.Join(got, ","))
					return
				}
				if _, err := Default().Prefix(j.tenant); err != nil {
					errs <- err
					return
				}
				if err := j.v.r.ValidateGraph(j.graph + " "); err == nil {
					errs <- errors.New("ValidateGraph accepted a space")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStdlibOnly: the package's non-test files import the standard library
// only (so `go list -deps ./graphname` lists nothing else).
func TestStdlibOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			first, _, _ := strings.Cut(path, "/")
			require.NotContains(t, first, ".", "%s imports %s", name, path)
			require.NotEqual(t, "C", path, "%s uses cgo", name)
		}
		checked++
	}
	require.GreaterOrEqual(t, checked, 3)
}
