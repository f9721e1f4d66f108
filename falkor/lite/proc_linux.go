package lite

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr puts the server in its own process group (a terminal's Ctrl-C reaches only
// the parent, which stops it in order) and has the kernel SIGKILL it when the parent
// dies. Pdeathsig fires when the OS thread that started the child exits, not the process:
// Start therefore starts the child from a goroutine locked to its thread for the child's
// whole life (see launch).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// parentDeathKills is true where the kernel kills the server when its parent dies.
const parentDeathKills = true

// processAlive reports whether pid exists (zombies included).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
