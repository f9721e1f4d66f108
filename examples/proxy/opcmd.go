package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tenantgraph/tenantgraph/falkor"
	"github.com/tenantgraph/tenantgraph/graphname"
	"github.com/tenantgraph/tenantgraph/tenancy"
)

// The operator's sub-commands work on the FalkorDB of FALKORDB_URL (and
// FALKORDB_CLUSTER, FALKORDB_CLUSTER_ADDRS, RATE_LIMIT_PREFIX) while the
// proxies keep serving:
//
//	go run ./examples/proxy backup  -tenant acme -file acme.backup.json
//	go run ./examples/proxy restore -file acme.backup.json
//	go run ./examples/proxy erase   -tenant acme -confirm acme
//	go run ./examples/proxy usage   -tenant acme -days 30
//
// An embedded FalkorDB lives only as long as its proxy: use the /admin/
// endpoints for it.

// subcommands are the operator's commands.
var subcommands = map[string]bool{"backup": true, "restore": true, "erase": true, "usage": true}

// runOperation runs a sub-command; it returns the exit status.
func runOperation(name string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant id")
	file := fs.String("file", "", "backup file to write (backup; - for stdout) or read (restore; - for stdin)")
	confirm := fs.String("confirm", "", "erase: the tenant id again")
	days := fs.Int("days", 7, "usage: days to report (today is day 1)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: proxy %s [flags]\n\nThe FalkorDB comes from FALKORDB_URL (and FALKORDB_CLUSTER, FALKORDB_CLUSTER_ADDRS).\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "proxy %s: "+format+"\n", append([]any{name}, a...)...)
		return 2
	}
	cfg, err := parseConfig(nil, getenv, io.Discard)
	if err != nil {
		return bad("%v", err)
	}
	if cfg.FalkorDBURL == "" {
		return bad("set FALKORDB_URL to the FalkorDB the proxies use")
	}
	switch {
	case name != "restore" && *tenant == "":
		return bad("-tenant is required")
	case (name == "backup" || name == "restore") && *file == "":
		return bad("-file is required")
	case name == "erase" && *confirm != *tenant:
		return bad("erasing cannot be undone: repeat the tenant as -confirm %s", *tenant)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	db, err := falkor.Open(ctx, cfg.FalkorDBURL, falkor.Options{Cluster: cfg.Cluster, ClusterAddrs: cfg.ClusterAddrs, MaxTimeout: time.Minute})
	if err != nil {
		fmt.Fprintf(stderr, "proxy %s: connecting to FalkorDB: %v\n", name, err)
		return 1
	}
	defer db.Close()
	ops := &tenantOps{db: db, r: graphname.Default(), ratePref: cfg.RateLimitPrefix}
	if cfg.Usage {
		ops.usage = tenancy.NewUsage(db.Redis(), nil)
		defer ops.usage.Close(context.Background())
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "proxy %s: %s\n", name, plainError(err))
		return 1
	}
	out := json.NewEncoder(stdout)
	out.SetIndent("", " ")
	switch name {
	case "backup":
		w, closeFile := stdout, func() error { return nil }
		if *file != "-" {
			f, err := os.OpenFile(*file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fail(err)
			}
			w, closeFile = f, f.Close
		}
		n, err := ops.backup(ctx, *tenant, w)
		if cerr := closeFile(); err == nil {
			err = cerr
		}
		if err != nil {
			if *file != "-" {
				os.Remove(*file)
			}
			return fail(err)
		}
		fmt.Fprintf(stderr, "proxy backup: %d graphs of tenant %q written to %s\n", n, *tenant, *file)
	case "restore":
		var r io.Reader = os.Stdin
		if *file != "-" {
			f, err := os.Open(*file)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			r = f
		}
		f, err := ops.restore(ctx, r, *tenant)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "proxy restore: %d graphs of tenant %q restored\n", len(f.Graphs), f.Tenant)
	case "erase":
		e, err := ops.erase(ctx, *tenant)
		if err != nil {
			return fail(err)
		}
		out.Encode(e)
		fmt.Fprintf(stderr, "proxy erase: tenant %q erased; cached results in running proxies expire within RESULT_CACHE (POST /admin/erase also drops that replica's)\n", *tenant)
	case "usage":
		if ops.usage == nil {
			return bad("usage counters are off (USAGE=false)")
		}
		rep, err := ops.usage.Report(ctx, *tenant, *days)
		if err != nil {
			return fail(err)
		}
		out.Encode(rep)
	}
	return 0
}
