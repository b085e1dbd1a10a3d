package torch

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>

// cudaDeviceGetAttribute's attributes for the compute capability (cudaDevAttrComputeCapabilityMajor
// and Minor), stable since CUDA 5.
enum { vggish_cc_major = 75, vggish_cc_minor = 76 };

typedef int (*vggish_get_attribute)(int *value, int attr, int device);

// vggish_compute_capability reads device's compute capability from the CUDA runtime that libtorch
// loaded. It returns -1 when no CUDA runtime is loaded, else the CUDA error code (0 for success).
static int vggish_compute_capability(int device, int *major, int *minor) {
	vggish_get_attribute get = (vggish_get_attribute)dlsym(RTLD_DEFAULT, "cudaDeviceGetAttribute");
	if (get == NULL) {
		return -1;
	}
	int err = get(major, vggish_cc_major, device);
	return err != 0 ? err : get(minor, vggish_cc_minor, device);
}
// vggish_libtorch_cuda_loaded reports whether libtorch's CUDA library is in the process: torch/adapt
// links it (--no-as-needed) exactly when libtorch was built with CUDA.
static int vggish_libtorch_cuda_loaded(void) {
	void *h = dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL) {
		return 0;
	}
	dlclose(h);
	return 1;
}
*/
import "C"

import (
	"errors"
	"fmt"
)

// ComputeCapability is a CUDA device's compute capability: (8, 0) for an A100, (9, 0) for an H100. It
// asks the CUDA runtime that libtorch loaded, looked up when called, so that a build against a CPU-only
// libtorch needs no CUDA headers or libraries; it fails on the CPU and where libtorch has no CUDA.
func ComputeCapability(d Device) (major, minor int, err error) {
	if !d.IsCUDA() {
		return 0, 0, fmt.Errorf("torch: %s has no compute capability", d)
	}
	if !CUDAAvailable() {
		return 0, 0, cudaError(d.String())
	}
	major, minor, err = computeCapability(d.Index())
	if err != nil {
		return 0, 0, fmt.Errorf("torch: %s: %w", d, err)
	}
	return major, minor, nil
}

// CUDABuild reports whether libtorch was built with CUDA (its CUDA library is loaded), whether or not
// it sees a device: false for a CPU-only build such as Debian's libtorch-dev.
func CUDABuild() bool { return C.vggish_libtorch_cuda_loaded() != 0 }

// ErrCPUOnly is wrapped by a [*CUDAError] when libtorch was built without CUDA.
var ErrCPUOnly = errors.New("libtorch is a CPU-only build")

// ErrNoCUDADevice is wrapped by a [*CUDAError] when libtorch has CUDA but does not see the device.
var ErrNoCUDADevice = errors.New("no such CUDA device")

// CUDAError is a CUDA device asked of a libtorch that cannot give it, either because libtorch was
// built without CUDA ([ErrCPUOnly]) or because it does not see that device ([ErrNoCUDADevice]: no
// GPU, no driver, or an index past the last). Tell them apart with errors.Is, or read the fields
// through errors.As.
type CUDAError struct {
	Device    string // the device asked for, as given: "cuda", "cuda:1"
	Version   string // libtorch's version
	CUDABuild bool   // libtorch was built with CUDA
	Devices   int    // the CUDA devices libtorch sees
}

func (e *CUDAError) Error() string {
	if !e.CUDABuild {
		return fmt.Sprintf("torch: device %q: libtorch %s is a CPU-only build (no libtorch_cuda): use the CPU, or a CUDA libtorch (LIBTORCH=...) adapted by go run github.com/vggish-go/vggish/torch/adapt", e.Device, e.Version)
	}
	return fmt.Sprintf("torch: device %q: libtorch %s (CUDA) sees %d CUDA device(s)", e.Device, e.Version, e.Devices)
}

// Unwrap is ErrCPUOnly or ErrNoCUDADevice.
func (e *CUDAError) Unwrap() error {
	if !e.CUDABuild {
		return ErrCPUOnly
	}
	return ErrNoCUDADevice
}

// cudaError is the *CUDAError for a request of device that libtorch cannot give.
func cudaError(device string) error {
	return &CUDAError{Device: device, Version: Version(), CUDABuild: CUDABuild(), Devices: DeviceCount()}
}

// computeCapability asks the loaded CUDA runtime for device index's compute capability.
func computeCapability(index int) (major, minor int, err error) {
	var ma, mi C.int
	switch code := C.vggish_compute_capability(C.int(index), &ma, &mi); code {
	case 0:
		return int(ma), int(mi), nil
	case -1:
		return 0, 0, errors.New("no CUDA runtime is loaded to ask its compute capability")
	default:
		return 0, 0, fmt.Errorf("cudaDeviceGetAttribute failed with CUDA error %d", int(code))
	}
}
