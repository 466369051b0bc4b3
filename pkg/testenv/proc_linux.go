package testenv

import "syscall"

// sysProcAttr makes the kernel kill a child when the test binary dies
// without running its cleanups (a go test timeout, a crash), so no
// apiserver outlives its test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
