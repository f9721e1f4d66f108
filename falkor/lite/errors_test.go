package lite

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMissingLibraryFromLog(t *testing.T) {
	tests := []struct {
		name, log, lib, pkg string
	}{
		{"module, libgomp",
			"1:M 29 Nov 2026 19:58:17.648 # Module /x/falkordb.so failed to load: libgomp.so.1: cannot open shared object file: No such file or directory",
			"libgomp.so.1", "libgomp1"},
		{"module, libssl", "Module /x/falkordb.so failed to load: libssl.so.3: cannot open shared object file: No such file or directory",
			"libssl.so.3", "libssl3"},
		{"module, libcrypto", "failed to load: libcrypto.so.3: cannot open shared object file", "libcrypto.so.3", "libssl3"},
		{"redis-server, libstdc++",
			"/cache/redis-server: error while loading shared libraries: libstdc++.so.6: cannot open shared object file: No such file or directory",
			"libstdc++.so.6", "libstdc++6"},
		{"macOS libomp",
			"# Module /x/falkordb.dylib failed to load: dlopen(/x/falkordb.dylib, 0x0002): Library not loaded: /opt/homebrew/opt/libomp/lib/libomp.dylib",
			"libomp.dylib", "brew:libomp"},
		{"macOS openssl", "Library not loaded: '/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib'", "libssl.3.dylib", "brew:openssl@3"},
		{"unknown library", "libfoo.so.7: cannot open shared object file", "libfoo.so.7", ""},
		{"missing module file is not a missing library",
			"Module /nonexistent/falkordb.so failed to load: /nonexistent/falkordb.so: cannot open shared object file: No such file or directory",
			"falkordb.so", ""},
		{"no library", "Module /tmp/bad.so failed to load: It does not have execute permissions.", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := []string{"* Redis is starting", tc.log, "# Can't load module: server aborting"}
			lib := missingLibrary(lines)
			require.Equal(t, tc.lib, lib)
			pkg, ok := LibraryPackage(lib)
			require.Equal(t, tc.pkg, pkg)
			require.Equal(t, tc.pkg != "", ok)
		})
	}
}

func TestStartErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *StartError
		want []string
		not  []string
		is   bool
	}{
		{"debian package", &StartError{Reason: "server exited", MissingLibrary: "libgomp.so.1", Package: "libgomp1",
			LogTail: []string{"first", "last"}, Err: errors.New("exit status 1")},
			[]string{"server exited: exit status 1", "libgomp.so.1 is missing", "apt-get install libgomp1", "    first\n    last"}, nil, true},
		{"homebrew", &StartError{Reason: "server exited", MissingLibrary: "libomp.dylib", Package: "brew:libomp"},
			[]string{"brew install libomp"}, []string{"apt-get"}, true},
		{"no library", &StartError{Reason: "not ready", LogTail: strings.Split("1 2 3 4 5 6 7 8 9 10 11 12 13 14", " ")},
			[]string{"not ready", "    3\n", "    14"}, []string{"missing", "    2\n"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
			for _, n := range tc.not {
				require.NotContains(t, msg, n)
			}
			require.Equal(t, tc.is, errors.Is(tc.err, ErrMissingLibrary))
		})
	}
}

func FuzzMissingLibrary(f *testing.F) {
	for _, s := range []string{
		"libgomp.so.1: cannot open shared object file",
		"Library not loaded: /opt/homebrew/opt/libomp/lib/libomp.dylib",
		"Library not loaded: '",
		": cannot open shared object file",
		"a.so.1.2.3: cannot open shared object file",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		lib := missingLibrary(strings.Split(line, "\n"))
		if lib == "" {
			return
		}
		if strings.ContainsAny(lib, "/ \t\n") {
			t.Fatalf("library %q is not a file name", lib)
		}
		if !strings.Contains(line, lib) {
			t.Fatalf("library %q not in %q", lib, line)
		}
		if !strings.HasSuffix(lib, ".dylib") && !strings.Contains(lib, ".so") {
			t.Fatalf("library %q is not a shared object name", lib)
		}
	})
}

func FuzzCheckEntryName(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "a/../../b", "/abs", `a\b`, "", "a\x00b", "./a", "a/./b/..", "..", ".", "a/..", "C:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkEntryName(name) != nil {
			return
		}
		dest := filepath.FromSlash("/dest/dir")
		p := filepath.Join(dest, name)
		if p != dest && !strings.HasPrefix(p, dest+string(filepath.Separator)) {
			t.Fatalf("accepted %q escapes to %q", name, p)
		}
	})
}

// unquoteConfig reads back a value quoted by quoteConfig the way redis' sdssplitargs
// does (double-quoted strings with \xHH, \n, \r, \t, \b, \a, \\ and \" escapes).
func unquoteConfig(t *testing.T, s string) string {
	t.Helper()
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		t.Fatalf("not quoted: %q", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			t.Fatalf("unescaped quote in %q", s)
		}
		if c < 0x20 || c >= 0x7f {
			t.Fatalf("raw byte %#x in %q", c, s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			t.Fatalf("dangling backslash in %q", s)
		}
		switch s[i] {
		case 'x':
			if i+2 >= len(s) {
				t.Fatalf("short \\x in %q", s)
			}
			var v byte
			for _, h := range s[i+1 : i+3] {
				v <<= 4
				switch {
				case h >= '0' && h <= '9':
					v |= byte(h - '0')
				case h >= 'a' && h <= 'f':
					v |= byte(h-'a') + 10
				default:
					t.Fatalf("bad hex in %q", s)
				}
			}
			b.WriteByte(v)
			i += 2
		case '\\', '"':
			b.WriteByte(s[i])
		default:
			t.Fatalf("unexpected escape \\%c in %q", s[i], s)
		}
	}
	return b.String()
}

func FuzzQuoteConfig(f *testing.F) {
	for _, s := range []string{"", "plain", `a "b" \c`, "ü 🔑\n\t\x00\xff", "#comment", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := quoteConfig(s)
		if strings.ContainsAny(q, "\n\r") {
			t.Fatalf("quoted value %q spans lines", q)
		}
		if got := unquoteConfig(t, q); got != s {
			t.Fatalf("round trip: %q -> %q -> %q", s, q, got)
		}
	})
}

func TestLogBuffer(t *testing.T) {
	var copyBuf strings.Builder
	l := &logBuffer{out: &copyBuf}
	for i := 0; i < 10000; i++ {
		_, err := l.Write([]byte(strings.Repeat("x", 20) + "\n"))
		require.NoError(t, err)
	}
	_, _ = l.Write([]byte("last line\r\n"))
	require.LessOrEqual(t, len(l.buf), 2*logBufferSize)
	require.Equal(t, []string{strings.Repeat("x", 20), "last line"}, l.tail(2))
	for _, line := range l.lines() {
		require.Contains(t, []string{strings.Repeat("x", 20), "last line"}, line, "first kept line is cut")
	}
	require.Equal(t, 10000*21+len("last line\r\n"), copyBuf.Len(), "copy gets everything")
	l.reset()
	require.Empty(t, l.lines())
}
