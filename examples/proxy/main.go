package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	tuneGC(os.Getenv)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the program: it returns the exit status (0 after a clean
// shutdown, 2 for a configuration error, 1 for other failures).
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && subcommands[args[0]] {
		return runOperation(args[0], args[1:], getenv, stdout, stderr)
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return 2
	}
	logOut, flushLogs := stderr, func() {}
	if cfg.LogFlush > 0 {
		bw := newBatchWriter(stderr, cfg.LogFlush)
		defer bw.Close()
		logOut, flushLogs = bw, func() { bw.flush() }
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log.With("component", "redis")})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := newProxy(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err.Error())
		flushLogs() // before the plain line
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return 1
	}
	defer p.Close()
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	if p.policy != nil {
		// SIGHUP reloads the policy file; a bad file keeps the old policy.
		// (Before the banner: a SIGHUP that came before Notify would end
		// the process.)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		done := make(chan struct{})
		defer func() { signal.Stop(hup); close(done) }()
		go func() {
			for {
				select {
				case <-hup:
					p.reloadPolicy(p.policy.Reload())
				case <-done:
					return
				}
			}
		}()
	}

	if err := printBanner(stdout, p); err != nil {
		log.Error("start failed", "err", err.Error())
		return 1
	}

	select {
	case err := <-served:
		log.Error("serving failed", "err", err.Error())
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	log.Info("shutting down: finishing calls in flight", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	serr := p.Shutdown(sctx)
	<-served
	if err := p.Close(); err != nil {
		log.Warn("releasing resources", "err", err.Error())
	}
	if serr != nil {
		log.Error("shutdown incomplete: calls were still running", "err", serr.Error())
		return 1
	}
	log.Info("stopped", "took", time.Since(start).String())
	return 0
}

// redisLogger sends go-redis' own messages (connection pool trouble) to the
// structured log instead of plain lines on stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
