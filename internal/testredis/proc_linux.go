//go:build linux

package testredis

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts redis-server in its own process group, so Kill reaches
// anything it forks, and asks the kernel to kill it if the test binary dies
// without running its cleanups (a panic or a -timeout), so no orphan keeps
// running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) {
	// The negative pid addresses the whole group; fall back to the process
	// itself should the group be gone already.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		cmd.Process.Kill()
	}
}
