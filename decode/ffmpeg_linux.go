package decode

import "syscall"

// childAttr kills ffmpeg when this process dies, even by SIGKILL, when no deferred Close can run. The
// signal follows the thread that started the child: see startFFmpeg.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
