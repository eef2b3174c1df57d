//go:build unix

package server

import "syscall"

// descriptorLimit is the process's soft limit on open files (RLIMIT_NOFILE),
// 0 when it cannot be read. Go raises the soft limit to the hard one at
// start-up, so this is what the process really has.
func descriptorLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return uint64(r.Cur)
}
