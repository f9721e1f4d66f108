package tenancy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Defaults of [UsageOptions].
const (
	// DefaultUsagePrefix is the key prefix of a [Usage] unless its options
	// say otherwise.
	DefaultUsagePrefix = "tenantgraph:usage:"

	// DefaultUsageRetention is how long usage is kept unless the options
	// say otherwise: 400 days, a year and a bit for year-on-year reports.
	DefaultUsageRetention = 400 * 24 * time.Hour

	// DefaultUsageFlushInterval is how often a [Usage] writes its counts
	// unless the options say otherwise.
	DefaultUsageFlushInterval = time.Second

	// DefaultUsageMaxPending is the default of [UsageOptions].MaxPending.
	DefaultUsageMaxPending = 100_000
)

// UnknownToolName is the tool name under which a [Usage] counts calls that
// the middleware refused as unknown tools ([ErrUnknownTool]): clients choose
// those names freely, and counting each would let them fill the store.
const UnknownToolName = "(unknown)"

// maxUsageToolName is the longest tool name a [Usage] counts; longer names
// are cut (at a rune boundary).
const maxUsageToolName = 128

// usageFlushTimeout bounds a background flush.
const usageFlushTimeout = 10 * time.Second

// usageWarnEvery is how often a failing background flush is logged.
const usageWarnEvery = time.Minute

// ErrUsageDays: a usage report was asked for fewer than one day, or for
// more days than the usage is kept.
var ErrUsageDays = errors.New("tenancy: usage days out of range")

// UsageOptions configure a [Usage]. The zero value is valid.
type UsageOptions struct {
	// KeyPrefix goes before every key; empty means [DefaultUsagePrefix]. It
	// should not contain '{' or '}', which would change the keys' cluster
	// hash tag (see [Usage]).
	KeyPrefix string

	// Retention is how long a day's counts are kept after their last
	// update, and bounds the days a report may cover (whole days); zero or
	// less means [DefaultUsageRetention].
	Retention time.Duration

	// FlushInterval is how often the counts gathered in memory are written;
	// zero or less means [DefaultUsageFlushInterval].
	FlushInterval time.Duration

	// Now returns the current time, which decides the (UTC) day an event
	// is counted on and the days of a report; nil means time.Now.
	Now func() time.Time

	// Logger receives failed flushes and dropped counts; nil means
	// slog.Default().
	Logger *slog.Logger

	// MaxPending bounds the (tenant, tool, day) entries held in memory
	// between flushes, which grow while the store is unreachable. Events
	// that would add an entry beyond it are dropped, counted (see
	// [Usage.Dropped]) and logged. Zero or less means
	// [DefaultUsageMaxPending].
	MaxPending int
}

// Usage counts the calls of every tenant, per tool and per UTC day, in a
// Redis-protocol server (Redis, Valkey, FalkorDB) shared by all replicas of
// a server, so that their counts add up. It is an [Auditor]: pass it as
// [Config].Auditor (or call it from your own Auditor), and read the counts
// with [Usage.Report] or, for tenants themselves, the tool of
// [AddUsageTool].
//
// For every event with a tenant it counts calls, errors ([OutcomeError]
// and [OutcomeToolError]), refusals ([OutcomeRefused]), rows returned (the
// sum of [Event].Rows where known) and query time (the sum of
// [Event].Duration), under the tool the client named ([Event].Tool, not the
// read-only variant it may have been routed to), cut to 128 bytes; refused
// calls of unknown tools count under [UnknownToolName], and refused
// requests that are not tool calls under their method. Events without a
// tenant (refused before an identity was found) are not counted. The day is
// the UTC day of [UsageOptions].Now when the event is audited.
//
// Audit never waits for the store: counts gather in memory and are written
// every FlushInterval by a background goroutine, in one pipelined round trip
// (one per node on a cluster). A failed write keeps its counts for the next
// one. Counts are lost only when the process ends without [Usage.Close] or
// when more than MaxPending entries wait (dropped and logged); they are
// counted twice only when a connection breaks after the server ran a write
// but before it answered, and the write is retried (by the next flush, or by
// the client: give it MaxRetries -1 to avoid that).
//
// # Key layout
//
// One hash per tenant and UTC day:
//
//	<KeyPrefix>{<tenant as unpadded base64url>}:<YYYY-MM-DD>
//	e.g. tenantgraph:usage:{YWNtZQ}:2026-11-29   (tenant "acme")
//
// with five integer fields per tool:
//
//	<tool>|calls    calls
//	<tool>|errors   calls that ended in an error or a tool error
//	<tool>|refused  calls the middleware refused
//	<tool>|rows     rows returned
//	<tool>|us       query time in microseconds
//
// Tool names may contain '|': the counter's name follows the last one. The
// encoded tenant uses only A-Z, a-z, 0-9, '-' and '_', so it is safe in keys
// and SCAN patterns ([Usage.Keys] gives one tenant's pattern; all usage keys
// match "<KeyPrefix>*"), and the braces make it the Redis Cluster hash tag,
// which keeps one tenant's keys on one slot. Each write sets the key to
// expire Retention later.
type Usage struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
	interval  time.Duration
	now       func() time.Time
	log       *slog.Logger
	max       int

	mu       sync.Mutex // guards the fields below
	pending  map[usageKey]*usageCounts
	spare    map[usageKey]*usageCounts // an emptied map to swap in
	dropped  int64                     // events dropped since NewUsage
	unlogged int64                     // events dropped and not yet logged
	closed   bool

	flushMu  sync.Mutex // serialises flushes and erasures; guards the fields below
	failing  bool       // the last flush failed
	lastWarn time.Time  // when a failing flush was last logged

	stop      chan struct{}
	done      chan struct{} // closed when the flush goroutine has ended
	closeOnce sync.Once
}

// usageKey is the entry of one tenant, tool and day (days since the Unix
// epoch, UTC) in memory.
type usageKey struct {
	tenant string
	tool   string
	day    int64
}

// The counters of an entry, in the order of usageFields.
const (
	ucCalls = iota
	ucErrors
	ucRefused
	ucRows
	ucTime // nanoseconds in memory, microseconds in the store
	ucN
)

// usageFields are the hash field suffixes of the counters.
var usageFields = [ucN]string{"calls", "errors", "refused", "rows", "us"}

type usageCounts [ucN]int64

// NewUsage returns a Usage that writes to rdb (a *redis.Client, or a
// *redis.ClusterClient for a cluster) and starts its flush goroutine; call
// [Usage.Close] to stop it. opts may be nil.
func NewUsage(rdb redis.UniversalClient, opts *UsageOptions) *Usage {
	u := &Usage{
		rdb:       rdb,
		prefix:    DefaultUsagePrefix,
		retention: DefaultUsageRetention,
		interval:  DefaultUsageFlushInterval,
		now:       time.Now,
		log:       slog.Default(),
		max:       DefaultUsageMaxPending,
		pending:   make(map[usageKey]*usageCounts),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if opts != nil {
		if opts.KeyPrefix != "" {
			u.prefix = opts.KeyPrefix
		}
		if opts.Retention > 0 {
			u.retention = opts.Retention
		}
		if opts.FlushInterval > 0 {
			u.interval = opts.FlushInterval
		}
		if opts.Now != nil {
			u.now = opts.Now
		}
		if opts.Logger != nil {
			u.log = opts.Logger
		}
		if opts.MaxPending > 0 {
			u.max = opts.MaxPending
		}
	}
	go u.loop()
	return u
}

// loop flushes every interval until Close.
func (u *Usage) loop() {
	defer close(u.done)
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), usageFlushTimeout)
			_ = u.flush(ctx, true)
			cancel()
		}
	}
}

// Audit implements [Auditor]: it counts e for its tenant in memory. Events
// without a tenant are ignored, and so is everything after [Usage.Close].
// It never blocks on the store.
func (u *Usage) Audit(_ context.Context, e *Event) {
	if e == nil || e.Tenant == "" {
		return
	}
	k := usageKey{tenant: e.Tenant, tool: usageTool(e), day: dayOf(u.now())}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	c := u.pending[k]
	if c == nil {
		if len(u.pending) >= u.max {
			u.dropped++
			u.unlogged++
			u.mu.Unlock()
			return
		}
		c = new(usageCounts)
		u.pending[k] = c
	}
	c[ucCalls]++
	switch e.Outcome {
	case OutcomeError, OutcomeToolError:
		c[ucErrors]++
	case OutcomeRefused:
		c[ucRefused]++
	}
	if e.Rows > 0 {
		c[ucRows] += int64(e.Rows)
	}
	if e.Duration > 0 {
		c[ucTime] += int64(e.Duration)
	}
	u.mu.Unlock()
}

// usageTool is the tool name an event is counted under.
func usageTool(e *Event) string {
	if e.Outcome == OutcomeRefused && errors.Is(e.Err, ErrUnknownTool) {
		return UnknownToolName
	}
	tool := e.Tool
	if tool == "" {
		tool = e.Method
	}
	if len(tool) > maxUsageToolName {
		i := maxUsageToolName
		for i > 0 && !utf8.RuneStart(tool[i]) {
			i--
		}
		tool = tool[:i]
	}
	return tool
}

// dayOf returns the UTC day of t, as days since the Unix epoch.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// dayString formats a day as YYYY-MM-DD.
func dayString(day int64) string {
	return time.Unix(day*86400, 0).UTC().Format(time.DateOnly)
}

// encodeTenant encodes a tenant for keys and SCAN patterns: unpadded
// base64url, which is injective and uses no character special to either.
func encodeTenant(tenant string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tenant))
}

// key returns the key of an encoded tenant's day.
func (u *Usage) key(enc string, day int64) string {
	return u.prefix + "{" + enc + "}:" + dayString(day)
}

// Keys returns the SCAN (or KEYS) pattern that matches all of tenant's
// usage keys and no other key of the prefix: another tenant's keys never
// match, whatever characters either tenant's name holds. Characters of
// KeyPrefix that are special in patterns are escaped.
func (u *Usage) Keys(tenant string) string {
	return escapeGlob(u.prefix) + "{" + encodeTenant(tenant) + "}:*"
}

// escapeGlob escapes the characters special in Redis glob patterns.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseKey returns the tenant and the day (midnight UTC) of a usage key of
// this Usage's prefix, as operators find them with SCAN, and false for
// anything else.
func (u *Usage) ParseKey(key string) (tenant string, day time.Time, ok bool) {
	rest, ok := strings.CutPrefix(key, u.prefix+"{")
	if !ok {
		return "", time.Time{}, false
	}
	enc, date, ok := strings.Cut(rest, "}:")
	if !ok {
		return "", time.Time{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(b) == 0 {
		return "", time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, date)
	if err != nil || d.Format(time.DateOnly) != date {
		return "", time.Time{}, false
	}
	return string(b), d, true
}

// Dropped returns the number of events whose counts were dropped (all or in
// part) since NewUsage because more than MaxPending entries waited.
func (u *Usage) Dropped() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dropped
}

// Flush writes the counts gathered in memory now, in one pipelined round
// trip (one per node on a cluster). Counts whose writes failed are kept for the next flush, and
// the error is returned.
func (u *Usage) Flush(ctx context.Context) error {
	return u.flush(ctx, false)
}

// usageOp is one HINCRBY of a flush.
type usageOp struct {
	k   usageKey
	i   int   // counter index
	v   int64 // the counter's value in memory
	cmd *redis.IntCmd
}

// flush writes the pending counts; background flushes log their failures at
// most every usageWarnEvery.
func (u *Usage) flush(ctx context.Context, background bool) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()

	u.mu.Lock()
	batch := u.pending
	dropped := u.unlogged
	u.unlogged = 0
	if len(batch) == 0 {
		batch = nil // still u.pending
	} else {
		u.pending = u.spare
		if u.pending == nil {
			u.pending = make(map[usageKey]*usageCounts, len(batch))
		}
		u.spare = nil
	}
	u.mu.Unlock()
	if dropped > 0 {
		u.log.Error("tenancy: usage counts dropped: too many unflushed entries",
			slog.Int64("events", dropped), slog.Int("max_pending", u.max))
	}
	if len(batch) == 0 {
		return nil
	}

	ops := make([]usageOp, 0, 2*len(batch))
	encoded := make(map[string]string)
	expire := make(map[string]struct{})
	pipe := u.rdb.Pipeline()
	for k, c := range batch {
		enc, ok := encoded[k.tenant]
		if !ok {
			enc = encodeTenant(k.tenant)
			encoded[k.tenant] = enc
		}
		key := u.key(enc, k.day)
		for i, v := range c {
			send := v
			if i == ucTime {
				send = (v + 500) / 1000
			}
			if send == 0 {
				continue
			}
			cmd := pipe.HIncrBy(ctx, key, k.tool+"|"+usageFields[i], send)
			ops = append(ops, usageOp{k: k, i: i, v: v, cmd: cmd})
		}
		if _, ok := expire[key]; !ok {
			expire[key] = struct{}{}
			pipe.Expire(ctx, key, u.retention)
		}
	}
	_, err := pipe.Exec(ctx)
	failed := 0
	if err != nil {
		u.mu.Lock()
		lost := make(map[usageKey]bool)
		for _, op := range ops {
			if op.cmd.Err() == nil || lost[op.k] {
				continue
			}
			failed++
			c := u.pending[op.k]
			if c == nil {
				if len(u.pending) >= u.max {
					lost[op.k] = true
					n := batch[op.k][ucCalls]
					u.dropped += n
					u.unlogged += n
					continue
				}
				c = new(usageCounts)
				u.pending[op.k] = c
			}
			c[op.i] += op.v
		}
		u.mu.Unlock()
	}
	clear(batch)
	u.mu.Lock()
	if u.spare == nil {
		u.spare = batch
	}
	u.mu.Unlock()

	if err != nil {
		err = fmt.Errorf("tenancy: writing usage: %w", err)
		if !background || !u.failing || time.Since(u.lastWarn) >= usageWarnEvery {
			u.log.Warn("tenancy: usage flush failed; the counts are kept for the next one",
				slog.Int("failed_writes", failed), slog.Any("error", err))
			u.lastWarn = time.Now()
		}
		u.failing = true
		return err
	}
	if u.failing {
		u.log.Info("tenancy: usage flush succeeded again")
		u.failing = false
	}
	return nil
}

// Close stops the flush goroutine, waiting for it (or for ctx), and then
// flushes one last time; it returns that flush's error. Audit does nothing
// after Close. Close may be called more than once; later calls only flush.
func (u *Usage) Close(ctx context.Context) error {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.closeOnce.Do(func() { close(u.stop) })
	select {
	case <-u.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return u.Flush(ctx)
}

// Counters are the usage counters of a tool, a day or a period.
type Counters struct {
	Calls       int64   `json:"calls"`       // calls, refused ones included
	Errors      int64   `json:"errors"`      // calls that ended in an error or a tool error
	Refused     int64   `json:"refused"`     // calls refused by the middleware
	Rows        int64   `json:"rows"`        // rows returned, where known
	QueryTimeMs float64 `json:"queryTimeMs"` // time spent in calls, in milliseconds
}

// DayUsage is the usage of one UTC day.
type DayUsage struct {
	Date  string              `json:"date"`  // YYYY-MM-DD (UTC)
	Tools map[string]Counters `json:"tools"` // per tool; empty on a day without calls
	Total Counters            `json:"total"` // all tools
}

// UsageReport is the usage of one tenant over whole UTC days, as
// [Usage.Report] returns it.
type UsageReport struct {
	Tenant string              `json:"tenant"`
	From   string              `json:"from"`  // first day, YYYY-MM-DD (UTC)
	To     string              `json:"to"`    // last day (today), YYYY-MM-DD (UTC)
	Days   []DayUsage          `json:"days"`  // every day from From to To, oldest first
	Tools  map[string]Counters `json:"tools"` // per tool, over all days
	Total  Counters            `json:"total"` // all tools, over all days
}

// MaxReportDays returns the most days a report may cover: Retention in
// whole days, at least 1.
func (u *Usage) MaxReportDays() int {
	return max(int(u.retention/(24*time.Hour)), 1)
}

// Report returns tenant's usage over the last days UTC days, today
// included as the last, from the store in one pipelined round trip. days
// must be between 1 and [Usage.MaxReportDays] ([ErrUsageDays]). The report
// holds what all replicas have flushed: counts up to FlushInterval old may
// be missing; call [Usage.Flush] first to include this replica's.
func (u *Usage) Report(ctx context.Context, tenant string, days int) (*UsageReport, error) {
	if tenant == "" {
		return nil, ErrNoTenant
	}
	if days < 1 || days > u.MaxReportDays() {
		return nil, fmt.Errorf("%w: %d days (1 to %d)", ErrUsageDays, days, u.MaxReportDays())
	}
	enc := encodeTenant(tenant)
	first := dayOf(u.now()) - int64(days-1)
	pipe := u.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, days)
	for i := range cmds {
		cmds[i] = pipe.HGetAll(ctx, u.key(enc, first+int64(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("tenancy: reading usage: %w", err)
	}
	r := &UsageReport{
		Tenant: tenant,
		From:   dayString(first),
		To:     dayString(first + int64(days-1)),
		Days:   make([]DayUsage, days),
		Tools:  make(map[string]Counters),
	}
	var total usageCounts
	tools := make(map[string]*usageCounts)
	for i, cmd := range cmds {
		var dayTotal usageCounts
		dayTools := make(map[string]*usageCounts)
		for f, v := range cmd.Val() {
			sep := strings.LastIndexByte(f, '|')
			if sep < 0 {
				continue
			}
			idx := fieldIndex(f[sep+1:])
			n, err := strconv.ParseInt(v, 10, 64)
			if idx < 0 || err != nil {
				continue
			}
			tool := f[:sep]
			c := dayTools[tool]
			if c == nil {
				c = new(usageCounts)
				dayTools[tool] = c
			}
			c[idx] += n
			t := tools[tool]
			if t == nil {
				t = new(usageCounts)
				tools[tool] = t
			}
			t[idx] += n
			dayTotal[idx] += n
			total[idx] += n
		}
		d := DayUsage{Date: dayString(first + int64(i)), Tools: make(map[string]Counters, len(dayTools)), Total: dayTotal.counters()}
		for tool, c := range dayTools {
			d.Tools[tool] = c.counters()
		}
		r.Days[i] = d
	}
	for tool, c := range tools {
		r.Tools[tool] = c.counters()
	}
	r.Total = total.counters()
	return r, nil
}

// fieldIndex returns the counter index of a field suffix, or -1.
func fieldIndex(name string) int {
	for i, f := range usageFields {
		if f == name {
			return i
		}
	}
	return -1
}

// counters converts stored counts (time in microseconds) to Counters.
func (c *usageCounts) counters() Counters {
	return Counters{
		Calls:       c[ucCalls],
		Errors:      c[ucErrors],
		Refused:     c[ucRefused],
		Rows:        c[ucRows],
		QueryTimeMs: float64(c[ucTime]) / 1000,
	}
}

// Erase deletes all of tenant's usage keys (on every primary of a
// *redis.ClusterClient, every shard of a *redis.Ring) and drops its counts
// not yet flushed by this Usage. Other replicas may still hold counts of the
// tenant for up to their FlushInterval: to erase a tenant for good, stop its
// calls first, or erase again after a flush interval.
func (u *Usage) Erase(ctx context.Context, tenant string) error {
	if tenant == "" {
		return ErrNoTenant
	}
	// No flush runs while the tenant's keys are deleted, so none writes
	// counts taken before the erasure after it.
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.mu.Lock()
	for k := range u.pending {
		if k.tenant == tenant {
			delete(u.pending, k)
		}
	}
	u.mu.Unlock()

	pattern := u.Keys(tenant)
	var err error
	switch c := u.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return deleteMatching(ctx, n, pattern)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return deleteMatching(ctx, n, pattern)
		})
	default:
		err = deleteMatching(ctx, u.rdb, pattern)
	}
	if err != nil {
		return fmt.Errorf("tenancy: erasing usage: %w", err)
	}
	return nil
}

// deleteMatching deletes the keys of one node that match pattern, which
// must hold a hash tag so that a batch of them lives on one slot.
func deleteMatching(ctx context.Context, c redis.Cmdable, pattern string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
