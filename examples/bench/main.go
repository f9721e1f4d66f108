package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenantgraph/tenantgraph/falkor/lite"
	"github.com/tenantgraph/tenantgraph/graphname"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if spec := os.Getenv(floorEnv); spec != "" {
		if err := serveFloor(ctx, spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench floor server:", err)
			os.Exit(1)
		}
		return
	}
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once (the children get SIGKILL from the kernel)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	calls, warmup, eCalls int
	concurrency           []int
	only                  []string
	workloads             []string
	out                   string
	profile               string
	profileCalls          int
	profileWorkload       string
	proxyBin              string
	proxyOverlay          string
	proxyLogLevel         string
	interop               string
	fastmcpReuse          bool
	proxyEnv              []string
	quiet                 bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.calls, "calls", 3000, "measured calls per system, workload and concurrency")
	fs.IntVar(&o.warmup, "warmup", 300, "calls before each measurement (not measured)")
	fs.IntVar(&o.eCalls, "e-calls", 300, "measured calls per cell for (e), which costs about 50x more per call (0: -calls); warm-up scales down with it")
	conc := fs.String("concurrency", "1,16", "comma-separated numbers of concurrent clients")
	only := fs.String("only", strings.Join(systemOrder, ","), "systems to run: a, b (cache on and off), b-nocache, c, d, e, f")
	wls := fs.String("workloads", "lookup,hop2,write", "workloads to run")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&o.profile, "profile", "", "after the table, profile the proxy (b, lookup, highest concurrency) and write the pprof files and their tops into this directory")
	fs.IntVar(&o.profileCalls, "profile-calls", 6000, "calls during the profile")
	fs.StringVar(&o.profileWorkload, "profile-workload", "lookup", "workload during the profile")
	fs.StringVar(&o.proxyBin, "proxy-bin", "", "a prebuilt examples/proxy binary (default: go build it)")
	fs.StringVar(&o.proxyOverlay, "proxy-overlay", "", "a go build -overlay file for building examples/proxy (and its profiled build): try a change without touching the tree")
	fs.StringVar(&o.proxyLogLevel, "proxy-log-level", "info", "LOG_LEVEL of the proxy (info writes an access and an audit line per call, as deployed)")
	fs.StringVar(&o.interop, "interop", "", "interop install directory (default $TENANTGRAPH_INTEROP_DIR, else <user cache>/tenantgraph/interop)")
	fs.BoolVar(&o.fastmcpReuse, "fastmcp-reuse", false, "run (e) with PROXY_REUSE_UPSTREAM=1 (one upstream session) instead of FastMCP's default")
	fs.BoolVar(&o.quiet, "q", false, "no progress lines on stderr")
	fs.Func("proxy-env", "extra NAME=VALUE for the proxy's environment, e.g. GOGC=400 (repeatable; shown in the report)", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return errors.New("want NAME=VALUE")
		}
		o.proxyEnv = append(o.proxyEnv, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.calls < 1 || o.warmup < 0 || o.eCalls < 0 {
		return o, errors.New("-calls must be at least 1, -warmup and -e-calls not negative")
	}
	for s := range strings.SplitSeq(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			return o, fmt.Errorf("-concurrency: %q is not a number from 1 to 256", s)
		}
		o.concurrency = append(o.concurrency, n)
	}
	for s := range strings.SplitSeq(*only, ",") {
		names := []string{strings.TrimSpace(s)}
		switch names[0] {
		case "":
			continue
		case "b":
			names = append(names, "b-nocache")
		}
		for _, n := range names {
			if !slices.Contains(systemOrder, n) {
				return o, fmt.Errorf("-only: unknown system %q (want some of %s)", n, strings.Join(systemOrder, ","))
			}
			if !slices.Contains(o.only, n) {
				o.only = append(o.only, n)
			}
		}
	}
	for s := range strings.SplitSeq(*wls, ",") {
		s = strings.TrimSpace(s)
		if !slices.ContainsFunc(workloads, func(w workload) bool { return w.Name == s }) {
			return o, fmt.Errorf("-workloads: unknown workload %q (want some of lookup,hop2,write)", s)
		}
		o.workloads = append(o.workloads, s)
	}
	if !slices.ContainsFunc(workloads, func(w workload) bool { return w.Name == o.profileWorkload }) {
		return o, fmt.Errorf("-profile-workload: unknown workload %q", o.profileWorkload)
	}
	if o.interop == "" {
		o.interop = os.Getenv("TENANTGRAPH_INTEROP_DIR")
	}
	if o.interop == "" {
		if d, err := os.UserCacheDir(); err == nil {
			o.interop = filepath.Join(d, "tenantgraph", "interop")
		}
	}
	return o, nil
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	rep, err := benchmark(ctx, opts, stderr)
	if rep != nil {
		md := rep.markdown()
		io.WriteString(stdout, md)
		if opts.out != "" {
			if werr := os.WriteFile(opts.out, []byte(md), 0o644); werr != nil {
				fmt.Fprintf(stderr, "bench: %v\n", werr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// graphNodes is the size of the benchmark graph.
const graphNodes = 1000

// benchmark starts everything, runs the selected systems and returns the
// report. Every process it started is stopped when it returns.
func benchmark(ctx context.Context, opts options, stderr io.Writer) (*report, error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		if !opts.quiet {
			fmt.Fprintf(stderr, "bench: "+format+"\n", args...)
		}
	}
	modRoot, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tenantgraph-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	kids := &children{dir: dir}
	defer kids.stopAll()

	b := &bench{opts: opts, log: logf, kids: kids, dir: dir, modRoot: modRoot, interop: opts.interop, tenant: "bench"}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	b.graph = "g" + hex.EncodeToString(suffix)
	if b.physical, err = graphname.Default().Resolve(b.tenant, b.graph); err != nil {
		return nil, err
	}

	logf("starting FalkorDB (falkor/lite)")
	pw := make([]byte, 12)
	rand.Read(pw)
	srv, err := lite.Start(ctx, lite.Options{Password: hex.EncodeToString(pw)})
	if err != nil {
		return nil, fmt.Errorf("starting FalkorDB: %w", err)
	}
	defer srv.Close()
	b.fdbAddr, b.fdbPass = srv.Addr(), srv.Password()
	b.rdb = redis.NewClient(&redis.Options{Addr: b.fdbAddr, Password: b.fdbPass, MaxRetries: -1, ReadTimeout: time.Minute})
	defer b.rdb.Close()
	info, err := b.rdb.Info(ctx, "server", "modules").Result()
	if err != nil {
		return nil, fmt.Errorf("FalkorDB INFO: %w", err)
	}
	if m := regexp.MustCompile(`process_id:(\d+)`).FindStringSubmatch(info); m != nil {
		b.fdbPid, _ = strconv.Atoi(m[1])
	}
	if b.fdbPid == 0 {
		return nil, errors.New("FalkorDB INFO names no process_id")
	}
	if err := b.seedGraph(ctx); err != nil {
		return nil, err
	}

	if b.iss, err = startIssuer(); err != nil {
		return nil, err
	}
	defer b.iss.Close()

	rep := &report{started: start, machine: machineShape(ctx, info, b.interop), tree: treeState(ctx, modRoot), opts: opts}
	if err := b.runAll(ctx, rep); err != nil {
		return rep, err
	}
	if opts.profile != "" && ctx.Err() == nil {
		prof, err := b.profileProxy(ctx)
		if err != nil {
			return rep, fmt.Errorf("profile: %w", err)
		}
		rep.profile = prof
	}
	rep.took = time.Since(start)
	return rep, ctx.Err()
}

// moduleRoot finds the tenantgraph module's directory (the benchmark builds
// examples/proxy and reads the interop scripts from it).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			dir := filepath.Dir(gomod)
			if _, err := os.Stat(filepath.Join(dir, "examples", "proxy")); err == nil {
				return dir, nil
			}
		}
	}
	return "", errors.New("run the benchmark from the tenantgraph module (go run ./examples/bench): examples/proxy not found")
}

// seedGraph creates the benchmark graph: 1,000 nodes (:N {id, name, v})
// with an index on id (created first, so it is complete at once) and ten
// outgoing :R edges per node.
func (b *bench) seedGraph(ctx context.Context) error {
	b.log("seeding graph %s: %d nodes, index on id, %d edges", b.physical, graphNodes, 10*graphNodes)
	for _, q := range []string{
		"CREATE INDEX FOR (n:N) ON (n.id)",
		fmt.Sprintf("UNWIND range(0, %d) AS i CREATE (:N {id: i, name: 'n' + toString(i), v: 0})", graphNodes-1),
		fmt.Sprintf("UNWIND range(0, %d) AS i UNWIND range(1, 10) AS k MATCH (a:N {id: i}), (c:N {id: (i * 7 + k * 13) %% %d}) CREATE (a)-[:R]->(c)", graphNodes-1, graphNodes),
	} {
		if err := b.rdb.Do(ctx, "GRAPH.QUERY", b.physical, q).Err(); err != nil {
			return fmt.Errorf("seeding the graph (%.40s...): %w", q, err)
		}
	}
	plan, err := b.rdb.Do(ctx, "GRAPH.EXPLAIN", b.physical, "CYPHER id=1 "+workloads[0].Query).Result()
	if err != nil {
		return fmt.Errorf("GRAPH.EXPLAIN: %w", err)
	}
	if !strings.Contains(fmt.Sprint(plan), "Index Scan") {
		return fmt.Errorf("the point lookup does not use the index: %v", plan)
	}
	return nil
}

// system is a started system and what it measures.
type system struct {
	name          string
	t             *target
	calls, warmup int
}

// runAll starts every selected system, then measures each workload and
// concurrency on one system after the other (system-interleaved, so that
// the ratios compare measurements taken seconds apart, not minutes: the
// speed of a shared machine drifts), and stops them.
func (b *bench) runAll(ctx context.Context, rep *report) error {
	var systems []*system
	defer func() {
		for _, s := range systems {
			s.t.close()
		}
	}()
	for _, name := range systemOrder {
		if !slices.Contains(b.opts.only, name) {
			continue
		}
		s, err := b.startSystem(ctx, rep, name)
		if err != nil {
			return err
		}
		if s != nil {
			systems = append(systems, s)
		}
	}
	for _, wl := range workloads {
		if !slices.Contains(b.opts.workloads, wl.Name) {
			continue
		}
		var ready []*system
		for _, s := range systems {
			if err := b.validate(ctx, s.t, wl); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				for _, c := range b.opts.concurrency {
					rep.add(row{system: s.name, workload: wl.Name, conc: c, failed: err.Error()})
				}
				b.log("system %s %s: %v", s.name, wl.Name, err)
				continue
			}
			ready = append(ready, s)
		}
		for _, c := range b.opts.concurrency {
			for _, s := range ready {
				r := b.runCell(ctx, s.t, wl, c, s.calls, s.warmup)
				r.system = s.name
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rep.add(r)
				if r.failed != "" {
					b.log("%s %s c=%d failed: %s", s.name, wl.Name, c, r.failed)
				} else {
					b.log("%-9s %-6s c=%-2d %6.0f calls/s  p50 %s  p99 %s  server CPU %s µs/call  loadgen %.0f µs/call",
						s.name, wl.Name, c, r.throughput, ms(r.p50), ms(r.p99), r.cpuText(), r.loadCPU)
				}
			}
		}
	}
	return nil
}

// startSystem sets up one system; it returns nil (and adds the row that
// says why) when the system is skipped or fails to start.
func (b *bench) startSystem(ctx context.Context, rep *report, name string) (*system, error) {
	b.log("system %s: %s", name, systemTitles[name])
	t, skip, err := b.setup(ctx, name)
	if ctx.Err() != nil {
		if t != nil {
			t.close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		rep.add(row{system: name, failed: "start: " + err.Error()})
		b.log("system %s failed to start: %v", name, err)
		return nil, nil
	}
	if skip != "" {
		rep.add(row{system: name, skipped: skip})
		b.log("system %s skipped: %s", name, skip)
		return nil, nil
	}
	if t.note != "" {
		rep.systemNotes = append(rep.systemNotes, fmt.Sprintf("(%s) %s.", name, t.note))
	}
	s := &system{name: name, t: t, calls: b.opts.calls, warmup: b.opts.warmup}
	if name == "e" && b.opts.eCalls > 0 && b.opts.eCalls < s.calls {
		s.warmup = max(1, s.warmup*b.opts.eCalls/s.calls)
		s.calls = b.opts.eCalls
	}
	return s, nil
}

// validate makes one call of wl and checks the number of rows: every
// system must return the same answer.
func (b *bench) validate(ctx context.Context, t *target, wl workload) error {
	w, err := t.newWorker(ctx, wl)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer w.close()
	rows, err := w.call(ctx, 7, "", true)
	if err != nil {
		return fmt.Errorf("check call: %w", err)
	}
	if rows != wl.Rows {
		return fmt.Errorf("check call: %d rows, want %d", rows, wl.Rows)
	}
	return nil
}

// runCell measures one (system, workload, concurrency).
func (b *bench) runCell(ctx context.Context, t *target, wl workload, conc, calls, warmup int) row {
	r := row{workload: wl.Name, conc: conc, calls: calls}
	fail := func(format string, args ...any) row {
		r.failed = fmt.Sprintf(format, args...)
		return r
	}
	workers := make([]worker, 0, conc)
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	for range conc {
		w, err := t.newWorker(ctx, wl)
		if err != nil {
			return fail("connect: %v", err)
		}
		workers = append(workers, w)
	}
	var warmAuth, measAuth func(int) string
	if t.uniqueTokens {
		toks, err := b.iss.mintMany(ctx, b.tenant, warmup+calls)
		if err != nil {
			return fail("minting tokens: %v", err)
		}
		warmAuth = func(n int) string { return "Bearer " + toks[n] }
		measAuth = func(n int) string { return "Bearer " + toks[warmup+n] }
	}
	if err := runPhase(ctx, workers, warmup, 0, nil, warmAuth); err != nil {
		return fail("warm-up: %v", err)
	}

	metricNames := []string{"go_memstats_mallocs_total", "go_memstats_alloc_bytes_total",
		`tenantgraph_auth_verified_total{cached="true"}`, `tenantgraph_auth_verified_total{cached="false"}`}
	var m0, m1 map[string]float64
	if t.metricsURL != "" {
		var err error
		if m0, err = scrapeMetrics(ctx, t.metricsURL, metricNames...); err != nil {
			return fail("metrics: %v", err)
		}
	}
	for _, p := range t.procs {
		resetPeakRSS(p.pid)
	}
	before := make([]cpuSample, len(t.procs))
	for i, p := range t.procs {
		s, err := sampleCPU(p.pid)
		if err != nil {
			return fail("%s (pid %d) is gone: %v", p.name, p.pid, err)
		}
		before[i] = s
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	self0 := selfCPU()
	lat := make([]time.Duration, calls)
	t0 := time.Now()

	err := runPhase(ctx, workers, calls, warmup, lat, measAuth)

	wall := time.Since(t0)
	self1 := selfCPU()
	runtime.ReadMemStats(&ms1)
	if err != nil {
		return fail("%v", err)
	}
	for i, p := range t.procs {
		s, err := sampleCPU(p.pid)
		if err != nil {
			return fail("%s (pid %d) is gone: %v", p.name, p.pid, err)
		}
		rss, _ := peakRSS(p.pid)
		r.procs = append(r.procs, procFigures{name: p.name, cpu: perCall(s.sub(before[i]), calls), rss: rss})
	}
	if t.metricsURL != "" {
		if m1, err = scrapeMetrics(ctx, t.metricsURL, metricNames...); err != nil {
			return fail("metrics: %v", err)
		}
		r.allocs = (m1[metricNames[0]] - m0[metricNames[0]]) / float64(calls)
		r.allocBytes = (m1[metricNames[1]] - m0[metricNames[1]]) / float64(calls)
		r.allocsOf = "proxy"
		hits, misses := m1[metricNames[2]]-m0[metricNames[2]], m1[metricNames[3]]-m0[metricNames[3]]
		r.cacheHits = fmt.Sprintf("token cache hits %.0f/%.0f", hits, hits+misses)
	} else if t.inProcess {
		r.allocs = float64(ms1.Mallocs-ms0.Mallocs) / float64(calls)
		r.allocBytes = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(calls)
		r.allocsOf = "client"
	}
	r.throughput = float64(calls) / wall.Seconds()
	r.loadCPU = perCall(self1-self0, calls)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.p50 = lat[(len(lat)-1)/2]
	r.p99 = lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
	return r
}

// perCall is d per call in microseconds.
func perCall(d time.Duration, calls int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(calls)
}
