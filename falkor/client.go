package falkor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	falkordb "github.com/FalkorDB/falkordb-go/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for the zero values of [Options].
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultMaxTimeout   = 30 * time.Second
)

// Options configure a [Client]. The zero value is usable: default timeouts,
// no row, length or LOAD CSV guards.
//
// Timeouts and retries are always set from Options; the matching query
// parameters of the URL (read_timeout, max_retries, ...) are ignored.
// go-redis' retries are switched off: a command is never resent after a
// timeout or a broken connection.
type Options struct {
	// DialTimeout bounds connecting to the server. Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds sending one command. Default 5 s.
	WriteTimeout time.Duration
	// MaxTimeout bounds every call: a call waits at most
	// min(context deadline, MaxTimeout) for its reply, and queries pass
	// the same limit to FalkorDB as their TIMEOUT (which FalkorDB applies
	// to read queries; see its TIMEOUT_MAX setting for writes). It is also
	// the read timeout of the connections. Default 30 s.
	//
	// Waiting for a reply ends at a deadline, not at a cancellation: a
	// context canceled without a deadline ends a call before its command is
	// sent, but a command already sent is waited for until its reply or
	// MaxTimeout.
	MaxTimeout time.Duration
	// PoolSize is the maximum number of connections. Default: the URL's
	// pool_size, else go-redis' default (10 per GOMAXPROCS).
	PoolSize int
	// TLSConfig overrides the TLS settings of rediss:// and falkors:// URLs.
	TLSConfig *tls.Config

	// MaxRows caps the rows of a result; a result with more rows is cut to
	// MaxRows and reported with Result.Truncated. The server still produces
	// and sends all rows: combine with MaxTimeout. 0 means no cap.
	MaxRows int
	// MaxQueryLen caps the bytes of a query text including its encoded
	// parameters; longer queries are refused with ErrQueryTooLong before
	// anything is sent. 0 means no cap.
	MaxQueryLen int
	// DenyLoadCSV refuses, with ErrLoadCSVDenied, every query that may use
	// LOAD CSV (which makes the server fetch a URL or read a file). See
	// [MentionsLoadCSV] for the rule. Set it for tenant-facing servers.
	DenyLoadCSV bool

	// Scopes bound the connection pools of scoped database users (see
	// [Client.WithScope]).
	Scopes ScopeOptions

	// Cluster makes Open connect to a Redis Cluster of FalkorDB nodes
	// through go-redis' cluster client: the URL's host is the first seed
	// address and gives the credentials and TLS settings of every node. It
	// is implied when ClusterAddrs is not empty. See "Redis Cluster" in the
	// package documentation.
	Cluster bool
	// ClusterAddrs are further seed addresses ("host:port") of the
	// cluster, tried when the URL's host does not answer.
	ClusterAddrs []string

	// Replicas are the addresses ("host:port") of replicas of the primary
	// named by the URL, reached over TCP with the URL's credentials and TLS
	// settings (with a rediss:// URL and no TLSConfig, each replica's
	// certificate is checked against its own host name). They are used
	// only with ReadFromReplicas, and cannot be combined with Cluster. See
	// "Primary and replicas" in the package documentation.
	Replicas []string
	// ReadFromReplicas sends ROQuery and Schema to the Replicas in turn,
	// falling back to the next replica and then to the primary when one
	// cannot be connected to. Query, DeleteGraph, Explain (a write command
	// for FalkorDB), ListGraphs and scoped calls ([Client.WithScope]) go to
	// the primary. Reads may lag behind writes: replication is
	// asynchronous.
	ReadFromReplicas bool
}

func (o *Options) check() error {
	switch {
	case o.DialTimeout < 0, o.WriteTimeout < 0, o.MaxTimeout < 0:
		return errors.New("falkor: invalid options: negative timeout")
	case o.PoolSize < 0, o.MaxRows < 0, o.MaxQueryLen < 0:
		return errors.New("falkor: invalid options: negative PoolSize, MaxRows or MaxQueryLen")
	}
	if err := o.Scopes.check(); err != nil {
		return err
	}
	if err := o.checkReplicas(); err != nil {
		return err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxTimeout == 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	return nil
}

// Client is a FalkorDB client. It is safe for concurrent use by any number of
// goroutines. Create it with [Open]; Close it when done.
type Client struct {
	db      *falkordb.FalkorDB // its Conn is the go-redis client
	rdb     redis.UniversalClient
	cluster *redis.ClusterClient  // rdb in cluster mode, else nil
	cro     *redis.ClusterOptions // in cluster mode, the settings as given to go-redis
	// replicas take read-only calls with Options.ReadFromReplicas; nil
	// otherwise, in cluster mode and in scoped Clients.
	replicas *replicaSet
	opts     Options
	maxSrv   time.Duration // the server's TIMEOUT_MAX, 0 if unknown or unset
	schemas  schemaCache

	ro      *redis.Options // the settings as given to go-redis, for scoped users' pools
	scopes  *scopeSet      // pools of scoped users; nil in a scoped Client
	scopeOf *scopeSet      // the set a scoped Client belongs to, or nil
}

// Open connects to the FalkorDB server at rawURL and checks it with PING.
//
// URL forms (those of go-redis, plus falkor:// and falkors://):
//
//	redis://[user:password@]host[:port][/db]
//	rediss://...                 TLS
//	falkor://..., falkors://...  the same as redis://, rediss://
//	unix://[user:password@]/path/to/socket[?password=...]
//
// With Options.Cluster or Options.ClusterAddrs, the URL's host is a seed
// of a Redis Cluster (see "Redis Cluster" in the package documentation);
// unix:// URLs and database numbers other than 0 are refused then.
//
// Errors never contain the password or the server address.
func Open(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	ro, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	ro.MaxRetries = -1 // never resend a command that may have run
	ro.ContextTimeoutEnabled = true
	ro.DialTimeout = opts.DialTimeout
	ro.ReadTimeout = opts.MaxTimeout
	ro.WriteTimeout = opts.WriteTimeout
	ro.PoolTimeout = 0 // go-redis default: ReadTimeout + 1 s; the context bounds it too
	if opts.PoolSize > 0 {
		ro.PoolSize = opts.PoolSize
	}
	if opts.TLSConfig != nil {
		ro.TLSConfig = opts.TLSConfig.Clone()
	}
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if opts.Cluster || len(opts.ClusterAddrs) > 0 {
		return openCluster(ctx, ro, opts)
	}

	base := *ro // before NewClient fills in (and changes) its fields
	rdb := redis.NewClient(ro)
	c := &Client{db: &falkordb.FalkorDB{Conn: rdb}, rdb: rdb, opts: opts, ro: &base}
	c.scopes = &scopeSet{admin: c, opts: opts.Scopes, entries: map[string]*scopeEntry{}}
	if err := c.Ping(ctx); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if err := c.readServerConfig(ctx); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if opts.ReadFromReplicas {
		c.replicas = newReplicaSet(&base, opts)
	}
	return c, nil
}

// openCluster connects to a Redis Cluster with the settings ro parsed from
// the URL. go-redis' cluster client resends a command after a network error
// or a timeout as long as MaxRedirects allows, whatever MaxRetries says: it
// is set to -1 (no resend at all), and Client.do follows MOVED itself.
func openCluster(ctx context.Context, ro *redis.Options, opts Options) (*Client, error) {
	if ro.Network == "unix" {
		return nil, errors.New("falkor: invalid URL: a cluster is reached over TCP, not a unix socket")
	}
	if ro.DB != 0 {
		return nil, errors.New("falkor: invalid URL: a cluster has only database 0")
	}
	addrs := []string{ro.Addr}
	for _, a := range opts.ClusterAddrs {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	co := &redis.ClusterOptions{
		Addrs:                    addrs,
		ClientName:               ro.ClientName,
		MaxRedirects:             -1, // no resend after MOVED, ASK or a broken connection
		MaxRetries:               -1,
		Protocol:                 ro.Protocol,
		Username:                 ro.Username,
		Password:                 ro.Password,
		DialTimeout:              ro.DialTimeout,
		ReadTimeout:              ro.ReadTimeout,
		WriteTimeout:             ro.WriteTimeout,
		ContextTimeoutEnabled:    true,
		PoolSize:                 ro.PoolSize,
		MinIdleConns:             ro.MinIdleConns,
		MaxIdleConns:             ro.MaxIdleConns,
		ConnMaxIdleTime:          ro.ConnMaxIdleTime,
		ConnMaxLifetime:          ro.ConnMaxLifetime,
		TLSConfig:                ro.TLSConfig,
		DisableIdentity:          ro.DisableIdentity,
		MaintNotificationsConfig: ro.MaintNotificationsConfig,
	}
	// A node that refuses connections is reported at once (ErrUnavailable)
	// instead of after go-redis' 5 dial attempts with back-off: a failed dial
	// sent nothing, but the caller decides when to try again.
	co.NewClient = func(o *redis.Options) *redis.Client {
		o.DialerRetries = 1
		return redis.NewClient(o)
	}
	base := *co // before NewClusterClient fills in (and changes) its fields
	cc := redis.NewClusterClient(co)
	c := &Client{db: &falkordb.FalkorDB{Conn: cc}, rdb: cc, cluster: cc, cro: &base, opts: opts}
	c.scopes = &scopeSet{admin: c, opts: opts.Scopes, entries: map[string]*scopeEntry{}}
	if err := c.Ping(ctx); err != nil {
		_ = cc.Close()
		return nil, err
	}
	if err := c.readServerConfig(ctx); err != nil {
		_ = cc.Close()
		return nil, err
	}
	return c, nil
}

// maxMoved bounds how often do follows MOVED replies for one call.
const maxMoved = 5

// do sends one command and returns its reply. In cluster mode a MOVED reply
// (the node no longer serves the key's slot and did not run the command)
// makes it reload the slot map and send the command again, at most maxMoved
// times; after a connection failure it reloads the slot map for the next
// call but does not resend (the command may have run).
func (c *Client) do(ctx context.Context, args ...any) (any, error) {
	return c.doKeyAt(ctx, 1, args...)
}

// doKeyAt is do for a command whose key is args[pos] rather than args[1]:
// go-redis' cluster client routes every command it does not know by args[1]
// (GRAPH.MEMORY USAGE <key> would go to the slot of "USAGE").
func (c *Client) doKeyAt(ctx context.Context, pos int8, args ...any) (any, error) {
	send := func() (any, error) {
		cmd := redis.NewCmd(ctx, args...)
		cmd.SetFirstKeyPos(pos)
		_ = c.rdb.Process(ctx, cmd)
		return cmd.Result()
	}
	reply, err := send()
	if c.cluster == nil || err == nil {
		return reply, err
	}
	for i := 0; i < maxMoved && isMoved(err); i++ {
		c.cluster.ReloadState(ctx)
		t := time.NewTimer(time.Duration(10<<i) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		reply, err = send()
	}
	var rerr redis.Error
	if err != nil && (!errors.As(err, &rerr) || isMoved(err) || strings.HasPrefix(err.Error(), "CLUSTERDOWN")) {
		c.cluster.ReloadState(ctx)
	}
	return reply, err
}

// isMoved reports a MOVED reply.
func isMoved(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "MOVED ")
}

// readServerConfig learns the server's TIMEOUT_MAX (a query TIMEOUT above it
// is an error) and checks that the FalkorDB module is loaded. Users whose
// ACL forbids GRAPH.CONFIG simply keep no limit.
func (c *Client) readServerConfig(ctx context.Context) error {
	reply, err := c.rdb.Do(ctx, "GRAPH.CONFIG", "GET", "TIMEOUT_MAX").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			if strings.Contains(strings.ToLower(rerr.Error()), msgUnknownCmd) {
				return errors.New("falkor: the server does not know GRAPH commands: is the FalkorDB module loaded?")
			}
			return nil
		}
		return mapError(ctx, err)
	}
	if pair, ok := reply.([]any); ok && len(pair) == 2 {
		if ms, ok := pair[1].(int64); ok && ms > 0 {
			c.maxSrv = time.Duration(ms) * time.Millisecond
		}
	}
	return nil
}

// parseURL maps falkor:// URLs to redis:// ones and parses them with
// go-redis, keeping passwords and addresses out of error messages.
func parseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL, password included
		}
		return nil, fmt.Errorf("falkor: invalid URL: %v", err)
	}
	switch u.Scheme {
	case "falkor":
		u.Scheme = "redis"
	case "falkors":
		u.Scheme = "rediss"
	case "redis", "rediss", "unix":
	default:
		return nil, errors.New("falkor: invalid URL: the scheme must be redis, rediss, falkor, falkors or unix")
	}
	// unix://...?password=... (and username): accept them as query parameters too.
	var user, pass string
	q := u.Query()
	if q.Has("password") || q.Has("username") {
		user, pass = q.Get("username"), q.Get("password")
		q.Del("username")
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	ro, err := redis.ParseURL(u.String())
	if err != nil {
		// Keep only go-redis' fixed text ("unexpected option", "invalid
		// database number"), not the parts of the URL it quotes.
		msg, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), "redis: "), ":")
		return nil, fmt.Errorf("falkor: invalid URL: %s", msg)
	}
	if pass != "" {
		ro.Password = pass
	}
	if user != "" {
		ro.Username = user
	}
	return ro, nil
}

// Redis returns the underlying go-redis client, for administration and for
// other Redis-protocol stores sharing the connection pool: a
// *redis.ClusterClient in cluster mode, else a *redis.Client. Commands sent
// through it are not retried either (nor redirected, in cluster mode: a
// MOVED reply is returned as an error).
func (c *Client) Redis() redis.UniversalClient { return c.db.Conn }

// Close closes the connections, those of replicas and scoped users
// included (a scoped user's pool still in use closes when its calls end). Calls in flight
// fail; later calls return ErrClosed. Close does nothing on the Client given
// to a [Client.WithScope] function: its pool belongs to the administrator
// Client.
func (c *Client) Close() error {
	if c.scopeOf != nil {
		return nil
	}
	c.scopes.close()
	err := c.rdb.Close()
	if c.replicas != nil {
		err = errors.Join(err, c.replicas.close())
	}
	if err != nil {
		return mapError(context.Background(), err)
	}
	return nil
}

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	return mapError(ctx, c.rdb.Ping(ctx).Err())
}

// bounded applies MaxTimeout to calls that do not pass a TIMEOUT to the
// server (the socket read timeout bounds them as well; this also bounds
// waiting for a pooled connection).
func (c *Client) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.MaxTimeout)
}

// Query runs a Cypher query that may write (GRAPH.QUERY). It creates graph if
// it does not exist. params are referenced in the query as $name; see the
// package documentation for the accepted types.
//
// The query runs at most once: on a timeout or a broken connection a write
// may or may not have run, and Query does not resend it. The one case of a
// second send is a query the server refused without running it because the
// graph's names changed (a schema version mismatch; see Client.Schema).
func (c *Client) Query(ctx context.Context, graph, query string, params map[string]any) (*Result, error) {
	text, err := c.prepare(query, params)
	if err != nil {
		return nil, err
	}
	return c.run(ctx, "GRAPH.QUERY", graph, text, c.opts.MaxRows)
}

// ROQuery runs a read-only Cypher query (GRAPH.RO_QUERY): the server refuses
// any write, which is reported as ErrReadOnly. A missing graph is reported
// as ErrGraphNotFound. With Options.ReadFromReplicas it runs on a replica
// (see "Primary and replicas" in the package documentation).
func (c *Client) ROQuery(ctx context.Context, graph, query string, params map[string]any) (*Result, error) {
	text, err := c.prepare(query, params)
	if err != nil {
		return nil, err
	}
	return c.run(ctx, "GRAPH.RO_QUERY", graph, text, c.opts.MaxRows)
}

// Explain returns the execution plan of query (GRAPH.EXPLAIN) without running
// it, one operation per line, indented by depth. It always asks the primary:
// FalkorDB declares GRAPH.EXPLAIN a write command, which replicas refuse.
func (c *Client) Explain(ctx context.Context, graph, query string, params map[string]any) ([]string, error) {
	text, err := c.prepare(query, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	reply, err := c.do(ctx, "GRAPH.EXPLAIN", graph, text)
	if err != nil {
		return nil, mapError(ctx, err)
	}
	return stringList(reply, "plan")
}

// ListGraphs returns the names of all graphs of the server (GRAPH.LIST).
// In cluster mode it asks every primary and returns the sorted union; if a
// primary does not answer, it fails (with ErrUnavailable for a connection
// failure) rather than return a partial list.
func (c *Client) ListGraphs(ctx context.Context) ([]string, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	if c.cluster != nil {
		return c.listCluster(ctx)
	}
	reply, err := c.rdb.Do(ctx, "GRAPH.LIST").Result()
	if err != nil {
		return nil, mapError(ctx, err)
	}
	return stringList(reply, "graph list")
}

// DeleteGraph deletes graph and all its data (GRAPH.DELETE). It returns an
// error matching ErrGraphNotFound if the graph does not exist.
func (c *Client) DeleteGraph(ctx context.Context, graph string) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	_, err := c.do(ctx, "GRAPH.DELETE", graph)
	c.schemas.forget(graph)
	return mapError(ctx, err)
}

// listCluster merges GRAPH.LIST of every primary.
func (c *Client) listCluster(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	err := c.cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		reply, err := node.Do(ctx, "GRAPH.LIST").Result()
		if err != nil {
			return err
		}
		names, err := stringList(reply, "graph list")
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range names {
			seen[n] = true
		}
		return nil
	})
	if err != nil {
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			c.cluster.ReloadState(ctx)
		}
		if strings.HasPrefix(err.Error(), "falkor: ") {
			return nil, err
		}
		return nil, mapError(ctx, err)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func stringList(reply any, what string) ([]string, error) {
	arr, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("falkor: unexpected %s reply %T", what, reply)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("falkor: unexpected %s entry %T", what, x)
		}
		out[i] = s
	}
	return out, nil
}

// prepare applies the guards and prefixes the encoded parameters.
func (c *Client) prepare(query string, params map[string]any) ([]byte, error) {
	limit := c.opts.MaxQueryLen
	if limit > 0 && len(query) > limit {
		return nil, fmt.Errorf("%w: the query is %d bytes, the limit is %d", ErrQueryTooLong, len(query), limit)
	}
	if c.opts.DenyLoadCSV && MentionsLoadCSV(query) {
		return nil, fmt.Errorf("%w: the query mentions LOAD followed by CSV; pass such words in string values as parameters", ErrLoadCSVDenied)
	}
	size := len(query)
	if len(params) > 0 {
		size += 32 + 16*len(params)
	}
	text, err := appendParams(make([]byte, 0, size), params)
	if err != nil {
		return nil, err
	}
	text = append(text, query...)
	if limit > 0 && len(text) > limit {
		return nil, fmt.Errorf("%w: the query with its parameters is %d bytes, the limit is %d", ErrQueryTooLong, len(text), limit)
	}
	return text, nil
}

// budget returns the TIMEOUT argument for a query: min(context deadline,
// MaxTimeout, server TIMEOUT_MAX) in milliseconds, and whether the context
// deadline is the binding limit.
func (c *Client) budget(ctx context.Context) (ms string, byCtx bool, err error) {
	budget := c.opts.MaxTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left <= budget {
			budget, byCtx = left, true
		}
	}
	if budget <= 0 || ctx.Err() != nil {
		return "", byCtx, timeoutError(ctx)
	}
	if c.maxSrv > 0 && budget > c.maxSrv {
		budget, byCtx = c.maxSrv, false
	}
	return strconv.FormatInt(max(budget.Milliseconds(), 1), 10), byCtx, nil
}

// run sends one query command with the time budget as its TIMEOUT and the
// version of the cached names of graph, and decodes the reply. The socket
// deadline is min(context deadline, MaxTimeout): go-redis
// ContextTimeoutEnabled with ReadTimeout = MaxTimeout.
//
// The command is sent again only after the server refused it unrun for a
// schema version mismatch (see schema.go).
func (c *Client) run(ctx context.Context, cmd, graph string, text []byte, maxRows int) (*Result, error) {
	for attempt := 1; ; attempt++ {
		ms, byCtx, err := c.budget(ctx)
		if err != nil {
			return nil, err
		}
		var gs *graphSchema
		var snap *schemaSnapshot
		var reply any
		if gs = c.schemas.peek(graph); gs != nil {
			snap = gs.snap.Load()
		}
		send := c.do
		if cmd == "GRAPH.RO_QUERY" {
			send = c.doRead // a replica with Options.ReadFromReplicas
		}
		if snap != nil && snap.version != "" && attempt < maxVersionAttempts {
			reply, err = send(ctx, cmd, graph, text, "--compact", "timeout", ms, "version", snap.version)
		} else {
			reply, err = send(ctx, cmd, graph, text, "--compact", "timeout", ms)
		}
		if err != nil {
			return nil, timeoutCause(mapError(ctx, err), byCtx)
		}
		if v, ok := versionMismatch(reply); ok && gs != nil {
			// Not run: the graph's names changed since snap was read.
			current := strconv.FormatInt(v, 10)
			if _, err := gs.refresh(ctx, c, graph, snap, func(s *schemaSnapshot) bool { return s.version == current }); err != nil {
				return nil, err
			}
			continue
		}
		return c.decode(ctx, graph, reply, maxRows, snap)
	}
}

// timeoutCause makes a server-side timeout that the context deadline caused
// (the server was given the remaining time) match context.DeadlineExceeded.
func timeoutCause(err error, byCtx bool) error {
	var qe *QueryError
	if byCtx && errors.As(err, &qe) && qe.Kind == ErrTimeout {
		return newConnError(ErrTimeout, "context deadline exceeded (the server stopped the query)", context.DeadlineExceeded, err)
	}
	return err
}
