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
		return 0, 0, fmt.Errorf("torch: %s: libtorch %s has no CUDA device", d, Version())
	}
	major, minor, err = computeCapability(d.Index())
	if err != nil {
		return 0, 0, fmt.Errorf("torch: %s: %w", d, err)
	}
	return major, minor, nil
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
