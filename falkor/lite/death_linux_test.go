package lite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStartFromExitingLockedThread guards the parent-death-signal pitfall: Linux sends
// it when the thread that started the child exits, not the process. A goroutine that
// exits while locked to its thread ends that thread; the server it started must live on.
func TestStartFromExitingLockedThread(t *testing.T) {
	b := testBinaries(t)
	type result struct {
		s        *Server
		err      error
		mainThrd bool
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread ends with the goroutine
		s, err := Start(context.Background(), Options{RedisServer: b.RedisServer, Module: b.Module})
		ch <- result{s, err, syscall.Gettid() == syscall.Getpid()}
	}()
	r := <-ch
	require.NoError(t, r.err)
	defer r.s.Close()
	require.False(t, r.mainThrd, "ran on the main thread, which never ends: the test proves nothing")
	select {
	case <-r.s.proc.done:
		t.Fatal("server died when the thread of the goroutine that started it ended")
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, client(t, r.s.URL()).Ping(context.Background()).Err())
}

// TestChildDiesWithParent SIGKILLs a process that started a server and checks that the
// server goes too.
func TestChildDiesWithParent(t *testing.T) {
	b := testBinaries(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=deathparent", EnvRedisServer+"="+b.RedisServer, EnvModule+"="+b.Module)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "REDIS_PID=%d DIR=%s", &pid, &dir); err == nil {
			break
		}
	}
	require.NotZero(t, pid, "helper printed no server pid")
	require.False(t, processGone(pid), "server not running under the helper")
	defer func() {
		if !processGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("server pid %d outlived its parent", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The dead parent could not remove its temp dir: the next Start sweeps it.
	_, err = os.Stat(dir)
	require.NoError(t, err)
	sweepStale()
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "stale dir %s not swept", dir)
}
