//go:build unix

package falkortest_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processRunning reports whether pid exists and is not a zombie.
func processRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || !strings.Contains(string(stat), ") Z")
}
