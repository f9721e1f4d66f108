package lite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv selects a helper role when this test binary is re-executed by a test.
const helperEnv = "LITE_TEST_HELPER"

// The main goroutine keeps the main thread (which the runtime never ends), so goroutines
// that lock a thread and exit really end theirs (see TestStartFromExitingLockedThread).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
	case "provision":
		helperProvision()
		return
	case "deathparent":
		helperDeathParent()
		return
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(5 * time.Second); leaks != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines after all tests:\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

// helperProvision fills the cache named by the environment (XDG_CACHE_HOME) and prints
// the binaries it found as JSON.
func helperProvision() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := FindBinaries(ctx, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	data, _ := json.Marshal(b)
	fmt.Printf("BINARIES %s\n", data)
}

// helperDeathParent starts a server, prints its pid and waits to be killed.
func helperDeathParent() {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("REDIS_PID=%d DIR=%s\n", s.proc.cmd.Process.Pid, s.dir)
	time.Sleep(2 * time.Minute)
	os.Exit(3)
}

// leakedGoroutines waits up to d for goroutines of this package, os/exec or go-redis to
// end, and returns the stacks of those still running.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaks []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "falkor/lite.launch") || strings.Contains(g, "os/exec.(*Cmd)") ||
				strings.Contains(g, "go-redis") {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	binsOnce sync.Once
	bins     Binaries
	binsErr  error
)

// testBinaries returns the binaries the tests run, found or provisioned once. Without
// them the test is skipped, or fails when FALKORDB_REQUIRED=1.
func testBinaries(t testing.TB) Binaries {
	t.Helper()
	binsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins, binsErr = FindBinaries(ctx, Options{})
	})
	if binsErr != nil {
		if os.Getenv("FALKORDB_REQUIRED") == "1" {
			t.Fatalf("FalkorDB binaries required (FALKORDB_REQUIRED=1): %v", binsErr)
		}
		t.Skipf("no FalkorDB binaries: %v", binsErr)
	}
	return bins
}

// startServer starts a server with the test binaries and closes it at cleanup.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	b := testBinaries(t)
	opts.RedisServer, opts.Module = b.RedisServer, b.Module
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
