package falkortest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor/falkortest"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// helperEnv makes TestHelper run in a re-executed test binary.
const helperEnv = "FALKORTEST_HELPER"

func TestMain(m *testing.M) { falkortest.Main(m) }

func TestStart(t *testing.T) {
	db := falkortest.Start(t)
	require.Regexp(t, `^[a-z][a-z0-9]+$`, db.Namespace())
	require.Equal(t, db.Namespace()+"_movies", db.Graph("movies"))
	require.Contains(t, []string{"tcp", "unix"}, db.Network)
	require.NotEmpty(t, db.Addr)

	ctx := context.Background()
	rdb := db.Redis(t)
	require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", db.Graph("movies"), "CREATE (:Movie {title: 'Heat'})").Err())
	n, err := rdb.Do(ctx, "GRAPH.RO_QUERY", db.Graph("movies"), "MATCH (m:Movie) RETURN count(m)").Slice()
	require.NoError(t, err)
	require.Equal(t, int64(1), n[1].([]any)[0].([]any)[0])

	other := falkortest.Start(t)
	require.NotEqual(t, db.Namespace(), other.Namespace(), "each Start gets its own namespace")
	require.Equal(t, db.Addr, other.Addr, "one server per test binary")
}

func TestCleanupDeletesNamespace(t *testing.T) {
	outer := falkortest.Start(t)
	ctx := context.Background()
	rdb := outer.Redis(t)
	var graph, plainKey string
	t.Run("inner", func(t *testing.T) {
		db := falkortest.Start(t)
		graph, plainKey = db.Graph("g"), db.Namespace()+":counter"
		c := db.Redis(t)
		require.NoError(t, c.Do(ctx, "GRAPH.QUERY", graph, "CREATE (:N)").Err())
		require.NoError(t, c.Incr(ctx, plainKey).Err())
	})
	require.NoError(t, rdb.Do(ctx, "GRAPH.QUERY", outer.Graph("keep"), "CREATE (:N)").Err())
	n, err := rdb.Exists(ctx, graph, plainKey, outer.Graph("keep")).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the inner test's keys are gone, the outer test's graph is not")
}

// TestHelper runs only in a re-executed test binary: it starts a DB and reports it.
func TestHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for the subprocess tests")
	}
	db := falkortest.Start(t)
	rdb := db.Redis(t)
	ctx := context.Background()
	info, err := rdb.Info(ctx, "server").Result()
	require.NoError(t, err)
	dir, err := rdb.ConfigGet(ctx, "dir").Result()
	require.NoError(t, err)
	pid := regexp.MustCompile(`process_id:(\d+)`).FindStringSubmatch(info)
	require.NotNil(t, pid)
	fmt.Printf("HELPER addr=%s pid=%s dir=%s\n", db.Addr, pid[1], dir["dir"])
}

// runHelper re-executes the test binary to run TestHelper with env on top of a clean
// environment (no FalkorDB variables inherited; later entries of env win), and returns
// its output and exit error.
func runHelper(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelper$", "-test.v")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FALKORDB_") && !strings.HasPrefix(kv, helperEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helperEnv+"=1", "GORACE=atexit_sleep_ms=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	return port
}

func TestSkipOrFailWithoutFalkorDB(t *testing.T) {
	home := t.TempDir()
	noBinaries := map[string]string{
		"FALKORDB_NO_PROVISION": "1",
		"FALKORDB_REDIS_SERVER": "/nonexistent/redis-server",
		"FALKORDB_MODULE":       "/nonexistent/falkordb.so",
		"XDG_CACHE_HOME":        home,
		"HOME":                  home,
	}
	emptyCache := map[string]string{"FALKORDB_NO_PROVISION": "1", "XDG_CACHE_HOME": home, "HOME": home}
	deadURL := map[string]string{"FALKORDB_URL": "redis://:secret-pw@127.0.0.1:" + closedPort(t)}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for kk, vv := range m {
			out[kk] = vv
		}
		return out
	}
	tests := []struct {
		name   string
		env    map[string]string
		fail   bool
		reason string
	}{
		{"missing binary skips", noBinaries, false, "/nonexistent/redis-server"},
		{"missing binary fails when required", with(noBinaries, "FALKORDB_REQUIRED", "1"), true, "/nonexistent/redis-server"},
		{"empty cache without provisioning skips", emptyCache, false, "provisioning is disabled"},
		{"empty cache fails when required", with(emptyCache, "FALKORDB_REQUIRED", "1"), true, filepath.Join(home, "tenantgraph")},
		{"unreachable FALKORDB_URL skips", deadURL, false, "does not answer PING"},
		{"unreachable FALKORDB_URL fails when required", with(deadURL, "FALKORDB_REQUIRED", "1"), true, "FALKORDB_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelper(t, tc.env)
			if tc.fail {
				require.Error(t, err, out)
				require.Contains(t, out, "--- FAIL: TestHelper", out)
				require.Contains(t, out, "FALKORDB_REQUIRED=1 requires one")
			} else {
				require.NoError(t, err, out)
				require.Contains(t, out, "--- SKIP: TestHelper", out)
				require.Contains(t, out, "set FALKORDB_REQUIRED=1 to fail instead")
			}
			require.Contains(t, out, tc.reason)
			require.NotContains(t, out, "secret-pw", "the URL's password must not be printed")
			require.NotContains(t, out, "HELPER addr=")
		})
	}
}

// helperReport parses TestHelper's report.
func helperReport(t *testing.T, out string) (addr string, pid int, dir string) {
	t.Helper()
	m := regexp.MustCompile(`HELPER addr=(\S+) pid=(\d+) dir=(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	pid, err := strconv.Atoi(m[2])
	require.NoError(t, err)
	return m[1], pid, m[3]
}

func TestUsesFalkorDBURL(t *testing.T) {
	db := falkortest.Start(t)
	for _, url := range []string{db.URL, strings.Replace(db.URL, "redis://", "falkor://", 1)} {
		out, err := runHelper(t, map[string]string{
			"FALKORDB_URL":          url,
			"FALKORDB_REQUIRED":     "1",
			"FALKORDB_NO_PROVISION": "1",
			"FALKORDB_REDIS_SERVER": "/nonexistent/redis-server", // starting a server would fail
		})
		require.NoError(t, err, out)
		addr, _, _ := helperReport(t, out)
		require.Equal(t, db.Addr, addr)
	}
}

func TestMainStopsLocalServer(t *testing.T) {
	falkortest.Start(t) // skip here too when there is no FalkorDB
	out, err := runHelper(t, map[string]string{"FALKORDB_REQUIRED": "1"})
	require.NoError(t, err, out)
	_, pid, dir := helperReport(t, out)
	// Main has returned: the server is gone and so is its temp dir.
	require.False(t, processRunning(pid), "server pid %d still running after Main", pid)
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "server dir %s left behind", dir)
}

// TestStartReplica: the replica is connected when StartReplica returns and
// receives the primary's writes.
func TestStartReplica(t *testing.T) {
	primary := falkortest.StartServer(t, lite.Options{Password: "replica test"})
	replica := falkortest.StartReplica(t, primary)
	ctx := context.Background()
	rr := redis.NewClient(&redis.Options{Addr: replica.Addr(), Password: "replica test", MaxRetries: -1})
	defer rr.Close()
	info, err := rr.Info(ctx, "replication").Result()
	require.NoError(t, err)
	require.Contains(t, info, "role:slave")
	require.Contains(t, info, "master_link_status:up")

	pr := redis.NewClient(&redis.Options{Addr: primary.Addr(), Password: "replica test", MaxRetries: -1})
	defer pr.Close()
	require.NoError(t, pr.Do(ctx, "GRAPH.QUERY", "g", "CREATE (:N {v: 7})").Err())
	require.NoError(t, pr.Do(ctx, "WAIT", 1, 5000).Err())
	res, err := rr.Do(ctx, "GRAPH.RO_QUERY", "g", "MATCH (n:N) RETURN n.v").Slice()
	require.NoError(t, err)
	require.Equal(t, []any{[]any{int64(7)}}, res[1], "the replica has the primary's write")
}

// TestSlotOwner: the primary SlotOwner names is the one that holds the key.
func TestSlotOwner(t *testing.T) {
	cl := falkortest.StartCluster(t, lite.ClusterOptions{Options: lite.Options{Password: "slots"}, Primaries: 3})
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Password: "slots", MaxRetries: -1})
	defer cc.Close()
	for _, key := range []string{"a", "b", "{user}1", "tenant_graph"} {
		require.NoError(t, cc.Set(ctx, key, "x", 0).Err())
		p := falkortest.SlotOwner(t, cc, cl, key)
		direct := redis.NewClient(&redis.Options{Addr: p.Addr(), Password: "slots", MaxRetries: -1})
		n, err := direct.Exists(ctx, key).Result()
		direct.Close()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "%s is on the primary SlotOwner named", key)
	}
}
