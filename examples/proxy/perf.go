package main

import (
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set.
//
// A tool call allocates about 0.5 MiB, nearly all of it short-lived JSON
// decoding buffers of the go-sdk (a 32 KiB buffer per decode), while the
// live heap stays small (a few MiB). With Go's default GOGC=100 the
// collector then runs every few dozen calls and took a quarter of the
// proxy's CPU in examples/bench; at 400 it runs a fifth as often, for a
// peak heap of about five times the live heap (tens of MiB).
const defaultGCPercent = 400

// tuneGC sets the garbage collector's target to defaultGCPercent unless the
// operator chose one: GOGC set (any value, "off" included) wins. It returns
// the percentage in force afterwards.
//
// GOMEMLIMIT, when set, still applies on top of it: near the limit the
// collector runs as often as needed to stay under it, whatever the
// percentage, so a container's memory limit stays safe (set GOMEMLIMIT to
// about 90% of it). Without GOMEMLIMIT the heap may grow to five times the
// live heap between collections instead of twice.
//
// Call it once at start, before serving (main.go: right after the config is
// parsed).
func tuneGC(getenv func(string) string) int {
	if strings.TrimSpace(getenv("GOGC")) != "" {
		s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
		rtmetrics.Read(s)
		if s[0].Value.Kind() == rtmetrics.KindUint64 {
			return int(s[0].Value.Uint64())
		}
		return -1
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}
