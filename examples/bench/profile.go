package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// profileHook is added to examples/proxy at build time only (go build
// -overlay): the proxy has no profiling switch of its own, and the
// benchmark must not change it. With BENCH_PPROF_DIR set, SIGUSR1 starts a
// CPU profile (100 Hz) and snapshots the allocation profile; SIGUSR2 stops
// the CPU profile, snapshots allocations again and writes "done".
const profileHook = `package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

func init() {
	dir := os.Getenv("BENCH_PPROF_DIR")
	if dir == "" {
		return
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var cpu *os.File
		snap := func(name string) {
			runtime.GC()
			if f, err := os.Create(filepath.Join(dir, name)); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
		for s := range ch {
			switch s {
			case syscall.SIGUSR1:
				snap("allocs-start.pprof")
				cpu, _ = os.Create(filepath.Join(dir, "cpu.pprof"))
				pprof.StartCPUProfile(cpu)
				os.WriteFile(filepath.Join(dir, "started"), nil, 0o644)
			case syscall.SIGUSR2:
				pprof.StopCPUProfile()
				cpu.Close()
				snap("allocs-end.pprof")
				os.WriteFile(filepath.Join(dir, "done"), nil, 0o644)
			}
		}
	}()
}
`

// profileProxy builds the proxy with the profiling hook, drives it with the
// chosen workload (-profile-workload) at the highest concurrency, and returns a markdown section
// with the tops of the CPU and allocation profiles (the full profiles and
// tops stay in opts.profile).
func (b *bench) profileProxy(ctx context.Context) (string, error) {
	out, err := filepath.Abs(b.opts.profile)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"started", "done", "cpu.pprof", "allocs-start.pprof", "allocs-end.pprof"} {
		os.Remove(filepath.Join(out, f))
	}
	b.log("profile: building examples/proxy with a profiling hook (go build -overlay; the source tree is not changed)")
	hook := filepath.Join(b.dir, "zz_bench_pprof.go")
	if err := os.WriteFile(hook, []byte(profileHook), 0o644); err != nil {
		return "", err
	}
	replace := map[string]string{}
	if b.opts.proxyOverlay != "" { // the user's overlay, plus the hook
		var user struct{ Replace map[string]string }
		data, err := os.ReadFile(b.opts.proxyOverlay)
		if err == nil {
			err = json.Unmarshal(data, &user)
		}
		if err != nil {
			return "", fmt.Errorf("-proxy-overlay: %w", err)
		}
		maps.Copy(replace, user.Replace)
	}
	replace[filepath.Join(b.modRoot, "examples", "proxy", "zz_bench_pprof.go")] = hook
	ov, _ := json.Marshal(map[string]any{"Replace": replace})
	ovFile := filepath.Join(b.dir, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(out, "proxy-pprof")
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", ovFile, "-o", bin, "./examples/proxy")
	cmd.Dir = b.modRoot
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -overlay: %v: %s", err, o)
	}
	if _, err := b.buildProxy(ctx); err != nil { // learns whether TOKEN_CACHE exists
		return "", err
	}
	extra := []string{"FALKORDB_URL=" + b.fdbURL(), "BENCH_PPROF_DIR=" + out}
	if b.proxyHasCache {
		extra = append(extra, "TOKEN_CACHE=on")
	}
	c, ep, err := b.startProxy(ctx, "proxy-pprof", bin, b.proxyEnv(extra...))
	if err != nil {
		return "", err
	}
	defer c.stop()
	tok, err := b.iss.mint(b.tenant)
	if err != nil {
		return "", err
	}
	conc := slices.Max(b.opts.concurrency)
	f := mcpFlavor{ReadTool: "falkordb_ro_query", WriteTool: "falkordb_query", Graph: b.graph, ParamsKey: "parameters", Stateless: true}
	nw, closeIdle, err := mcpWorkers(ep, f, "Bearer "+tok, conc)
	if err != nil {
		return "", err
	}
	defer closeIdle()
	wl := workloads[slices.IndexFunc(workloads, func(w workload) bool { return w.Name == b.opts.profileWorkload })]
	var workers []worker
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	for range conc {
		w, err := nw(ctx, wl)
		if err != nil {
			return "", err
		}
		workers = append(workers, w)
	}
	if err := runPhase(ctx, workers, b.opts.warmup, 0, nil, nil); err != nil {
		return "", err
	}
	signalAndWait := func(sig syscall.Signal, file string) error {
		if err := syscall.Kill(c.Pid(), sig); err != nil {
			return err
		}
		for range 200 {
			if _, err := os.Stat(filepath.Join(out, file)); err == nil {
				return nil
			}
			time.Sleep(25 * time.Millisecond)
		}
		return fmt.Errorf("the profiling hook did not answer %v", sig)
	}
	if err := signalAndWait(syscall.SIGUSR1, "started"); err != nil {
		return "", err
	}
	b.log("profile: %d calls of %s at concurrency %d", b.opts.profileCalls, wl.Name, conc)
	cpu0, err := sampleCPU(c.Pid())
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	if err := runPhase(ctx, workers, b.opts.profileCalls, b.opts.warmup, nil, nil); err != nil {
		return "", err
	}
	wall := time.Since(t0)
	cpu1, err := sampleCPU(c.Pid())
	if err != nil {
		return "", err
	}
	procCPU := cpu1.sub(cpu0)
	if err := signalAndWait(syscall.SIGUSR2, "done"); err != nil {
		return "", err
	}

	pprof := func(file string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), bin, filepath.Join(out, file))...)
		o, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof %s: %v", strings.Join(args, " "), err)
		}
		return string(o), nil
	}
	var sec strings.Builder
	fmt.Fprintf(&sec, "Proxy profile (b, %s, concurrency %d, %d calls in %s, %.0f calls/s; proxy CPU from /proc %s, %.0f µs/call): files in `%s`.\n\n",
		wl.Name, conc, b.opts.profileCalls, wall.Round(time.Millisecond), float64(b.opts.profileCalls)/wall.Seconds(),
		procCPU.Round(time.Millisecond), perCall(procCPU, b.opts.profileCalls), out)
	for _, p := range []struct {
		file, title string
		args        []string
		keep        *regexp.Regexp // lines shown in the report (all are in the file)
		lines       int
	}{
		{"cpu.pprof", "CPU, flat", []string{"-top", "-nodecount=20"}, nil, 20},
		{"cpu.pprof", "CPU, cumulative, selected frames", []string{"-top", "-cum", "-nodecount=400"}, reProfileFrames, 32},
		{"allocs-end.pprof", "allocated bytes during the profile", []string{"-top", "-nodecount=12", "-sample_index=alloc_space", "-base=" + filepath.Join(out, "allocs-start.pprof")}, nil, 12},
	} {
		text, err := pprof(p.file, p.args...)
		if err != nil {
			return "", err
		}
		name := strings.NewReplacer(" ", "-", ",", "", "(", "", ")", "").Replace(p.title)
		if err := os.WriteFile(filepath.Join(out, "top-"+name+".txt"), []byte(text), 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&sec, "%s:\n\n```text\n%s```\n\n", p.title, topLines(text, p.keep, p.lines))
	}
	return sec.String(), nil
}

// reProfileFrames picks the frames that tell where a call's CPU goes: this
// repository, the go-sdk and its JSON and schema libraries, logging,
// metrics, the database client, the garbage collector and system calls.
var reProfileFrames = regexp.MustCompile(`tenantgraph/|go-sdk/mcp\.\(\*Streamable|go-sdk/mcp\.(applySchema|validate|readBatch|remarshal|unmarshalSchemaProperties|extractName|decodeMetaValue)|go-sdk/internal/json\.Unmarshal|go-sdk/internal/jsonrpc2\.(DecodeMessage|EncodeMessage)|segmentio/encoding/json\.\(\*Decoder\)\.readValue|jsonschema\.\(\*Resolved\)\.Validate|encoding/json\.Marshal$|log/slog\.\(\*Logger\)|prometheus|go-redis/v9\.\(\*baseClient\)\.process$|runtime\.gcBgMarkWorker$|runtime\.mallocgc$|runtime\.memclrNoHeapPointers$|Syscall6$|net/http\.\(\*conn\)\.serve$`)

// topLines keeps the column header of a pprof -top text and its first n
// lines (those matching keep, when set).
func topLines(text string, keep *regexp.Regexp, n int) string {
	var b strings.Builder
	inTable := false
	for line := range strings.Lines(text) {
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "flat"):
			inTable = true
			b.WriteString(line)
		case !inTable:
			if strings.HasPrefix(line, "Duration:") || strings.HasPrefix(line, "Showing nodes") {
				b.WriteString(line)
			}
		case n > 0 && (keep == nil || keep.MatchString(line)):
			b.WriteString(line)
			n--
		}
	}
	return b.String()
}
