package torch

/*
// Defined in gotch's libtch (torch_api.cpp) and in the C++ that torch/adapt adds to it (csrc/).
void at_set_num_threads(int n_threads);
int at_get_num_threads();
extern const char vggish_libtorch_version[];
void vggish_cache_cpu_allocations(size_t min_bytes, size_t min_cache);
void vggish_trim_cpu_cache();
void vggish_single_threaded_blas();
char *get_and_reset_last_err();
#include <stdlib.h>
#include <malloc.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	_ "github.com/sugarme/gotch/libtch" // links the C functions declared above

	"github.com/vggish-go/vggish/internal/spec"
	_ "github.com/vggish-go/vggish/torch/internal/adapted" // stops an unadapted build early
)

// mmapThreshold is the allocation size from which glibc always maps memory afresh and unmaps it on
// free, and from which libtorch's CPU tensors come from vggish-go's cache instead (see csrc/
// vggish_alloc.cpp in torch/adapt): glibc would otherwise raise that threshold to the size of each
// large block freed (up to 32 MB), after which many-megabyte temporaries come from per-thread arenas
// that fragment (an hour of audio grew the process by 534 MB that way), while mapping each afresh
// costs a third of the CPU time in page faults.
const mmapThreshold = 128 << 10

// cacheMinCache is the least the CPU tensor cache keeps (it keeps up to the peak in use).
const cacheMinCache = 64 << 20

func init() {
	// A user who tunes glibc malloc through the environment keeps their settings.
	if os.Getenv("GLIBC_TUNABLES") == "" && os.Getenv("MALLOC_MMAP_THRESHOLD_") == "" {
		C.mallopt(C.M_MMAP_THRESHOLD, C.int(mmapThreshold))
	}
	if os.Getenv("VGGISH_CPU_ALLOCATOR") != "libtorch" {
		C.vggish_cache_cpu_allocations(mmapThreshold, cacheMinCache)
	}
	// OpenBLAS's pool busy-waits beside libtorch's threads; the products split across those instead.
	C.vggish_single_threaded_blas()
}

// TrimCPUCache gives the kernel back the freed memory of large CPU tensors that vggish-go keeps for
// reuse (up to the most that was in use at once, see mmapThreshold), and counts that most afresh from
// now. Call it after a one-off phase that freed much: loading weights onto a GPU stages them in CPU
// tensors, which the cache would otherwise keep for the process's life. A Model running meanwhile
// fills its buffers again, once.
func TrimCPUCache() { C.vggish_trim_cpu_cache() }

// Version is the libtorch version gotch was compiled against, from libtorch's own headers.
func Version() string { return C.GoString((*C.char)(unsafe.Pointer(&C.vggish_libtorch_version))) }

// SetThreads sets libtorch's intra-op thread count (at::set_num_threads) for the whole process, 1 to 8
// per usable CPU (libtorch takes a C int, and far more threads than CPUs make it crawl). gotch has no
// Go call for it.
func SetThreads(n int) error {
	if n < 1 || n > spec.MaxThreads() {
		cpus, source := UsableCPUs()
		return fmt.Errorf("torch: thread count %d: want 1 to %d (%d× the %d usable CPUs, from %s)", n, spec.MaxThreads(), spec.ThreadsPerCPU, cpus, source)
	}
	threadsMu.Lock()
	defer threadsMu.Unlock()
	if err := setThreads(n); err != nil {
		return err
	}
	threads.Store(int64(n))
	return nil
}

// AdoptThreads makes the calling OS thread run libtorch's parallel regions with the process's count
// (the count SetThreads set last) and returns that count. libtorch's OpenMP builds keep the count per
// OS thread, adopted when a thread first runs a parallel region, so a goroutine that keeps its OS
// thread (runtime.LockOSThread) calls it to follow a SetThreads made elsewhere since.
func AdoptThreads() (int, error) {
	threadsMu.Lock() // a SetThreads now would otherwise be undone by the older count
	defer threadsMu.Unlock()
	n := Threads()
	return n, setThreads(n)
}

func setThreads(n int) error {
	runtime.LockOSThread() // the error is thread-local on the C++ side
	defer runtime.UnlockOSThread()
	C.at_set_num_threads(C.int(n))
	return lastError()
}

var (
	threadsMu sync.Mutex   // orders SetThreads and AdoptThreads
	threads   atomic.Int64 // the count SetThreads set last, 0 before
)

// Threads is libtorch's intra-op thread count: the count SetThreads set last, else libtorch's own.
// libtorch's OpenMP builds keep the count per OS thread (an OS thread adopts the process's count when
// it first runs a parallel region), so asking libtorch from an arbitrary thread may answer with a stale
// count.
func Threads() int {
	if n := threads.Load(); n > 0 {
		return int(n)
	}
	return threadCount()
}

// threadCount is libtorch's thread count on the calling OS thread.
func threadCount() int { return int(C.at_get_num_threads()) }

// UsableCPUs is the number of CPUs this process may use, and where that number comes from. It is Go's
// GOMAXPROCS, which follows the CPU affinity mask and the cgroup CPU quota (a container's CPU limit)
// unless the GOMAXPROCS environment variable sets it. libtorch's own default is one thread per core of
// the machine (Debian's build: one thread), blind to both.
func UsableCPUs() (n int, source string) { return spec.UsableCPUs() }

func lastError() error {
	p := C.get_and_reset_last_err()
	if p == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(p))
	return errors.New(C.GoString(p))
}
