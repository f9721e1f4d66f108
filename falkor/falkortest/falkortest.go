package falkortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// Environment variables read by Start.
const (
	// EnvURL names a running FalkorDB to use instead of starting one.
	EnvURL = "FALKORDB_URL"
	// EnvRequired, set to 1, turns "no FalkorDB available" from a skip into a failure.
	EnvRequired = "FALKORDB_REQUIRED"
)

const (
	// startTimeout bounds starting the shared server, including a first download.
	startTimeout = 5 * time.Minute
	// opTimeout bounds a ping and the cleanup of a test's keys.
	opTimeout = 10 * time.Second
)

// DB is a FalkorDB for one test.
type DB struct {
	// URL is the server's address in the form redis.ParseURL (go-redis v9) reads:
	// "redis://:password@127.0.0.1:port", or FALKORDB_URL with falkor:// turned into redis://.
	URL string
	// Network is "tcp" or "unix".
	Network string
	// Addr is "host:port" or a unix socket path.
	Addr string
	// Password is the server's password ("" if none).
	Password string

	ns string
}

// server is the FalkorDB shared by the tests of this binary.
type server struct {
	url, network, addr, password string
	lite                         *lite.Server // nil with FALKORDB_URL
}

var (
	once      sync.Once
	mu        sync.Mutex // guards shared and stopped
	shared    *server
	sharedErr error
	stopped   bool
)

// Start returns a ready FalkorDB for tb and a namespace of graph names unique to it. The
// first call in a test binary connects to FALKORDB_URL or starts a local server; later
// calls share it. Keys in the test's namespace are deleted when the test ends.
//
// Without a FalkorDB, Start skips tb with the reason, or fails it if FALKORDB_REQUIRED=1.
func Start(tb testing.TB) *DB {
	tb.Helper()
	once.Do(func() {
		s, err := setup()
		mu.Lock()
		shared, sharedErr = s, err
		mu.Unlock()
	})
	mu.Lock()
	s, err, done := shared, sharedErr, stopped
	mu.Unlock()
	if err == nil && done {
		err = fmt.Errorf("falkortest: the shared server was stopped by Main")
	}
	if err != nil {
		unavailable(tb, err)
	}
	db := &DB{URL: s.url, Network: s.network, Addr: s.addr, Password: s.password, ns: newNamespace()}
	tb.Cleanup(func() {
		if err := db.cleanup(); err != nil {
			tb.Logf("falkortest: deleting the keys of namespace %s: %v", db.ns, err)
		}
	})
	return db
}

// unavailable skips tb because no FalkorDB could be had, or fails it when
// FALKORDB_REQUIRED=1.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if required() {
		tb.Fatalf("falkortest: no FalkorDB, and %s=1 requires one: %v", EnvRequired, err)
	}
	tb.Skipf("falkortest: no FalkorDB, test skipped (set %s to a running server, or let falkor/lite start one; set %s=1 to fail instead): %v",
		EnvURL, EnvRequired, err)
}

// StartServer starts a FalkorDB server from falkor/lite for tb alone (for
// tests that need a server of their own, such as a primary and its replica)
// and stops it when the test ends. It skips or fails like [StartCluster].
func StartServer(tb testing.TB, opts lite.Options) *lite.Server {
	tb.Helper()
	return startLite(tb, startTimeout, "the server", func(ctx context.Context) (*lite.Server, error) {
		return lite.Start(ctx, opts)
	})
}

// StartReplica starts a FalkorDB server from falkor/lite that replicates
// primary (with primary's password), returns once the replication link is
// up, and stops it when the test ends. It also sets the primary's
// repl-diskless-sync-delay to 0, so that the first sync starts at once. It
// skips or fails like [StartCluster].
func StartReplica(tb testing.TB, primary *lite.Server) *lite.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	pr := redis.NewClient(&redis.Options{Addr: primary.Addr(), Password: primary.Password(), MaxRetries: -1})
	defer pr.Close()
	if err := pr.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		tb.Fatalf("falkortest: configuring the primary: %v", err)
	}
	replica := StartServer(tb, lite.Options{Password: primary.Password()})
	rr := redis.NewClient(&redis.Options{Addr: replica.Addr(), Password: primary.Password(), MaxRetries: -1})
	defer rr.Close()
	host, port, _ := strings.Cut(primary.Addr(), ":")
	if err := rr.ConfigSet(ctx, "masterauth", primary.Password()).Err(); err != nil {
		tb.Fatalf("falkortest: configuring the replica: %v", err)
	}
	if err := rr.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		tb.Fatalf("falkortest: REPLICAOF: %v", err)
	}
	for {
		if s, err := rr.Info(ctx, "replication").Result(); err == nil && strings.Contains(s, "master_link_status:up") {
			return replica
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("falkortest: the replica did not connect to its primary within %v", startTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SlotOwner returns the primary of cl (as started) whose slots hold key,
// asking the cluster through c (CLUSTER KEYSLOT); it fails tb when no
// primary does.
func SlotOwner(tb testing.TB, c redis.UniversalClient, cl *lite.Cluster, key string) *lite.Node {
	tb.Helper()
	slot, err := c.Do(context.Background(), "CLUSTER", "KEYSLOT", key).Int()
	if err != nil {
		tb.Fatalf("falkortest: CLUSTER KEYSLOT %q: %v", key, err)
	}
	for _, p := range cl.Primaries() {
		if slot >= p.Slots[0] && slot <= p.Slots[1] {
			return p
		}
	}
	tb.Fatalf("falkortest: no primary serves slot %d", slot)
	return nil
}

// startFailed skips tb (or fails it with FALKORDB_REQUIRED=1) when err says
// the binaries cannot be had, and fails it otherwise.
func startFailed(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, lite.ErrBinaryNotFound) || errors.Is(err, lite.ErrProvision) || errors.Is(err, lite.ErrUnsupportedPlatform) {
		unavailable(tb, err)
	}
	tb.Fatalf("falkortest: starting FalkorDB: %v", err)
}

// StartCluster starts a FalkorDB Redis Cluster from falkor/lite for tb
// alone (opts as for lite.StartCluster) and stops it when the test ends.
// When the binaries cannot be had it skips tb with the reason, or fails it
// if FALKORDB_REQUIRED=1; any other start error fails tb. FALKORDB_URL is
// not used: a cluster is always local.
func StartCluster(tb testing.TB, opts lite.ClusterOptions) *lite.Cluster {
	tb.Helper()
	return startLite(tb, 2*startTimeout, "the cluster", func(ctx context.Context) (*lite.Cluster, error) {
		return lite.StartCluster(ctx, opts)
	})
}

// startLite runs start with a timeout, skips or fails tb as [StartCluster]
// says when it fails, and closes what it started when the test ends.
func startLite[T interface{ Close() error }](tb testing.TB, timeout time.Duration, what string, start func(context.Context) (T, error)) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := start(ctx)
	if err != nil {
		startFailed(tb, err)
	}
	tb.Cleanup(func() {
		if err := v.Close(); err != nil {
			tb.Errorf("falkortest: stopping %s: %v", what, err)
		}
	})
	return v
}

func required() bool {
	v := strings.TrimSpace(os.Getenv(EnvRequired))
	return v == "1" || strings.EqualFold(v, "true") || strings.EqualFold(v, "yes")
}

// setup connects to FALKORDB_URL or starts a local server.
func setup() (*server, error) {
	if raw := strings.TrimSpace(os.Getenv(EnvURL)); raw != "" {
		return remote(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	ls, err := lite.Start(ctx, lite.Options{})
	if err != nil {
		return nil, err
	}
	return &server{url: ls.URL(), network: ls.Network(), addr: ls.Addr(), password: ls.Password(), lite: ls}, nil
}

// remote checks that the server named by FALKORDB_URL answers.
func remote(raw string) (*server, error) {
	u := raw
	if rest, ok := strings.CutPrefix(u, "falkor://"); ok {
		u = "redis://" + rest
	} else if rest, ok := strings.CutPrefix(u, "falkors://"); ok {
		u = "rediss://" + rest
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("falkortest: %s is not a redis://, rediss://, unix:// or falkor:// URL", EnvURL)
	}
	opt.DialerRetries = 1
	c := newClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("falkortest: the server in %s (%s) does not answer PING: %w", EnvURL, opt.Addr, err)
	}
	return &server{url: u, network: opt.Network, addr: opt.Addr, password: opt.Password}, nil
}

func newClient(opt *redis.Options) *redis.Client {
	opt.MaxRetries = -1
	opt.DialTimeout = opTimeout
	opt.ReadTimeout = opTimeout
	opt.WriteTimeout = opTimeout
	return redis.NewClient(opt)
}

// Main runs the tests and then stops the local server, if one was started; use it as
// TestMain:
//
//	func TestMain(m *testing.M) { falkortest.Main(m) }
//
// Without it the server is killed when the test binary exits (on Linux), but its temp
// directory stays behind.
func Main(m *testing.M) {
	code := m.Run()
	stop()
	os.Exit(code)
}

func stop() {
	mu.Lock()
	defer mu.Unlock()
	stopped = true
	if shared != nil && shared.lite != nil {
		if err := shared.lite.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "falkortest:", err)
		}
	}
}

// newNamespace returns "t" and 16 random hex digits: lower-case ASCII letters and digits
// only, so it is also valid as a tenant id, and unique across test binaries that share a
// server.
func newNamespace() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return "t" + hex.EncodeToString(b[:])
}

// Namespace returns the test's own prefix: lower-case ASCII letters and digits, starting
// with a letter.
func (db *DB) Namespace() string { return db.ns }

// Graph returns a graph name unique to this test: Namespace() + "_" + name.
func (db *DB) Graph(name string) string { return db.ns + "_" + name }

// Redis returns a go-redis client for the server (no retries), closed when tb ends.
func (db *DB) Redis(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(db.URL)
	if err != nil {
		tb.Fatalf("falkortest: %v", err)
	}
	c := newClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// cleanup deletes every key of the test's namespace (graphs included).
func (db *DB) cleanup() error {
	opt, err := redis.ParseURL(db.URL)
	if err != nil {
		return err
	}
	c := newClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	iter := c.Scan(ctx, 0, db.ns+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return c.Del(ctx, keys...).Err()
}
