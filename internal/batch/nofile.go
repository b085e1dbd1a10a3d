package batch

import "syscall"

// Files in flight are bounded by design rather than by the limit of the day: each holds its input open
// and, through ffmpeg, a child's pipes, so a run at the default capacity (a thousand files, to keep
// batches of one-clip files full) would fail files with "too many open files" under the common
// `ulimit -n 1024`. Go raises the soft RLIMIT_NOFILE to the hard one when a program starts (since Go
// 1.19, restoring it for child processes), so the limit read here is already the most the process may
// have.
const (
	maxFilesInFlight = 256 // a few hundred keep any batch full; more only hold descriptors
	fdsPerFile       = 4   // the input, and ffmpeg's stdout and stderr pipes with a spare
	fdReserve        = 32  // the process's own: standard streams, the runtime's, libtorch's, outputs, locks
)

// filesInFlight is the most inputs a run holds open at once under the open-file limit: at least 1, at
// most maxFilesInFlight.
func filesInFlight() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		return maxFilesInFlight
	}
	return max(1, min(maxFilesInFlight, (int(lim.Cur)-fdReserve)/fdsPerFile))
}
