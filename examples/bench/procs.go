package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a server process the benchmark started. It runs in its own
// process group (Ctrl-C in a terminal reaches only the benchmark, which stops
// its children in order) and gets SIGKILL from the kernel if the benchmark
// dies without stopping it.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdout string // file paths of the captured output
	stderr string
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done

	stopOnce sync.Once
}

// children tracks every started process so that cleanup can stop them all.
type children struct {
	mu   sync.Mutex
	list []*child
	dir  string // where the output files go
}

// start runs name's command line with env (the complete environment) in
// dir (a fresh temp directory when ""), capturing stdout and stderr in files.
func (cs *children) start(name string, env []string, dir string, argv ...string) (*child, error) {
	if dir == "" {
		d, err := os.MkdirTemp(cs.dir, name+"-cwd-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	c := &child{name: name, done: make(chan struct{}),
		stdout: filepath.Join(cs.dir, name+".stdout"), stderr: filepath.Join(cs.dir, name+".stderr")}
	outF, err := os.Create(c.stdout)
	if err != nil {
		return nil, err
	}
	errF, err := os.Create(c.stderr)
	if err != nil {
		outF.Close()
		return nil, err
	}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env, c.cmd.Dir, c.cmd.Stdout, c.cmd.Stderr = env, dir, outF, errF
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	// Pdeathsig fires when the thread that started the child exits: start
	// it from a goroutine locked to its thread for the child's whole life.
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = c.cmd.Wait()
		outF.Close()
		errF.Close()
		close(c.done)
	}()
	if err := <-started; err != nil {
		outF.Close()
		errF.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	cs.mu.Lock()
	cs.list = append(cs.list, c)
	cs.mu.Unlock()
	return c, nil
}

// stopAll stops every process still running, the newest first.
func (cs *children) stopAll() {
	cs.mu.Lock()
	list := append([]*child(nil), cs.list...)
	cs.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// Pid is the process id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group, waits up to three
// seconds, then sends SIGKILL. It is idempotent.
func (c *child) stop() {
	c.stopOnce.Do(func() {
		pgid := -c.cmd.Process.Pid
		select {
		case <-c.done:
			return
		default:
		}
		syscall.Kill(pgid, syscall.SIGTERM)
		t := time.NewTimer(3 * time.Second)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			syscall.Kill(pgid, syscall.SIGKILL)
			<-c.done
		}
		syscall.Kill(pgid, syscall.SIGKILL) // anything left in the group
	})
}

// waitFor polls file (the child's stdout or stderr) until re matches a line,
// and returns the first submatch. It fails when the child exits, ctx ends
// or timeout passes, with the tail of the child's output.
func (c *child) waitFor(ctx context.Context, file string, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(file); err == nil {
			if m := re.FindSubmatch(b); m != nil {
				return string(m[1]), nil
			}
		}
		select {
		case <-c.done:
			return "", fmt.Errorf("%s exited (%v) before it was ready: %s", c.name, c.err, c.tail())
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", fmt.Errorf("%s not ready after %v: %s", c.name, timeout, c.tail())
		case <-tick.C:
		}
	}
}

// tail is the end of the child's output, for error messages.
func (c *child) tail() string {
	var out []string
	for _, f := range []string{c.stdout, c.stderr} {
		b, _ := os.ReadFile(f)
		b = bytes.TrimSpace(b)
		if len(b) > 600 {
			b = append([]byte("…"), b[len(b)-600:]...)
		}
		if len(b) > 0 {
			out = append(out, string(b))
		}
	}
	if len(out) == 0 {
		return "(no output)"
	}
	return strings.Join(out, " | ")
}

// Process accounting from /proc.

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat (100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time of a process and its live descendants.
type cpuSample struct {
	stat  time.Duration // utime+stime+cutime+cstime from /proc/<pid>/stat: every thread, also exited ones and reaped children; 10 ms resolution
	sched time.Duration // sum of the live threads' run time (schedstat): nanoseconds, misses threads that exited
}

// sub is the CPU time spent between before and s. The precise scheduler
// figure is used unless it lost time the coarse one saw (threads or
// children that exited in between).
func (s cpuSample) sub(before cpuSample) time.Duration {
	stat, sched := s.stat-before.stat, s.sched-before.sched
	if sched < stat-2*clockTick {
		return stat
	}
	return sched
}

// sampleCPU reads the CPU time of pid and all its live descendants.
func sampleCPU(pid int) (cpuSample, error) {
	var s cpuSample
	pids := append([]int{pid}, descendants(pid)...)
	for i, p := range pids {
		st, err := statTimes(p)
		if err != nil {
			if i == 0 {
				return s, err
			}
			continue // a descendant that just exited
		}
		s.stat += st
		s.sched += schedTime(p)
	}
	return s, nil
}

// statTimes reads utime, stime, cutime and cstime of pid.
func statTimes(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which may contain spaces): index 0 is the state, 1 the parent pid.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f, nil
}

// schedTime sums the run time of pid's threads from their schedstat.
func schedTime(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			total += time.Duration(ns)
		}
	}
	return total
}

// descendants lists the live descendants of pid.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := procStat(p); err == nil {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[p] = pp
			}
		}
	}
	var out []int
	want := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if want[pp] && !want[p] {
				want[p], changed = true, true
				out = append(out, p)
			}
		}
	}
	return out
}

// resetPeakRSS resets the peak resident set size (VmHWM) of pid and its
// descendants to their current size (Linux: "5" to clear_refs).
func resetPeakRSS(pid int) error {
	var errs []error
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if err := os.WriteFile("/proc/"+strconv.Itoa(p)+"/clear_refs", []byte("5"), 0); err != nil && p == pid {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// peakRSS is the sum of VmHWM of pid and its live descendants, in bytes.
func peakRSS(pid int) (int64, error) {
	var total int64
	for i, p := range append([]int{pid}, descendants(pid)...) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					total += kb << 10
				}
			}
		}
	}
	return total, nil
}

// selfCPU is the benchmark process's own CPU time (getrusage RUSAGE_SELF).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childEnv is a minimal environment for a child: the few inherited
// variables a runtime needs, plus extra. Nothing else leaks in (a PORT or a
// BEARER_* of the caller's shell would change what the servers do).
func childEnv(extra ...string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "TMPDIR", "LANG", "LC_ALL", "XDG_CACHE_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}
