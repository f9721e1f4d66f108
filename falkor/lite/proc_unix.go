//go:build unix && !linux

package lite

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr puts the server in its own process group. This system has no parent-death
// signal: if the parent is killed with SIGKILL, the server lives on until stopped.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// parentDeathKills is true where the kernel kills the server when its parent dies.
const parentDeathKills = false

// processAlive reports whether pid exists (zombies included).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
