package tenancy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// testClock is a settable clock for UsageOptions.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// usageDB returns a client of the test FalkorDB and a key prefix in the
// test's own namespace (deleted by falkortest when the test ends).
func usageDB(t testing.TB) (*redis.Client, string) {
	t.Helper()
	db := falkortest.Start(t)
	return db.Redis(t), db.Namespace() + ":usage:"
}

// newTestUsage returns a Usage over c, closed when the test ends. Unless opts
// says otherwise, it flushes only when told to.
func newTestUsage(t testing.TB, c redis.UniversalClient, opts UsageOptions) *Usage {
	t.Helper()
	if opts.FlushInterval == 0 {
		opts.FlushInterval = time.Hour
	}
	u := NewUsage(c, &opts)
	t.Cleanup(func() { _ = u.Close(context.Background()) })
	return u
}

// scanAll returns every key of c that matches pattern, sorted.
func scanAll(t testing.TB, c redis.Cmdable, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, pattern, 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	slices.Sort(keys)
	return keys
}

var usageDay = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// ev returns an event of tenant for tool.
func ev(tenant, tool string, outcome Outcome, rows int, d time.Duration) *Event {
	return &Event{Method: "tools/call", Tenant: tenant, Tool: tool, Outcome: outcome, Rows: rows, Duration: d}
}

func TestUsageCounts(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		events []*Event
		want   map[string]Counters // per tool
		fields map[string]string   // raw hash fields
	}{
		{
			name: "mixed stream",
			events: []*Event{
				ev("acme", "falkordb_query", OutcomeOK, 3, 2*time.Millisecond),
				ev("acme", "falkordb_query", OutcomeOK, 0, time.Millisecond),
				ev("acme", "falkordb_query", OutcomeToolError, -1, 500*time.Microsecond),
				ev("acme", "falkordb_query", OutcomeError, -1, 0),
				ev("acme", "falkordb_delete_graph", OutcomeRefused, -1, 10*time.Microsecond),
				ev("acme", "falkordb_list_graphs", OutcomeOK, 7, 1500*time.Microsecond),
				ev("", "falkordb_query", OutcomeRefused, -1, time.Second), // no tenant: ignored
				ev("bob", "falkordb_query", OutcomeOK, 100, time.Second),  // another tenant
			},
			want: map[string]Counters{
				"falkordb_query":        {Calls: 4, Errors: 2, Rows: 3, QueryTimeMs: 3.5},
				"falkordb_delete_graph": {Calls: 1, Refused: 1, QueryTimeMs: 0.01},
				"falkordb_list_graphs":  {Calls: 1, Rows: 7, QueryTimeMs: 1.5},
			},
			fields: map[string]string{
				"falkordb_query|calls": "4", "falkordb_query|errors": "2", "falkordb_query|rows": "3", "falkordb_query|us": "3500",
				"falkordb_delete_graph|calls": "1", "falkordb_delete_graph|refused": "1", "falkordb_delete_graph|us": "10",
				"falkordb_list_graphs|calls": "1", "falkordb_list_graphs|rows": "7", "falkordb_list_graphs|us": "1500",
			},
		},
		{
			name: "odd tool names",
			events: []*Event{
				ev("acme", "a|b", OutcomeOK, 1, 0),
				ev("acme", "a|b|calls", OutcomeOK, 2, 0),
				{Method: "resources/read", Tenant: "acme", Outcome: OutcomeRefused, Rows: -1},
				{Method: "tools/call", Tenant: "acme", Tool: "no_such_tool", Outcome: OutcomeRefused, Rows: -1, Err: fmt.Errorf("%w: x", ErrUnknownTool)},
				{Method: "tools/call", Tenant: "acme", Tool: "another_one", Outcome: OutcomeRefused, Rows: -1, Err: fmt.Errorf("%w: x", ErrUnknownTool)},
				ev("acme", strings.Repeat("é", 100), OutcomeOK, -1, 0),
			},
			want: map[string]Counters{
				"a|b":                   {Calls: 1, Rows: 1},
				"a|b|calls":             {Calls: 1, Rows: 2},
				"resources/read":        {Calls: 1, Refused: 1},
				UnknownToolName:         {Calls: 2, Refused: 2},
				strings.Repeat("é", 64): {Calls: 1},
			},
			fields: map[string]string{
				"a|b|calls": "1", "a|b|rows": "1", "a|b|calls|calls": "1", "a|b|calls|rows": "2",
				"resources/read|calls": "1", "resources/read|refused": "1",
				UnknownToolName + "|calls": "2", UnknownToolName + "|refused": "2",
				strings.Repeat("é", 64) + "|calls": "1",
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newTestUsage(t, c, UsageOptions{KeyPrefix: fmt.Sprintf("%s%d:", prefix, i), Now: newTestClock(usageDay).Now})
			for _, e := range tt.events {
				u.Audit(ctx, e)
			}
			require.NoError(t, u.Flush(ctx))

			got, err := c.HGetAll(ctx, u.key(encodeTenant("acme"), dayOf(usageDay))).Result()
			require.NoError(t, err)
			require.Equal(t, tt.fields, got)
			ttl, err := c.TTL(ctx, u.key(encodeTenant("acme"), dayOf(usageDay))).Result()
			require.NoError(t, err)
			require.InDelta(t, DefaultUsageRetention.Seconds(), ttl.Seconds(), 60, "keys expire after the retention")

			r, err := u.Report(ctx, "acme", 1)
			require.NoError(t, err)
			require.Len(t, r.Days, 1)
			require.Equal(t, "2026-11-29", r.Days[0].Date)
			require.Equal(t, tt.want, r.Days[0].Tools)
			require.Equal(t, tt.want, r.Tools)
			var total Counters
			for _, c := range tt.want {
				total.Calls += c.Calls
				total.Errors += c.Errors
				total.Refused += c.Refused
				total.Rows += c.Rows
				total.QueryTimeMs += c.QueryTimeMs
			}
			require.Equal(t, total.Calls, r.Total.Calls)
			require.Equal(t, total.Errors, r.Total.Errors)
			require.Equal(t, total.Refused, r.Total.Refused)
			require.Equal(t, total.Rows, r.Total.Rows)
			require.InDelta(t, total.QueryTimeMs, r.Total.QueryTimeMs, 1e-9)
			require.Equal(t, r.Total, r.Days[0].Total)

			// A second flush with nothing new writes nothing.
			require.NoError(t, u.Flush(ctx))
			again, err := c.HGetAll(ctx, u.key(encodeTenant("acme"), dayOf(usageDay))).Result()
			require.NoError(t, err)
			require.Equal(t, tt.fields, again)
		})
	}
}

// TestUsageReplicasAddUp: two Usages (two proxy replicas) counting the same
// tenants concurrently, flushing in the background, add up exactly.
func TestUsageReplicasAddUp(t *testing.T) {
	c, prefix := usageDB(t)
	c2 := falkortest.Start(t).Redis(t) // the second replica's own connection
	ctx := context.Background()
	clock := newTestClock(usageDay)
	opts := UsageOptions{KeyPrefix: prefix, FlushInterval: 2 * time.Millisecond, Now: clock.Now}
	replicas := []*Usage{NewUsage(c, &opts), NewUsage(c2, &opts)}
	t.Cleanup(func() {
		for _, u := range replicas {
			_ = u.Close(ctx)
		}
	})
	const goroutines, events = 4, 500
	var wg sync.WaitGroup
	for _, u := range replicas {
		for g := range goroutines {
			wg.Go(func() {
				for i := range events {
					tenant := []string{"acme", "bob"}[i%2]
					outcome := OutcomeOK
					if i%5 == 0 {
						outcome = OutcomeRefused
					}
					u.Audit(ctx, ev(tenant, fmt.Sprintf("tool%d", g%2), outcome, 2, time.Millisecond))
				}
			})
		}
	}
	wg.Wait()
	for _, u := range replicas {
		require.NoError(t, u.Close(ctx)) // the last flush
	}
	const perTenant = 2 * goroutines * events / 2 // both replicas; half the events each
	for _, tenant := range []string{"acme", "bob"} {
		r, err := replicas[0].Report(ctx, tenant, 1)
		require.NoError(t, err)
		require.EqualValues(t, perTenant, r.Total.Calls, tenant)
		require.EqualValues(t, perTenant/5, r.Total.Refused, tenant)
		require.EqualValues(t, 2*perTenant, r.Total.Rows, tenant)
		require.InDelta(t, float64(perTenant), r.Total.QueryTimeMs, 1e-6, tenant)
		require.EqualValues(t, perTenant/2, r.Tools["tool0"].Calls, tenant)
		require.EqualValues(t, perTenant/2, r.Tools["tool1"].Calls, tenant)
	}
	require.Zero(t, replicas[0].Dropped()+replicas[1].Dropped())
}

// TestUsageDayBoundary: events count on the UTC day of Now, whatever the
// clock's zone.
func TestUsageDayBoundary(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	tokyo := time.FixedZone("UTC+9", 9*3600)
	tests := []struct {
		name   string
		before time.Time // last moment of a day
		after  time.Time // first moment of the next
		days   [2]string
	}{
		{"utc", time.Date(2026, 11, 29, 23, 59, 59, 999_999_999, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), [2]string{"2026-11-29", "2026-11-30"}},
		{"other zone", time.Date(2026, 12, 1, 8, 59, 59, 0, tokyo), time.Date(2026, 12, 1, 9, 0, 0, 0, tokyo), [2]string{"2026-11-30", "2026-12-01"}},
		{"new year", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), [2]string{"2026-12-31", "2027-01-01"}},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), [2]string{"1969-12-31", "1970-01-01"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock(tt.before)
			u := newTestUsage(t, c, UsageOptions{KeyPrefix: fmt.Sprintf("%s%d:", prefix, i), Now: clock.Now})
			u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
			clock.Set(tt.after)
			u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
			u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
			require.NoError(t, u.Flush(ctx))

			keys := scanAll(t, c, u.Keys("acme"))
			enc := encodeTenant("acme")
			require.Equal(t, []string{u.prefix + "{" + enc + "}:" + tt.days[0], u.prefix + "{" + enc + "}:" + tt.days[1]}, keys)
			r, err := u.Report(ctx, "acme", 2)
			require.NoError(t, err)
			require.Equal(t, tt.days[0], r.From)
			require.Equal(t, tt.days[1], r.To)
			require.Equal(t, tt.days[0], r.Days[0].Date)
			require.EqualValues(t, 1, r.Days[0].Total.Calls)
			require.EqualValues(t, 2, r.Days[1].Total.Calls)
			require.EqualValues(t, 3, r.Total.Calls)
		})
	}
}

// TestUsageReport: reports cover whole days, today last, empty days
// included; the number of days is checked.
func TestUsageReport(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	clock := newTestClock(usageDay)
	u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix, Now: clock.Now, Retention: 30 * 24 * time.Hour})
	for _, back := range []int{0, 2, 2, 6, 30} { // days ago
		clock.Set(usageDay.AddDate(0, 0, -back))
		u.Audit(ctx, ev("acme", "q", OutcomeOK, back, time.Millisecond))
	}
	clock.Set(usageDay)
	require.NoError(t, u.Flush(ctx))
	require.Equal(t, 30, u.MaxReportDays())

	tests := []struct {
		days  int
		dates []string
		calls []int64
		rows  int64
	}{
		{1, []string{"2026-11-29"}, []int64{1}, 0},
		{3, []string{"2026-11-27", "2026-11-28", "2026-11-29"}, []int64{2, 0, 1}, 4},
		{7, []string{"2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29"}, []int64{1, 0, 0, 0, 2, 0, 1}, 10},
		{30, nil, nil, 10}, // the event of 30 days ago is one day too old
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.days, " days"), func(t *testing.T) {
			r, err := u.Report(ctx, "acme", tt.days)
			require.NoError(t, err)
			require.Len(t, r.Days, tt.days)
			require.Equal(t, r.Days[0].Date, r.From)
			require.Equal(t, "2026-11-29", r.To)
			require.EqualValues(t, tt.rows, r.Total.Rows)
			if tt.dates == nil {
				return
			}
			var dates []string
			var calls []int64
			for _, d := range r.Days {
				dates = append(dates, d.Date)
				calls = append(calls, d.Total.Calls)
				if d.Total.Calls == 0 {
					require.NotNil(t, d.Tools)
					require.Empty(t, d.Tools)
				}
			}
			require.Equal(t, tt.dates, dates)
			require.Equal(t, tt.calls, calls)
		})
	}

	t.Run("json", func(t *testing.T) {
		r, err := u.Report(ctx, "acme", 2)
		require.NoError(t, err)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		require.JSONEq(t, `{
			"tenant": "acme", "from": "2026-11-28", "to": "2026-11-29",
			"days": [
				{"date": "2026-11-28", "tools": {}, "total": {"calls": 0, "errors": 0, "refused": 0, "rows": 0, "queryTimeMs": 0}},
				{"date": "2026-11-29", "tools": {"q": {"calls": 1, "errors": 0, "refused": 0, "rows": 0, "queryTimeMs": 1}},
				 "total": {"calls": 1, "errors": 0, "refused": 0, "rows": 0, "queryTimeMs": 1}}
			],
			"tools": {"q": {"calls": 1, "errors": 0, "refused": 0, "rows": 0, "queryTimeMs": 1}},
			"total": {"calls": 1, "errors": 0, "refused": 0, "rows": 0, "queryTimeMs": 1}
		}`, string(b))
	})

	t.Run("invalid", func(t *testing.T) {
		for _, days := range []int{0, -1, 31} {
			_, err := u.Report(ctx, "acme", days)
			require.ErrorIs(t, err, ErrUsageDays, days)
		}
		_, err := u.Report(ctx, "", 1)
		require.ErrorIs(t, err, ErrNoTenant)
		require.ErrorIs(t, u.Erase(ctx, ""), ErrNoTenant)
	})

	t.Run("unknown tenant", func(t *testing.T) {
		r, err := u.Report(ctx, "nobody", 2)
		require.NoError(t, err)
		require.Len(t, r.Days, 2)
		require.Zero(t, r.Total)
		require.Empty(t, r.Tools)
	})
}

// TestUsageErase: Erase deletes every key of the tenant, and the counts it
// has not flushed, and nothing of other tenants, even those whose encoded
// name starts with the erased one's (or the other way round).
func TestUsageErase(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	clock := newTestClock(usageDay)
	u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix, Now: clock.Now})
	// "abc" encodes as "YWJj", a prefix of "abcdef" ("YWJjZGVm").
	require.True(t, strings.HasPrefix(encodeTenant("abcdef"), encodeTenant("abc")))
	tenants := []string{"abc", "abcdef", "ab", "abc*", "abcd"}
	for day := range 3 {
		clock.Set(usageDay.AddDate(0, 0, -day))
		for _, tenant := range tenants {
			u.Audit(ctx, ev(tenant, "q", OutcomeOK, 1, 0))
		}
	}
	require.NoError(t, u.Flush(ctx))
	clock.Set(usageDay)
	for _, tenant := range tenants {
		require.Len(t, scanAll(t, c, u.Keys(tenant)), 3, tenant)
	}
	u.Audit(ctx, ev("abcdef", "q", OutcomeOK, 1, 0)) // not yet flushed
	u.Audit(ctx, ev("abc", "q", OutcomeOK, 1, 0))

	tests := []struct {
		erase string
		left  []string
	}{
		{"abcdef", []string{"abc", "ab", "abc*", "abcd"}},
		{"ab", []string{"abc", "abc*", "abcd"}},
		{"abc", []string{"abc*", "abcd"}},
	}
	for _, tt := range tests {
		t.Run(tt.erase, func(t *testing.T) {
			require.NoError(t, u.Erase(ctx, tt.erase))
			require.Empty(t, scanAll(t, c, u.Keys(tt.erase)))
			for _, other := range tt.left {
				require.Len(t, scanAll(t, c, u.Keys(other)), 3, other)
			}
			require.NoError(t, u.Flush(ctx))
			require.Empty(t, scanAll(t, c, u.Keys(tt.erase)), "unflushed counts are erased too")
			r, err := u.Report(ctx, tt.erase, 3)
			require.NoError(t, err)
			require.Zero(t, r.Total)
		})
	}
	r, err := u.Report(ctx, "abcd", 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, r.Total.Calls)
}

// TestUsagePatternTenants: tenant names (and a key prefix) full of pattern
// characters match only their own keys.
func TestUsagePatternTenants(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix + `p*[?]\{x}:`, Now: newTestClock(usageDay).Now})
	tenants := []string{"*", "?", "[", "]", "[a-z]*", "{", "}", "{a}", "\\", "\\*", "a*", "a", "**", "}:*", "^", "\x00", "ü", " "}
	for i, tenant := range tenants {
		for range i + 1 {
			u.Audit(ctx, ev(tenant, "q", OutcomeOK, -1, 0))
		}
	}
	require.NoError(t, u.Flush(ctx))
	all := scanAll(t, c, escapeGlob(u.prefix)+"*")
	require.Len(t, all, len(tenants))
	for i, tenant := range tenants {
		keys := scanAll(t, c, u.Keys(tenant))
		require.Len(t, keys, 1, "%q", tenant)
		got, day, ok := u.ParseKey(keys[0])
		require.True(t, ok)
		require.Equal(t, tenant, got)
		require.Equal(t, "2026-11-29", day.Format(time.DateOnly))
		r, err := u.Report(ctx, tenant, 1)
		require.NoError(t, err)
		require.EqualValues(t, i+1, r.Total.Calls, "%q", tenant)
	}
	require.NoError(t, u.Erase(ctx, "*"))
	require.Len(t, scanAll(t, c, escapeGlob(u.prefix)+"*"), len(tenants)-1, `erasing "*" erases one tenant`)
}

// TestUsageClose: Close flushes, stops the goroutine, and Audit afterwards
// counts nothing.
func TestUsageClose(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	before := countGoroutines()
	u := NewUsage(c, &UsageOptions{KeyPrefix: prefix, FlushInterval: time.Millisecond})
	require.Equal(t, before+1, countGoroutines())
	u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
	require.NoError(t, u.Close(ctx))
	select {
	case <-u.done:
	default:
		t.Fatal("the flush goroutine still runs after Close")
	}
	require.Eventually(t, func() bool { return countGoroutines() <= before }, 5*time.Second, 10*time.Millisecond)

	r, err := u.Report(ctx, "acme", 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Total.Calls, "Close flushes")

	u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
	require.NoError(t, u.Close(ctx), "Close twice")
	require.NoError(t, u.Flush(ctx))
	r, err = u.Report(ctx, "acme", 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Total.Calls, "Audit after Close counts nothing")

	// A canceled context ends Close's wait.
	u2 := NewUsage(c, &UsageOptions{KeyPrefix: prefix})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_ = u2.Close(canceled)
	<-u2.done
}

// countGoroutines counts the goroutines that NewUsage started, running or
// about to run.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/tenantgraph/tenantgraph/tenancy.NewUsage ")
}

// flakyClient returns a client of c's server that cannot connect while down
// is set (connections already made keep working).
func flakyClient(t *testing.T, c *redis.Client, down *atomic.Bool) *redis.Client {
	flaky := redis.NewClient(&redis.Options{
		Addr:          c.Options().Addr,
		Password:      c.Options().Password,
		MaxRetries:    -1,
		DialerRetries: 1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if down.Load() {
				return nil, errors.New("server down")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { _ = flaky.Close() })
	return flaky
}

// TestUsageFailedFlush: counts of a failed flush are written by the next
// one, exactly once; the failure is logged.
func TestUsageFailedFlush(t *testing.T) {
	c, prefix := usageDB(t)
	ctx := context.Background()
	var down atomic.Bool
	down.Store(true)
	flaky := flakyClient(t, c, &down)
	var logs syncBuffer
	u := newTestUsage(t, flaky, UsageOptions{
		KeyPrefix: prefix,
		Now:       newTestClock(usageDay).Now,
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
	})
	u.Audit(ctx, ev("acme", "q", OutcomeOK, 2, time.Millisecond))
	u.Audit(ctx, ev("bob", "q", OutcomeToolError, -1, time.Millisecond))
	require.ErrorContains(t, u.Flush(ctx), "server down")
	require.Contains(t, logs.String(), "usage flush failed")
	u.Audit(ctx, ev("acme", "q", OutcomeOK, 3, time.Millisecond))
	require.Error(t, u.Flush(ctx), "still down")

	down.Store(false)
	require.NoError(t, u.Flush(ctx))
	require.Contains(t, logs.String(), "succeeded again")
	r, err := u.Report(ctx, "acme", 1)
	require.NoError(t, err)
	require.Equal(t, Counters{Calls: 2, Rows: 5, QueryTimeMs: 2}, r.Total)
	r, err = u.Report(ctx, "bob", 1)
	require.NoError(t, err)
	require.Equal(t, Counters{Calls: 1, Errors: 1, QueryTimeMs: 1}, r.Total)

	t.Run("closed client", func(t *testing.T) {
		closed := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
		require.NoError(t, closed.Close())
		u := newTestUsage(t, closed, UsageOptions{KeyPrefix: prefix + "closed:", Logger: slog.New(slog.DiscardHandler)})
		u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
		require.ErrorIs(t, u.Flush(ctx), redis.ErrClosed)
		require.ErrorIs(t, u.Close(ctx), redis.ErrClosed, "the last flush fails too")
		u.mu.Lock()
		defer u.mu.Unlock()
		require.Len(t, u.pending, 1, "the counts are still there")
	})

	t.Run("one key fails", func(t *testing.T) {
		// A key of the wrong type fails its writes (WRONGTYPE); the other
		// tenant's are written once, and the failed ones on the next flush.
		u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix + "wrongtype:", Now: newTestClock(usageDay).Now, Logger: slog.New(slog.DiscardHandler)})
		bad := u.key(encodeTenant("bob"), dayOf(usageDay))
		require.NoError(t, c.Set(ctx, bad, "not a hash", 0).Err())
		u.Audit(ctx, ev("acme", "q", OutcomeOK, 1, 0))
		u.Audit(ctx, ev("bob", "q", OutcomeOK, 1, 0))
		require.ErrorContains(t, u.Flush(ctx), "WRONGTYPE")
		require.NoError(t, c.Del(ctx, bad).Err())
		require.NoError(t, u.Flush(ctx))
		for _, tenant := range []string{"acme", "bob"} {
			r, err := u.Report(ctx, tenant, 1)
			require.NoError(t, err)
			require.Equal(t, Counters{Calls: 1, Rows: 1}, r.Total, tenant)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		var logs syncBuffer
		down.Store(true)
		u := newTestUsage(t, flakyClient(t, c, &down), UsageOptions{
			KeyPrefix:  prefix + "bounded:",
			MaxPending: 2,
			Now:        newTestClock(usageDay).Now,
			Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		})
		for _, tool := range []string{"a", "b", "c", "a", "d", "d"} {
			u.Audit(ctx, ev("acme", tool, OutcomeOK, -1, 0))
		}
		require.EqualValues(t, 3, u.Dropped(), "c and twice d find no room")
		require.Error(t, u.Flush(ctx))
		require.Contains(t, logs.String(), "usage counts dropped")
		require.Contains(t, logs.String(), "events=3")
		// The failed flush's counts take the room again, before new ones.
		u.Audit(ctx, ev("acme", "e", OutcomeOK, -1, 0))
		require.EqualValues(t, 4, u.Dropped())
		down.Store(false)
		require.NoError(t, u.Flush(ctx))
		r, err := u.Report(ctx, "acme", 1)
		require.NoError(t, err)
		require.EqualValues(t, 3, r.Total.Calls)
		require.EqualValues(t, 2, r.Tools["a"].Calls)
		require.EqualValues(t, 1, r.Tools["b"].Calls)
	})
}

// usageEnv is a test server with the usage tool behind the middleware,
// counting into u.
func usageEnv(t *testing.T) (*env, *Usage) {
	c, prefix := usageDB(t)
	u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix})
	e := newEnv(t, Config{Tools: MergeTools(allTools(), UsageTools()), Auditor: u})
	AddUsageTool(e.srv, u)
	return e, u
}

// usageReport calls the usage tool and decodes its structured result.
func usageReport(t *testing.T, cs *mcp.ClientSession, args map[string]any) *UsageReport {
	t.Helper()
	res, err := callTool(t, cs, UsageToolName, args)
	require.NoError(t, err)
	require.False(t, res.IsError, text(res))
	var r UsageReport
	require.NoError(t, json.Unmarshal([]byte(structured(t, res)), &r))
	var fromText UsageReport
	require.NoError(t, json.Unmarshal([]byte(text(res)), &fromText), "the text is the same JSON")
	require.Equal(t, r, fromText)
	return &r
}

// TestUsageTool: through the middleware, the tool reports the caller's own
// usage only, to admins only, and takes no tenant.
func TestUsageTool(t *testing.T) {
	e, _ := usageEnv(t)
	acme := e.connect(acmeAdmin)
	bob := e.connect(bobRW)
	bobAdmin := e.connect(ident("bob", ScopeAdmin))
	for range 2 {
		_, err := callTool(t, acme, "whoami", map[string]any{})
		require.NoError(t, err)
	}
	res, err := callTool(t, acme, "fail", map[string]any{"text": "boom"})
	require.NoError(t, err)
	require.True(t, res.IsError)
	for range 3 {
		_, err := callTool(t, bob, "whoami", map[string]any{})
		require.NoError(t, err)
	}
	res, err = callTool(t, bob, UsageToolName, map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError, "refused without the admin scope")
	require.Contains(t, text(res), "permission denied")

	r := usageReport(t, acme, map[string]any{})
	require.Equal(t, "acme", r.Tenant)
	require.Len(t, r.Days, 7, "7 days by default")
	require.Equal(t, map[string]int64{"whoami": 2, "fail": 1}, callsOf(r.Tools))
	require.EqualValues(t, 1, r.Tools["fail"].Errors)

	r = usageReport(t, bobAdmin, map[string]any{"days": 1})
	require.Equal(t, "bob", r.Tenant)
	require.Len(t, r.Days, 1)
	require.Equal(t, map[string]int64{"whoami": 3, UsageToolName: 1}, callsOf(r.Tools), "bob's own calls, the refused one included")
	require.EqualValues(t, 1, r.Tools[UsageToolName].Refused)

	r = usageReport(t, acme, map[string]any{"days": 90})
	require.Len(t, r.Days, 90)
	require.EqualValues(t, 1, r.Tools[UsageToolName].Calls, "its own earlier call")

	// The tool is listed for admins only, and has no tenant argument.
	list, err := bob.ListTools(context.Background(), nil)
	require.NoError(t, err)
	for _, tool := range list.Tools {
		require.NotEqual(t, UsageToolName, tool.Name)
	}
	list, err = acme.ListTools(context.Background(), nil)
	require.NoError(t, err)
	i := slices.IndexFunc(list.Tools, func(tool *mcp.Tool) bool { return tool.Name == UsageToolName })
	require.GreaterOrEqual(t, i, 0)
	schema, err := json.Marshal(list.Tools[i].InputSchema)
	require.NoError(t, err)
	require.NotContains(t, strings.ToLower(string(schema)), "tenant")

	for _, args := range []map[string]any{
		{"days": 0}, {"days": 91}, {"days": -1}, {"days": "7"}, {"days": 1.5},
		{"tenant": "bob"}, {"days": 1, "tenant": "bob"},
	} {
		res, err := callTool(t, acme, UsageToolName, args)
		if err == nil {
			require.True(t, res.IsError, "%v: %s", args, text(res))
			require.NotContains(t, text(res), "whoami", "no report")
		}
	}
}

// callsOf returns the calls per tool.
func callsOf(tools map[string]Counters) map[string]int64 {
	out := make(map[string]int64, len(tools))
	for name, c := range tools {
		out[name] = c.Calls
	}
	return out
}

// TestUsageToolNoIdentity: without the middleware's identity the tool
// refuses.
func TestUsageToolNoIdentity(t *testing.T) {
	c, prefix := usageDB(t)
	u := newTestUsage(t, c, UsageOptions{KeyPrefix: prefix, Retention: 3 * 24 * time.Hour})
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	AddUsageTool(s, u)
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := s.Connect(ctx, st, nil)
	require.NoError(t, err)
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	require.NoError(t, err)
	defer cs.Close()
	res, err := callTool(t, cs, UsageToolName, map[string]any{})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "no verified identity")

	// With an identity in the context (as the middleware puts it), the
	// days are bounded by the retention as well.
	e := newEnv(t, Config{Tools: UsageTools(), Auditor: u})
	AddUsageTool(e.srv, u)
	admin := e.connect(ident("acme", ScopeAdmin))
	res, err = callTool(t, admin, UsageToolName, map[string]any{"days": 4})
	require.NoError(t, err)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "between 1 and 3")
	require.Len(t, usageReport(t, admin, map[string]any{"days": 3}).Days, 3)
	require.Equal(t, map[string]ToolPolicy{UsageToolName: {Scopes: []string{ScopeAdmin}, GraphArguments: []string{}}}, UsageTools())
}

// TestUsageCluster: on a Redis Cluster, replicas add up, reports read the
// tenant's slot, and Erase finds the tenant's keys on every primary.
func TestUsageCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := falkortest.StartCluster(t, lite.ClusterOptions{Primaries: 3})
	ctx := context.Background()
	newClient := func() *redis.ClusterClient {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Password: cl.Password(), MaxRetries: -1})
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	cc := newClient()
	clock := newTestClock(usageDay)
	a := newTestUsage(t, cc, UsageOptions{Now: clock.Now})
	b := newTestUsage(t, newClient(), UsageOptions{Now: clock.Now})
	var tenants []string
	for i := range 24 {
		tenants = append(tenants, fmt.Sprintf("tenant-%d", i))
	}
	for day := range 2 {
		clock.Set(usageDay.AddDate(0, 0, -day))
		for i, tenant := range tenants {
			for range i + 1 {
				a.Audit(ctx, ev(tenant, "q", OutcomeOK, 1, 0))
				b.Audit(ctx, ev(tenant, "q", OutcomeOK, 1, 0))
			}
		}
	}
	clock.Set(usageDay)
	require.NoError(t, a.Flush(ctx))
	require.NoError(t, b.Flush(ctx))

	// The keys spread over the primaries.
	var used atomic.Int32
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, _, err := n.Scan(ctx, 0, DefaultUsagePrefix+"*", 1000).Result()
		if len(keys) > 0 {
			used.Add(1)
		}
		return err
	}))
	require.Greater(t, used.Load(), int32(1))

	for i, tenant := range tenants {
		r, err := a.Report(ctx, tenant, 2)
		require.NoError(t, err)
		require.EqualValues(t, 4*(i+1), r.Total.Calls, tenant)
	}
	for _, tenant := range tenants[:12] {
		require.NoError(t, b.Erase(ctx, tenant))
	}
	var left sync.Map
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		for _, tenant := range tenants {
			var keys []string
			iter := n.Scan(ctx, 0, a.Keys(tenant), 1000).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				return err
			}
			if len(keys) > 0 {
				left.Store(tenant, len(keys))
			}
		}
		return nil
	}))
	for i, tenant := range tenants {
		n, ok := left.Load(tenant)
		if i < 12 {
			require.False(t, ok, "%s erased", tenant)
		} else {
			require.Equal(t, 2, n, tenant)
		}
	}
}

// FuzzUsageKey: the tenant encoding is injective, safe in keys and
// patterns, and parses back.
func FuzzUsageKey(f *testing.F) {
	for _, s := range [][2]string{
		{"acme", "bob"}, {"abc", "abcdef"}, {"*", "a"}, {"[a]", "a"}, {"{", "}"}, {"\\", "\\\\"},
		{"\xff\xfe", "\xff"}, {"a\x00b", "a"}, {"é", "e"}, {"https://issuer/|sub", "x"},
	} {
		f.Add(s[0], s[1], int64(20786))
	}
	u := &Usage{prefix: "tg:us*ge[1]:"}
	f.Fuzz(func(t *testing.T, a, b string, day int64) {
		day %= 2_000_000 // years 0 to 9999 or so
		if day < -719_162 {
			day = -day
		}
		if a == "" {
			return
		}
		enc := encodeTenant(a)
		for _, r := range enc {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("encoding of %q holds %q", a, r)
			}
		}
		key := u.key(enc, day)
		tenant, d, ok := u.ParseKey(key)
		if !ok || tenant != a || dayOf(d) != day {
			t.Fatalf("ParseKey(%q) = %q, %v, %v; want %q, day %d", key, tenant, d, ok, a, day)
		}
		// path.Match reads * ? [ ] and \ as Redis does; '/' is no
		// separator in the keys it sees here.
		if strings.Contains(key, "/") {
			return
		}
		if m, err := path.Match(u.Keys(a), key); err != nil || !m {
			t.Fatalf("Keys(%q) = %q does not match %q (%v)", a, u.Keys(a), key, err)
		}
		if b != a && b != "" {
			if encodeTenant(b) == enc {
				t.Fatalf("%q and %q encode alike", a, b)
			}
			if m, _ := path.Match(u.Keys(a), u.key(encodeTenant(b), day)); m {
				t.Fatalf("Keys(%q) matches a key of %q", a, b)
			}
		}
	})
}

// BenchmarkUsageAudit measures Audit, which runs on every call, from
// parallel goroutines, flushing in the background.
func BenchmarkUsageAudit(b *testing.B) {
	c, prefix := usageDB(b)
	u := newTestUsage(b, c, UsageOptions{KeyPrefix: prefix, FlushInterval: DefaultUsageFlushInterval})
	events := []*Event{
		ev("acme", "falkordb_query", OutcomeOK, 10, time.Millisecond),
		ev("bob", "falkordb_ro_query", OutcomeOK, 3, 2*time.Millisecond),
		ev("acme", "falkordb_list_graphs", OutcomeToolError, -1, time.Millisecond),
		ev("carol", "falkordb_query", OutcomeRefused, -1, 0),
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			u.Audit(ctx, events[i%len(events)])
			i++
		}
	})
}
