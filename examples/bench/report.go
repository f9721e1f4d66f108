package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// procFigures are one server process's figures in one cell.
type procFigures struct {
	name string
	cpu  float64 // µs of CPU per call
	rss  int64   // peak resident set during the cell, bytes
}

// row is one (system, workload, concurrency) of the report.
type row struct {
	system, workload string
	conc, calls      int
	skipped, failed  string

	throughput float64 // calls per second
	p50, p99   time.Duration
	procs      []procFigures
	loadCPU    float64 // the load generator's own CPU, µs per call
	allocs     float64 // heap allocations per call of a Go process (allocsOf), if known
	allocBytes float64
	allocsOf   string // "proxy", "client" or ""
	cacheHits  string
}

// serverCPU is the CPU per call of all the system's server processes.
func (r row) serverCPU() float64 {
	var s float64
	for _, p := range r.procs {
		s += p.cpu
	}
	return s
}

func (r row) proc(name string) (procFigures, bool) {
	for _, p := range r.procs {
		if p.name == name {
			return p, true
		}
	}
	return procFigures{}, false
}

func (r row) cpuText() string {
	var parts []string
	for _, p := range r.procs {
		parts = append(parts, fmt.Sprintf("%s %.0f", p.name, p.cpu))
	}
	return strings.Join(parts, " · ")
}

func (r row) rssText() string {
	var parts []string
	for _, p := range r.procs {
		parts = append(parts, fmt.Sprintf("%s %.0f", p.name, float64(p.rss)/(1<<20)))
	}
	return strings.Join(parts, " · ")
}

// report is the whole result.
type report struct {
	started     time.Time
	took        time.Duration
	machine     string
	tree        string
	opts        options
	rows        []row
	systemNotes []string
	profile     string
}

func (rep *report) add(r row) { rep.rows = append(rep.rows, r) }

// sorted returns the rows by system, workload and concurrency, in the
// order of the options (they are measured interleaved).
func (rep *report) sorted() []row {
	rank := func(r row) (int, int, int) {
		return slices.Index(systemOrder, r.system),
			slices.IndexFunc(workloads, func(w workload) bool { return w.Name == r.workload }),
			slices.Index(rep.opts.concurrency, r.conc)
	}
	rows := slices.Clone(rep.rows)
	slices.SortStableFunc(rows, func(x, y row) int {
		xs, xw, xc := rank(x)
		ys, yw, yc := rank(y)
		return cmp.Or(cmp.Compare(xs, ys), cmp.Compare(xw, yw), cmp.Compare(xc, yc))
	})
	return rows
}

// find returns the measured row of system for the same workload and
// concurrency as r.
func (rep *report) find(system string, r row) (row, bool) {
	for _, o := range rep.rows {
		if o.system == system && o.workload == r.workload && o.conc == r.conc && o.failed == "" && o.skipped == "" {
			return o, true
		}
	}
	return row{}, false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// markdown renders the report.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Benchmark: %s\n\n", rep.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "%s %s\n\n", rep.machine, rep.tree)
	fmt.Fprintf(&b, "Command: `go run ./examples/bench %s` (took %s). Every server on loopback on this one machine, ", rep.args(), rep.took.Round(time.Second))
	b.WriteString("a 1,000-node graph with an index on `id` (10 edges per node). ")
	b.WriteString("Workloads: `lookup` = point lookup by indexed id with a query parameter; `hop2` = 2-hop traversal returning 50 rows; `write` = `SET` of one property on one node. ")
	b.WriteString("CPU is per call, from /proc (utime+stime of each server process and its children, measured around the timed calls only); ")
	b.WriteString("peak RSS is VmHWM during the timed calls; the load generator's CPU is its own getrusage; allocations are the Go proxy's heap allocations per call (its /metrics), or the falkordb-go client's for (a). ")
	b.WriteString("The proxy runs with RATE_LIMIT=off and CONCURRENCY_LIMIT=0 (the limits would be measured, not the path), LOG_LEVEL=" + rep.opts.proxyLogLevel + " (an access and an audit line per call), everything else at its defaults; ")
	b.WriteString("its clients speak protocol 2026-07-28 (stateless, no initialize); the stateful servers (c, e) get one initialized session per client.\n\n")
	b.WriteString("Systems:\n\n")
	for _, s := range systemOrder {
		if slices.Contains(rep.opts.only, s) {
			fmt.Fprintf(&b, "- **%s**: %s\n", s, systemTitles[s])
		}
	}
	b.WriteString("\n| system | workload | conc | calls | calls/s | p50 ms | p99 ms | server CPU µs/call | by process µs/call | peak RSS MiB | load gen CPU µs/call | Go allocs/call | calls/s ÷ (a) | calls/s ÷ (c) | p99 ÷ (c) | notes |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|---|--:|---|--:|--:|--:|---|\n")
	for _, r := range rep.sorted() {
		switch {
		case r.skipped != "":
			fmt.Fprintf(&b, "| %s | | | | | | | | | | | | | | | skipped: %s |\n", r.system, cell(r.skipped))
			continue
		case r.failed != "":
			fmt.Fprintf(&b, "| %s | %s | %s | | | | | | | | | | | | | FAILED: %s |\n", r.system, r.workload, itoa0(r.conc), cell(r.failed))
			continue
		}
		ratio := func(sys string, f func(row) float64, mine float64) string {
			if r.system == sys {
				return "1"
			}
			o, ok := rep.find(sys, r)
			if !ok || f(o) == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f", mine/f(o))
		}
		thr := func(o row) float64 { return o.throughput }
		p99 := func(o row) float64 { return float64(o.p99) }
		allocs := "—"
		if r.allocsOf != "" {
			allocs = fmt.Sprintf("%s %.0f (%.1f KiB)", r.allocsOf, r.allocs, r.allocBytes/1024)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.0f | %s | %s | %.0f | %s | %s | %.0f | %s | %s | %s | %s | %s |\n",
			r.system, r.workload, r.conc, r.calls, r.throughput, ms(r.p50), ms(r.p99), r.serverCPU(), r.cpuText(), r.rssText(),
			r.loadCPU, allocs, ratio("a", thr, r.throughput), ratio("c", thr, r.throughput), ratio("c", p99, float64(r.p99)), r.cacheHits)
	}
	b.WriteString("\n")
	for _, n := range rep.systemNotes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(rep.systemNotes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString(rep.targets())
	if rep.profile != "" {
		b.WriteString("\n" + rep.profile)
	}
	return b.String()
}

func itoa0(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// cell makes text safe for a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.Join(strings.Fields(s), " ")
}

// args is the command line that reproduces the run.
func (rep *report) args() string {
	o := rep.opts
	var conc []string
	for _, c := range o.concurrency {
		conc = append(conc, fmt.Sprint(c))
	}
	a := fmt.Sprintf("-calls %d -warmup %d -e-calls %d -concurrency %s", o.calls, o.warmup, o.eCalls, strings.Join(conc, ","))
	if len(o.only) != len(systemOrder) {
		a += " -only " + strings.Join(o.only, ",")
	}
	if len(o.workloads) != len(workloads) {
		a += " -workloads " + strings.Join(o.workloads, ",")
	}
	if o.fastmcpReuse {
		a += " -fastmcp-reuse"
	}
	if o.profile != "" {
		a += " -profile DIR"
	}
	if o.proxyLogLevel != "info" {
		a += " -proxy-log-level " + o.proxyLogLevel
	}
	for _, e := range o.proxyEnv {
		a += " -proxy-env " + e
	}
	if o.proxyBin != "" {
		a += " -proxy-bin BIN"
	}
	if o.proxyOverlay != "" {
		a += " -proxy-overlay FILE"
	}
	return a
}

// targets evaluates the performance targets on the measured rows.
func (rep *report) targets() string {
	var b strings.Builder
	b.WriteString("Targets (proxy = examples/proxy, system b, token cache on):\n\n")
	wrote := false
	for _, r := range rep.sorted() {
		if r.system != "b" || r.failed != "" || r.skipped != "" {
			continue
		}
		p, _ := r.proc("proxy")
		line := fmt.Sprintf("- %s c=%d: proxy CPU %.0f µs/call (≤ 100: %s)", r.workload, r.conc, p.cpu, yes(p.cpu <= 100))
		if c, ok := rep.find("c", r); ok {
			node, _ := c.proc("node")
			line += fmt.Sprintf("; official server %.0f µs/call, ratio %.2f (≤ 1/6: %s)", node.cpu, p.cpu/node.cpu, yes(p.cpu*6 <= node.cpu))
			if r.conc >= 16 {
				line += fmt.Sprintf("; throughput %.2f× (c) (≥ 3: %s); p99 %s vs %s ms (below: %s)",
					r.throughput/c.throughput, yes(r.throughput >= 3*c.throughput), ms(r.p99), ms(c.p99), yes(r.p99 < c.p99))
			}
		}
		if r.allocsOf != "" {
			line += fmt.Sprintf("; %.0f allocations (%.1f KiB) per call", r.allocs, r.allocBytes/1024)
		}
		if f, ok := rep.find("f", r); ok {
			fl, _ := f.proc("floor")
			line += fmt.Sprintf("; the floor (f) %.0f µs/call, the proxy's own work above it %.0f µs/call", fl.cpu, p.cpu-fl.cpu)
		}
		b.WriteString(line + "\n")
		wrote = true
	}
	if !wrote {
		b.WriteString("- not evaluated: system b did not run\n")
	}
	return b.String()
}

func yes(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// treeState names the commit of the module and whether the parts the
// proxy is built from had uncommitted changes (read-only git commands).
func treeState(ctx context.Context, modRoot string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", modRoot, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	st := fmt.Sprintf("Source: commit %s", strings.TrimSpace(string(head)))
	dirty, err := exec.CommandContext(ctx, "git", "-C", modRoot, "status", "--porcelain", "--",
		"go.mod", "go.sum", "authn", "tenancy", "graphname", "falkor", "examples/proxy").Output()
	if err == nil && len(bytes.TrimSpace(dirty)) > 0 {
		st += " with uncommitted changes in the proxy's packages"
	}
	return st + "."
}

// machineShape describes the machine and the software versions.
func machineShape(ctx context.Context, fdbInfo, interop string) string {
	cpuModel := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			cpuModel = strings.TrimSpace(string(m[1]))
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if m := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindSubmatch(b); m != nil {
			var kb float64
			fmt.Sscan(string(m[1]), &kb)
			mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	loadF := strings.Fields(string(load))
	if len(loadF) > 3 {
		loadF = loadF[:3]
	}
	redisV, graphV := "?", "?"
	if m := regexp.MustCompile(`redis_version:(\S+)`).FindStringSubmatch(fdbInfo); m != nil {
		redisV = m[1]
	}
	if m := regexp.MustCompile(`name=graph,ver=(\d+)`).FindStringSubmatch(fdbInfo); m != nil {
		var v int
		fmt.Sscan(m[1], &v)
		graphV = fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
	nodeV := "not found"
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		nodeV = strings.TrimSpace(string(out))
	}
	pyV := "not installed"
	if out, err := exec.CommandContext(ctx, filepath.Join(interop, "fastmcp", "bin", "python"), "--version").CombinedOutput(); err == nil {
		pyV = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("Machine: %d cores (nproc) %s, %s RAM, Linux %s, load average at start %s. "+
		"Go %s, FalkorDB %s on Redis %s, Node %s, %s.",
		runtime.NumCPU(), cpuModel, mem, strings.TrimSpace(string(kernel)), strings.Join(loadF, " "),
		strings.TrimPrefix(runtime.Version(), "go"), graphV, redisV, nodeV, pyV)
}
