//go:build unix

package lite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// client connects to url (as redis.ParseURL reads it) and closes at cleanup.
func client(t *testing.T, rawURL string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(rawURL)
	require.NoError(t, err)
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// processGone reports whether pid no longer exists (reaped) or is a zombie.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// Field 3, after the parenthesised command name, is the state.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return true
		}
	}
	return false
}

func TestStartTCP(t *testing.T) {
	b := testBinaries(t)
	ctx := context.Background()
	s, err := Start(ctx, Options{RedisServer: b.RedisServer, Module: b.Module})
	require.NoError(t, err)
	pid, dir := s.proc.cmd.Process.Pid, s.dir

	require.Equal(t, "tcp", s.Network())
	host, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NotEqual(t, "0", port)
	require.Equal(t, "redis://"+s.Addr(), s.URL())
	require.Empty(t, s.Password())

	c := client(t, s.URL())
	require.NoError(t, c.Do(ctx, "GRAPH.QUERY", "g", "CREATE (:N {v: 1})").Err())
	graphs, err := c.Do(ctx, "GRAPH.LIST").StringSlice()
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, graphs, "the readiness probe must not leave its graph behind")
	// Safe defaults are in force.
	for k, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1", "protected-mode": "yes"} {
		got, err := c.ConfigGet(ctx, k).Result()
		require.NoError(t, err)
		require.Equal(t, want, got[k], k)
	}
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())

	require.NoError(t, s.Close())
	require.True(t, processGone(pid), "server process still there after Close")
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, fs.ErrNotExist, "temp dir not removed")
	require.Error(t, c.Ping(ctx).Err())
	require.NoError(t, s.Close(), "second Close")
}

func TestStartUnixSocket(t *testing.T) {
	s := startServer(t, Options{UnixSocket: true})
	require.Equal(t, "unix", s.Network())
	require.Less(t, len(s.Addr()), maxSocketPath)
	require.Equal(t, "unix://"+s.Addr(), s.URL())

	fi, err := os.Stat(filepath.Dir(s.Addr()))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "socket dir")
	fi, err = os.Stat(s.Addr())
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&fs.ModeSocket)
	require.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "socket")

	ctx := context.Background()
	c := client(t, s.URL())
	require.NoError(t, c.Do(ctx, "GRAPH.QUERY", "g", "RETURN 1").Err())
	port, err := c.ConfigGet(ctx, "port").Result()
	require.NoError(t, err)
	require.Equal(t, "0", port["port"], "no TCP listener with a unix socket")
}

func TestPassword(t *testing.T) {
	tests := []struct{ name, password string }{
		{"plain", "s3cret"},
		{"quotes, spaces, backslash, unicode, newline", "a \"b\" \\c ü 🔑\nd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, unix := range []bool{false, true} {
				s := startServer(t, Options{Password: tc.password, UnixSocket: unix})
				require.Equal(t, tc.password, s.Password())
				ctx := context.Background()

				anon := redis.NewClient(&redis.Options{Network: s.Network(), Addr: s.Addr(), MaxRetries: -1, Protocol: 2})
				err := anon.Ping(ctx).Err()
				_ = anon.Close()
				require.ErrorContains(t, err, "NOAUTH")

				c := client(t, s.URL())
				require.NoError(t, c.Ping(ctx).Err())
				require.NoError(t, c.Do(ctx, "GRAPH.QUERY", "g", "RETURN 1").Err())

				// The secret is in a private file, not on the command line.
				conf, err := os.Stat(filepath.Join(s.dir, "redis.conf"))
				require.NoError(t, err)
				require.Equal(t, fs.FileMode(0o600), conf.Mode().Perm())
				if runtime.GOOS == "linux" {
					cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.proc.cmd.Process.Pid) + "/cmdline")
					require.NoError(t, err)
					require.NotContains(t, string(cmdline), tc.password)
				}
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	b := testBinaries(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "falkordb.so")
	require.NoError(t, os.WriteFile(notExec, []byte("x"), 0o644))
	missing := filepath.Join(dir, "nonexistent", "redis-server")

	tests := []struct {
		name     string
		opts     Options
		env      map[string]string
		sentinel error
		want     []string
	}{
		{"redis-server option", Options{RedisServer: missing, Module: b.Module}, nil, ErrBinaryNotFound,
			[]string{"redis-server", missing, "Options.RedisServer", "no such file"}},
		{"module option", Options{RedisServer: b.RedisServer, Module: missing + ".so"}, nil, ErrBinaryNotFound,
			[]string{"FalkorDB module", missing + ".so", "Options.Module"}},
		{"redis-server env", Options{Module: b.Module}, map[string]string{EnvRedisServer: missing}, ErrBinaryNotFound,
			[]string{missing, EnvRedisServer}},
		{"module env", Options{RedisServer: b.RedisServer}, map[string]string{EnvModule: missing}, ErrBinaryNotFound,
			[]string{missing, EnvModule}},
		{"module not executable", Options{RedisServer: b.RedisServer, Module: notExec}, nil, ErrBinaryUnusable,
			[]string{notExec, "not executable"}},
		{"directory", Options{RedisServer: dir, Module: b.Module}, nil, ErrBinaryUnusable,
			[]string{dir, "not a regular file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRedisServer, tc.env[EnvRedisServer])
			t.Setenv(EnvModule, tc.env[EnvModule])
			_, err := Start(context.Background(), tc.opts)
			require.ErrorIs(t, err, tc.sentinel)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestEnvBinaries(t *testing.T) {
	b := testBinaries(t)
	t.Setenv(EnvRedisServer, b.RedisServer)
	t.Setenv(EnvModule, b.Module)
	got, err := FindBinaries(context.Background(), Options{CacheDir: t.TempDir(), NoProvision: true})
	require.NoError(t, err)
	require.Equal(t, b, got)
}

// isolateTemp points os.TempDir at a fresh directory and returns it.
func isolateTemp(t *testing.T) string {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return tmp
}

func TestBadModuleShowsLogTail(t *testing.T) {
	b := testBinaries(t)
	tmp := isolateTemp(t)
	bad := filepath.Join(t.TempDir(), "falkordb.so")
	require.NoError(t, os.WriteFile(bad, []byte("not a shared object"), 0o755))

	_, err := Start(context.Background(), Options{RedisServer: b.RedisServer, Module: bad})
	var se *StartError
	require.ErrorAs(t, err, &se)
	require.NotEmpty(t, se.LogTail)
	require.Contains(t, strings.Join(se.LogTail, "\n"), "failed to load")
	require.Contains(t, se.Error(), "last lines of the server log")
	require.Contains(t, se.Error(), bad)
	require.NotErrorIs(t, err, ErrMissingLibrary)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "temp dir left behind after a failed start")
}

// patchedCopy copies src into dir with every occurrence of old replaced by new (same
// length), e.g. to rename a needed shared library so the loader cannot find it.
func patchedCopy(t *testing.T, src, dir, old, new string) string {
	t.Helper()
	require.Len(t, new, len(old))
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.Contains(t, string(data), old)
	dst := filepath.Join(dir, filepath.Base(src))
	require.NoError(t, os.WriteFile(dst, bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o755))
	return dst
}

func TestMissingSharedLibrary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("patches ELF files")
	}
	b := testBinaries(t)
	tests := []struct {
		name   string
		opts   func(dir string) Options
		lib    string
		reason string
	}{
		{"module needs it", func(dir string) Options {
			return Options{RedisServer: b.RedisServer, Module: patchedCopy(t, b.Module, dir, "libgomp.so.1", "libgomX.so.1")}
		}, "libgomX.so.1", "server exited"},
		{"redis-server needs it", func(dir string) Options {
			return Options{RedisServer: patchedCopy(t, b.RedisServer, dir, "libstdc++.so.6", "libstdX++.so.6"), Module: b.Module}
		}, "libstdX++.so.6", "server exited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.opts(t.TempDir()))
			require.ErrorIs(t, err, ErrMissingLibrary)
			var se *StartError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.lib, se.MissingLibrary)
			require.Empty(t, se.Package, "no package provides a made-up library")
			require.Contains(t, se.Error(), "the shared library "+tc.lib+" is missing")
			require.Contains(t, se.Reason, tc.reason)
		})
	}
}

func TestPortTakenRetries(t *testing.T) {
	b := testBinaries(t)
	// A listener that accepts and drops connections, like a foreign server would answer.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	busy := l.Addr().(*net.TCPAddr).Port
	bins := Binaries{RedisServer: b.RedisServer, Module: b.Module}

	t.Run("retries with another port", func(t *testing.T) {
		picks := 0
		s, err := start(context.Background(), bins, Options{}, func() (int, error) {
			picks++
			if picks == 1 {
				return busy, nil
			}
			return freePort()
		})
		require.NoError(t, err)
		defer s.Close()
		require.Equal(t, 2, picks)
		require.NotEqual(t, strconv.Itoa(busy), s.Addr()[strings.LastIndexByte(s.Addr(), ':')+1:])
		require.NoError(t, client(t, s.URL()).Ping(context.Background()).Err())
	})
	t.Run("gives up", func(t *testing.T) {
		picks := 0
		_, err := start(context.Background(), bins, Options{}, func() (int, error) { picks++; return busy, nil })
		var se *StartError
		require.ErrorAs(t, err, &se)
		require.Equal(t, portAttempts, picks)
		require.Contains(t, strings.Join(se.LogTail, "\n"), "Address already in use")
	})
}

func TestKillAndRestart(t *testing.T) {
	for _, unix := range []bool{false, true} {
		s := startServer(t, Options{UnixSocket: unix, Password: "pw"})
		ctx := context.Background()
		c := client(t, s.URL())
		require.NoError(t, c.Do(ctx, "GRAPH.QUERY", "g", "CREATE (:N)").Err())
		pid := s.proc.cmd.Process.Pid

		require.NoError(t, s.Kill())
		require.True(t, processGone(pid))
		require.Error(t, c.Ping(ctx).Err())
		require.NoError(t, s.Kill(), "Kill twice")

		require.NoError(t, s.Restart(ctx))
		require.NoError(t, c.Ping(ctx).Err(), "same address and password after Restart")
		graphs, err := c.Do(ctx, "GRAPH.LIST").StringSlice()
		require.NoError(t, err)
		require.Empty(t, graphs, "no data survives a restart")

		require.NoError(t, s.Close())
		require.ErrorIs(t, s.Restart(ctx), ErrClosed)
	}
}

func TestStartCanceled(t *testing.T) {
	b := testBinaries(t)
	tmp := isolateTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Start(ctx, Options{RedisServer: b.RedisServer, Module: b.Module})
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestURLParsesWithGoRedis(t *testing.T) {
	tests := []struct {
		name string
		s    *Server
		want redis.Options
	}{
		{"tcp", &Server{network: "tcp", addr: "127.0.0.1:1234"}, redis.Options{Network: "tcp", Addr: "127.0.0.1:1234"}},
		{"tcp password", &Server{network: "tcp", addr: "127.0.0.1:1", password: "p@ss:/?#%"}, redis.Options{Network: "tcp", Addr: "127.0.0.1:1", Password: "p@ss:/?#%"}},
		{"unix", &Server{network: "unix", addr: "/tmp/x y/redis.sock"}, redis.Options{Network: "unix", Addr: "/tmp/x y/redis.sock"}},
		{"unix password", &Server{network: "unix", addr: "/tmp/a/redis.sock", password: "p w"}, redis.Options{Network: "unix", Addr: "/tmp/a/redis.sock", Password: "p w"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := redis.ParseURL(tc.s.URL())
			require.NoError(t, err, tc.s.URL())
			require.Equal(t, tc.want.Network, opt.Network)
			require.Equal(t, tc.want.Addr, opt.Addr)
			require.Equal(t, tc.want.Password, opt.Password)
			require.Empty(t, opt.Username)
		})
	}
}

func TestSweepStaleDirs(t *testing.T) {
	tmp := isolateTemp(t)
	dead := exec.Command("sh", "-c", "exit 0")
	require.NoError(t, dead.Run())
	deadPid := dead.Process.Pid
	dirs := map[string]struct {
		owner string // "" for none
		swept bool
	}{
		"falkordb-lite-stale":        {fmt.Sprintf("%d %d\n", deadPid, deadPid), true},
		"falkordb-lite-ours":         {fmt.Sprintf("%d %d\n", os.Getpid(), deadPid), false},
		"falkordb-lite-parent-alive": {fmt.Sprintf("%d %d\n", os.Getppid(), deadPid), false},
		"falkordb-lite-starting":     {"", false},
		"falkordb-lite-garbage":      {"x y", false},
		"other-stale":                {fmt.Sprintf("%d %d\n", deadPid, deadPid), false},
	}
	for name, d := range dirs {
		p := filepath.Join(tmp, name)
		require.NoError(t, os.Mkdir(p, 0o700))
		if d.owner != "" {
			require.NoError(t, os.WriteFile(filepath.Join(p, ownerFile), []byte(d.owner), 0o600))
		}
	}
	s := startServer(t, Options{})
	owner, err := os.ReadFile(filepath.Join(s.dir, ownerFile))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d %d\n", os.Getpid(), s.proc.cmd.Process.Pid), string(owner))
	for name, d := range dirs {
		_, err := os.Stat(filepath.Join(tmp, name))
		if d.swept {
			require.ErrorIs(t, err, fs.ErrNotExist, name)
		} else {
			require.NoError(t, err, name)
		}
	}
}
