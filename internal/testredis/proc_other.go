//go:build !linux

package testredis

import (
	"os/exec"
	"syscall"
)

// sysProcAttr has nothing portable to add outside Linux; Close still kills
// the process on a normal test run.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
}
