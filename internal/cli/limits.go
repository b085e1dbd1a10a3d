package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
)

// What loading and running the model takes, measured with `vggish embed` of a 3 s file on the CPU at
// 2 threads (Debian 12, libtorch 1.13): 3.36 GB of address space at its peak (libtorch's and
// OpenBLAS's reservations, thread stacks, malloc arenas: most never touched; it ran under `ulimit -v`
// 3.5 GB, not 3.0 GB), 572 MB resident. Under an address-space limit below the first, libtorch fails
// to allocate the weights, or worse, OpenBLAS spins in its allocator or the Go runtime aborts; more
// threads and workers take more. Below about 2 GB the Go runtime cannot start at all (exit status 2,
// before any of this runs).
const (
	needAddressSpace = 3_300_000_000
	wantAddressSpace = 6_000_000_000 // below it, a warning: larger runs may not fit
	needMemory       = 600_000_000
	wantMemory       = 1_500_000_000
)

// CheckMemoryLimits refuses, before the model loads, limits it cannot run under: the address-space
// limit (RLIMIT_AS, `ulimit -v`, as batch schedulers set) and the cgroup's memory.max; it warns on w
// where a larger run may not fit.
func CheckMemoryLimits(w io.Writer) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err == nil && lim.Cur != ^uint64(0) {
		if err := checkLimit(w, "the address-space limit (ulimit -v)", lim.Cur, needAddressSpace, wantAddressSpace); err != nil {
			return err
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil { // "max": none
			return checkLimit(w, "the cgroup's memory limit (memory.max)", v, needMemory, wantMemory)
		}
	}
	return nil
}

func checkLimit(w io.Writer, what string, limit, need, want uint64) error {
	switch {
	case limit < need:
		return fmt.Errorf("%s is %s: the model needs about %s (measured at 2 threads; more threads need more): raise it, or run elsewhere",
			what, humanize.IBytes(limit), humanize.IBytes(need))
	case limit < want:
		fmt.Fprintf(w, "warning: %s is %s: the model needs about %s, and a large run with many threads or workers may not fit\n",
			what, humanize.IBytes(limit), humanize.IBytes(need))
	}
	return nil
}
