package falkor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	falkordb "github.com/FalkorDB/falkordb-go/v2"
	"github.com/redis/go-redis/v9"
)

// Scoped database users: the database itself confines a caller to its keys.
//
// A Client opened with an administrator's credentials can run calls as a
// restricted Redis ACL user instead ([Client.WithScope]): it creates or
// updates the user from its own connection, with a random password it keeps
// in memory, and keeps a small pool of connections per user. A user may run
// only the commands of [ScopeCommands] and only on keys matching its
// pattern; anything else fails with the database's NOPERM error, reported as
// [ErrPermission]. GRAPH.LIST, GRAPH.INFO, GRAPH.CONFIG, GRAPH.UDF and the
// rest of the server stay with the administrator.

// ScopeCommands are the commands a scoped user may run, as ACL rules: the
// four key-bound graph commands the Client uses, and what a connection needs
// to start. Everything else, including GRAPH.LIST, GRAPH.INFO,
// GRAPH.CONFIG, GRAPH.UDF, GRAPH.PROFILE, GRAPH.COPY and every Redis data
// command, is refused to the user by the database.
var ScopeCommands = []string{"+hello", "+ping", "+graph.query", "+graph.ro_query", "+graph.explain", "+graph.delete"}

// Errors of scoped users. Test with [errors.Is].
var (
	// ErrPermission reports that the database refused a command for lack of
	// permission (NOPERM): a scoped user reaching outside its key pattern or
	// running a command outside [ScopeCommands], or an administrator
	// connection without the rights to manage ACL users.
	ErrPermission = errors.New("falkor: permission denied by the database (NOPERM)")

	// ErrInvalidScope reports a [Scope] that cannot be used: a user name or
	// key pattern with characters outside the allowed sets, a pattern that
	// is not a literal prefix, or a user that is reserved or already bound
	// to another pattern.
	ErrInvalidScope = errors.New("falkor: invalid scope")
)

// Scope is a restricted database user and the keys it may reach.
type Scope struct {
	// User is the ACL user name: 1 to 128 ASCII letters, digits and
	// "-_.:@+". The Client owns the user: its key patterns and commands are
	// overwritten (passwords of other clients are kept, so several
	// processes may share a user). "default" and the administrator's own
	// user are refused.
	User string
	// KeyPattern is the keys the user may read and write: a literal key, or
	// a literal prefix followed by one '*' ("acme_*"). The literal part is
	// 1 to 512 bytes without whitespace, control characters or the glob
	// characters *?[]\, so the pattern means exactly what it says.
	KeyPattern string
}

// ScopeOptions bound the connections kept for scoped users. The zero value
// is usable.
type ScopeOptions struct {
	// MaxUsers is the number of users whose connection pools are kept
	// open; the least recently used idle pool is closed beyond it. Default
	// 64. Pools busy with calls are never closed, so more may be open for a
	// moment.
	MaxUsers int
	// PoolSize is the maximum number of connections per user. Default 4.
	PoolSize int
	// IdleTimeout closes a user's pool unused for this long. Default 2 min.
	IdleTimeout time.Duration
}

const (
	defaultScopeUsers   = 64
	defaultScopePool    = 4
	defaultScopeIdle    = 2 * time.Minute
	maxScopeUserLen     = 128
	maxScopeLiteralLen  = 512
	scopeAdminCallLimit = 5 * time.Second
)

func (o *ScopeOptions) check() error {
	if o.MaxUsers < 0 || o.PoolSize < 0 || o.IdleTimeout < 0 {
		return errors.New("falkor: invalid options: negative ScopeOptions value")
	}
	if o.MaxUsers == 0 {
		o.MaxUsers = defaultScopeUsers
	}
	if o.PoolSize == 0 {
		o.PoolSize = defaultScopePool
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultScopeIdle
	}
	return nil
}

// validate checks the user name and pattern.
func (s Scope) validate() error {
	if err := validateUser(s.User); err != nil {
		return err
	}
	lit := strings.TrimSuffix(s.KeyPattern, "*")
	if lit == "" || len(lit) > maxScopeLiteralLen {
		return fmt.Errorf("%w: the key pattern must be a literal of 1 to %d bytes, optionally followed by '*'", ErrInvalidScope, maxScopeLiteralLen)
	}
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`*?[]\`, c) >= 0 {
			return fmt.Errorf("%w: the key pattern may end in '*' but must hold no other glob character (*?[]\\), whitespace or control character", ErrInvalidScope)
		}
	}
	return nil
}

// validateUser checks a scoped user's name: its characters, and that it is
// not "default".
func validateUser(user string) error {
	if user == "" || len(user) > maxScopeUserLen {
		return fmt.Errorf("%w: the user name must be 1 to %d bytes", ErrInvalidScope, maxScopeUserLen)
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:@+", c) >= 0) {
			return fmt.Errorf("%w: the user name may hold only ASCII letters, digits and -_.:@+", ErrInvalidScope)
		}
	}
	if user == "default" {
		return fmt.Errorf("%w: the user %q is reserved", ErrInvalidScope, user)
	}
	return nil
}

// aclRules are the arguments of ACL SETUSER that give s's user its rights
// and adds password: keys and commands are reset, other passwords kept.
func (s Scope) aclRules(password string) []any {
	args := []any{"ACL", "SETUSER", s.User, "on", ">" + password, "clearselectors",
		"resetkeys", "~" + s.KeyPattern, "resetchannels", "-@all"}
	for _, c := range ScopeCommands {
		args = append(args, c)
	}
	return args
}

// scopeSet is an administrator Client's pools of scoped clients.
type scopeSet struct {
	admin *Client
	opts  ScopeOptions

	mu        sync.Mutex
	entries   map[string]*scopeEntry // by user
	closed    bool
	timer     *time.Timer // sweeps idle pools; nil when none is armed
	adminUser string      // the administrator's own user, once known
}

type scopeEntry struct {
	scope    Scope
	ready    chan struct{} // closed when c or err is set
	c        *Client
	err      error
	password string
	users    int       // calls using c
	last     time.Time // when the last call ended
	gone     bool      // removed from the set: close c when users drops to 0
	dropped  bool      // the user was deleted (DropScope): closing must not touch it
}

// WithScope runs f with a Client that acts as the restricted database user
// of s (f runs a second time, with the user set up again, when the server
// refused the user's password before f's failing command was sent: keep f
// to one command, or safe to repeat): the database refuses, with NOPERM ([ErrPermission]), every key
// outside s.KeyPattern and every command outside [ScopeCommands]. The Client
// given to f is valid only while f runs; it shares c's Options (its pool
// size is ScopeOptions.PoolSize) and must not be closed.
//
// c must be an administrator connection: the first call for a user runs
// ACL SETUSER to create or update it, with a fresh random password kept in
// memory (and removed from the user when its pool is closed). Calls fail
// with ErrInvalidScope for a bad Scope, with ErrPermission when c may not
// manage ACL users (see [Client.CheckScopes]), with ErrClosed once c
// is closed. In cluster mode the user is set up on every node (replicas
// included), and setting it up fails while a node does not answer.
// With Options.ReadFromReplicas (not a cluster) the user exists on the
// primary only, and the scoped Client sends every call, reads included, to
// the primary.
func (c *Client) WithScope(ctx context.Context, s Scope, f func(*Client) error) error {
	if c.scopes == nil {
		return fmt.Errorf("%w: this client is itself scoped", ErrInvalidScope)
	}

	if err := s.validate(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		e, err := c.scopes.acquire(ctx, s)
		if err != nil {
			return err
		}
		err = f(e.c)
		if staleScope(err) {
			c.scopes.invalidate(e)
		}
		c.scopes.release(e)
		// The server refused the user's password when a connection was
		// opened, before the command was sent: another process deleted or
		// changed the user (an erasure, a restart). Set it up again and
		// run f once more.
		if attempt == 1 && authRefused(err) {
			continue
		}
		return err
	}
}

// authRefused reports whether err is the server refusing a connection's
// credentials, which happens before any command is sent.
func authRefused(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && (strings.HasPrefix(qe.Message, "WRONGPASS") || strings.HasPrefix(qe.Message, "NOAUTH"))
}

// adminDo runs an administrator command on the server or, in cluster mode,
// on every node, replicas included (ACL users are neither replicated nor
// shared between nodes; a replica needs them once it takes over). In
// cluster mode it fails if any node does not answer.
func (ss *scopeSet) adminDo(ctx context.Context, args ...any) error {
	if cc := ss.admin.cluster; cc != nil {
		return cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return n.Do(ctx, args...).Err()
		})
	}
	return ss.admin.rdb.Do(ctx, args...).Err()
}

// staleScope reports whether err suggests that the user's pool is no longer
// usable as it is: the connection broke (the server may have restarted
// without the user) or the server no longer accepts the user's password.
// The next call then sets the user up again.
func staleScope(err error) bool {
	return errors.Is(err, ErrUnavailable) || authRefused(err)
}

// invalidate removes e from the set; it closes when its calls end.
func (ss *scopeSet) invalidate(e *scopeEntry) {
	ss.mu.Lock()
	if ss.entries[e.scope.User] == e {
		delete(ss.entries, e.scope.User)
		e.gone = true
	}
	ss.mu.Unlock()
}

// CheckScopes reports whether c may manage scoped users: nil when its user
// may run ACL SETUSER (checked with ACL DRYRUN, which changes nothing),
// an error matching ErrPermission when the server refuses, and the
// connection's error when the server cannot be reached.
func (c *Client) CheckScopes(ctx context.Context) error {
	if c.scopes == nil {
		return fmt.Errorf("%w: this client is itself scoped", ErrInvalidScope)
	}

	ctx, cancel := c.bounded(ctx)
	defer cancel()
	who, err := c.scopes.whoami(ctx)
	if err != nil {
		return err
	}
	reply, err := c.rdb.Do(ctx, "ACL", "DRYRUN", who, "ACL", "SETUSER", "tenantgraph-probe").Result()
	if err != nil {
		return scopeAdminError(ctx, err)
	}
	if s, ok := reply.(string); !ok || s != "OK" {
		return fmt.Errorf("%w: the connection's user may not run ACL SETUSER", ErrPermission)
	}
	return nil
}

// scopeAdminError maps errors of the administrator's ACL commands: any
// refusal by the server is a lack of rights.
func scopeAdminError(ctx context.Context, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return fmt.Errorf("%w: the connection's user may not manage ACL users (%s)", ErrPermission, firstWord(rerr.Error()))
	}
	return mapError(ctx, err)
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// whoami returns the administrator's user name, asking the server once.
func (ss *scopeSet) whoami(ctx context.Context) (string, error) {
	ss.mu.Lock()
	who := ss.adminUser
	ss.mu.Unlock()
	if who != "" {
		return who, nil
	}
	reply, err := ss.admin.rdb.Do(ctx, "ACL", "WHOAMI").Result()
	if err != nil {
		return "", scopeAdminError(ctx, err)
	}
	who, _ = reply.(string)
	if who == "" {
		return "", fmt.Errorf("falkor: unexpected ACL WHOAMI reply %T", reply)
	}
	ss.mu.Lock()
	ss.adminUser = who
	ss.mu.Unlock()
	return who, nil
}

// acquire returns the ready pool of s's user, creating it if needed; the
// caller must release it.
func (ss *scopeSet) acquire(ctx context.Context, s Scope) (*scopeEntry, error) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil, newConnError(ErrClosed, "")
	}
	if s.User == ss.adminUser {
		ss.mu.Unlock()
		return nil, fmt.Errorf("%w: the user is the administrator's own", ErrInvalidScope)
	}
	e := ss.entries[s.User]
	if e != nil && e.scope != s {
		ss.mu.Unlock()
		return nil, fmt.Errorf("%w: the user is in use with another key pattern", ErrInvalidScope)
	}
	created := e == nil
	if created {
		e = &scopeEntry{scope: s, ready: make(chan struct{})}
		ss.entries[s.User] = e
	}
	e.users++
	victims := ss.evictLocked(time.Now())
	ss.mu.Unlock()
	closeEntries(victims)

	if created {
		c, password, err := ss.open(ctx, s)
		ss.mu.Lock()
		e.c, e.password, e.err = c, password, err
		if err != nil {
			if ss.entries[s.User] == e {
				delete(ss.entries, s.User) // errors are not cached
			}
			e.gone = true
		}
		ss.mu.Unlock()
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			ss.release(e)
			return nil, timeoutError(ctx)
		}
	}
	if e.err != nil {
		ss.release(e)
		return nil, e.err
	}
	return e, nil
}

// release ends one call's use of e.
func (ss *scopeSet) release(e *scopeEntry) {
	ss.mu.Lock()
	e.users--
	e.last = time.Now()
	var victims []*scopeEntry
	if e.users == 0 && e.gone {
		victims = append(victims, e)
	}
	if e.users == 0 && !e.gone && !ss.closed {
		if len(ss.entries) > ss.opts.MaxUsers {
			victims = append(victims, ss.evictLocked(e.last)...)
		}
		if ss.timer == nil {
			ss.timer = time.AfterFunc(ss.opts.IdleTimeout, ss.sweep)
		}
	}
	ss.mu.Unlock()
	closeEntries(victims)
}

// evictLocked removes pools idle for IdleTimeout, then the least recently
// used idle pools beyond MaxUsers, and returns those to close.
func (ss *scopeSet) evictLocked(now time.Time) []*scopeEntry {
	var victims []*scopeEntry
	remove := func(e *scopeEntry) {
		delete(ss.entries, e.scope.User)
		e.gone = true
		victims = append(victims, e)
	}
	for _, e := range ss.entries {
		if e.users == 0 && e.c != nil && now.Sub(e.last) >= ss.opts.IdleTimeout {
			remove(e)
		}
	}
	for len(ss.entries) > ss.opts.MaxUsers {
		var lru *scopeEntry
		for _, e := range ss.entries {
			if e.users == 0 && e.c != nil && (lru == nil || e.last.Before(lru.last)) {
				lru = e
			}
		}
		if lru == nil {
			break // all busy: they are closed once idle
		}
		remove(lru)
	}
	return victims
}

// sweep runs from the idle timer: it closes idle pools and arms the timer
// again while idle pools remain.
func (ss *scopeSet) sweep() {
	ss.mu.Lock()
	ss.timer = nil
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	now := time.Now()
	victims := ss.evictLocked(now)
	var next time.Duration
	for _, e := range ss.entries {
		if e.users == 0 && e.c != nil {
			if d := ss.opts.IdleTimeout - now.Sub(e.last); next == 0 || d < next {
				next = max(d, time.Millisecond)
			}
		}
	}
	if next > 0 {
		ss.timer = time.AfterFunc(next, ss.sweep)
	}
	ss.mu.Unlock()
	closeEntries(victims)
}

// closeEntries closes the pools of entries that were removed from the set
// and that no call uses any more, and removes their passwords from their
// users (best effort: a password left behind is useless without the
// memory of this process), unless [Client.DropScope] deleted the user.
func closeEntries(es []*scopeEntry) {
	for _, e := range es {
		if e.c == nil {
			continue
		}
		e.c.rdb.Close()
		if e.dropped {
			continue // ACL SETUSER would create the deleted user again
		}
		ctx, cancel := context.WithTimeout(context.Background(), scopeAdminCallLimit)
		e.c.scopeOf.adminDo(ctx, "ACL", "SETUSER", e.scope.User, "<"+e.password)
		cancel()
	}
}

// close closes every pool not in use (the others close on release) and
// removes this client's passwords from their users.
func (ss *scopeSet) close() {
	ss.mu.Lock()
	ss.closed = true
	if ss.timer != nil {
		ss.timer.Stop()
		ss.timer = nil
	}
	var victims []*scopeEntry
	for _, e := range ss.entries {
		e.gone = true
		if e.users == 0 {
			victims = append(victims, e) // the others close on release
		}
	}
	clear(ss.entries)
	ss.mu.Unlock()
	closeEntries(victims)
}

// open creates or updates s's user with a new password and connects as it.
func (ss *scopeSet) open(ctx context.Context, s Scope) (*Client, string, error) {
	ctx, cancel := context.WithTimeout(ctx, min(ss.admin.opts.MaxTimeout, scopeAdminCallLimit+ss.admin.opts.DialTimeout))
	defer cancel()
	who, err := ss.whoami(ctx)
	if err != nil {
		return nil, "", err
	}
	if who == s.User {
		return nil, "", fmt.Errorf("%w: the user is the administrator's own", ErrInvalidScope)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	password := hex.EncodeToString(secret)
	if err := ss.adminDo(ctx, s.aclRules(password)...); err != nil {
		return nil, "", scopeAdminError(ctx, err)
	}
	opts := ss.admin.opts
	opts.PoolSize = ss.opts.PoolSize
	var rdb redis.UniversalClient
	var cluster *redis.ClusterClient
	if admin := ss.admin.cluster; admin != nil {
		co := *ss.admin.cro // as given to go-redis: no resends, MOVED followed by Client.do
		co.Username, co.Password = s.User, password
		co.CredentialsProvider, co.CredentialsProviderContext, co.StreamingCredentialsProvider = nil, nil, nil
		co.DisableIdentity = true
		co.PoolSize = ss.opts.PoolSize // per node
		co.MinIdleConns, co.MaxIdleConns = 0, ss.opts.PoolSize
		co.ConnMaxIdleTime = ss.opts.IdleTimeout
		if co.TLSConfig != nil {
			co.TLSConfig = co.TLSConfig.Clone()
		}
		// CLUSTER SLOTS is not among ScopeCommands: the administrator reads
		// the slot map for the scoped user.
		co.ClusterSlots = func(ctx context.Context) ([]redis.ClusterSlot, error) {
			return admin.ClusterSlots(ctx).Result()
		}
		cluster = redis.NewClusterClient(&co)
		rdb = cluster
	} else {
		ro := *ss.admin.ro // as given to go-redis: MaxRetries -1 (no retries) and all
		ro.Username, ro.Password = s.User, password
		ro.CredentialsProvider, ro.CredentialsProviderContext, ro.StreamingCredentialsProvider = nil, nil, nil
		ro.DisableIdentity = true // no CLIENT SETINFO: not among ScopeCommands
		ro.PoolSize = ss.opts.PoolSize
		ro.MinIdleConns, ro.MaxIdleConns = 0, ss.opts.PoolSize
		ro.ConnMaxIdleTime = ss.opts.IdleTimeout
		if ro.TLSConfig != nil {
			ro.TLSConfig = ro.TLSConfig.Clone()
		}
		rdb = redis.NewClient(&ro)
	}
	sc := &Client{db: &falkordb.FalkorDB{Conn: rdb}, rdb: rdb, cluster: cluster, opts: opts, maxSrv: ss.admin.maxSrv, scopeOf: ss}
	if err := sc.Ping(ctx); err != nil {
		rdb.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), scopeAdminCallLimit)
		ss.adminDo(cctx, "ACL", "SETUSER", s.User, "<"+password)
		ccancel()
		return nil, "", fmt.Errorf("falkor: connecting as the scoped user: %w", err)
	}
	return sc, password, nil
}
