// Package torch reports on the libtorch that vggish-go runs on and sets its process-wide options:
// its [Version], its intra-op thread count ([Threads], [SetThreads], [UsableCPUs]), and the devices it
// sees ([CUDAAvailable], [CUDABuild], [DeviceCount], [ComputeCapability]; a [Device] names one,
// [ParseDevice] reads its name, and a CUDA device libtorch cannot give is a [*CUDAError]). No gotch type crosses this API; the tensor glue that uses gotch is internal to the
// module.
//
// Importing the package makes libtorch allocate CPU tensors of 128 KiB and more from a cache that
// reuses freed blocks (VGGISH_CPU_ALLOCATOR=libtorch keeps libtorch's own allocator), and fixes
// glibc's mmap threshold at 128 KiB (unless GLIBC_TUNABLES or MALLOC_MMAP_THRESHOLD_ is set): no page
// faults for each batch's activations, and long jobs' memory stays flat (see mmapThreshold).
//
// gotch must first be adapted to the machine's libtorch: see the README and torch/adapt.
package torch

import (
	"github.com/sugarme/gotch"

	"github.com/vggish-go/vggish/internal/spec"
)

// GotchVersion is the gotch release this module is built and tested with.
const GotchVersion = spec.GotchVersion

// CUDAAvailable reports whether libtorch was built with CUDA and sees a device.
func CUDAAvailable() bool { return gotch.CUDA.IsAvailable() }

// DeviceCount is the number of CUDA devices libtorch sees.
func DeviceCount() int {
	if !CUDAAvailable() {
		return 0
	}
	return int(gotch.CUDA.DeviceCount())
}
