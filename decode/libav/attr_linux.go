package libav

import "syscall"

// childAttr kills a worker when this process dies, even by SIGKILL. The signal follows the thread that
// started the worker: see startWorker.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
