// Package child starts the helper processes vggish runs (ffmpeg, decoding workers) so that they end
// with it: on Linux they get SIGKILL when this process dies, even by SIGKILL, when no deferred Close
// can run.
package child

import (
	"os/exec"
	"runtime"
)

// Start starts cmd and waits for it in a goroutine, which calls exited with Wait's error. The
// parent-death signal is sent when the thread that started the child ends, not the process
// (go.dev/issue/27505), so that goroutine holds its OS thread until the child has exited.
func Start(cmd *exec.Cmd, exited func(error)) error {
	cmd.SysProcAttr = attr()
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited(cmd.Wait())
	}()
	return <-started
}
