// Package torch is vggish-go's thin layer over gotch: device selection, libtorch's thread count and
// version, copies between Go slices and tensors, and deterministic release of tensors.
//
// gotch tensors hold native memory that the Go garbage collector cannot see, so code in this module
// never leaves a tensor to a finalizer: every tensor has an owner (usually a Scope) that frees it on
// every path. gotch's Must* helpers call log.Fatal and are not used.
//
// Importing the package fixes glibc's mmap threshold at 128 KiB (see mmapThreshold), which keeps long
// jobs' memory flat; setting GLIBC_TUNABLES or MALLOC_MMAP_THRESHOLD_ leaves malloc as configured.
//
// gotch must first be adapted to the machine's libtorch: see the README and torch/adapt.
package torch

import (
	"errors"
	"strings"

	"github.com/sugarme/gotch"
)

// GotchVersion is the gotch release this module is built and tested with.
const GotchVersion = "v0.9.1"

// Err turns a gotch error into a short one: gotch appends a Go stack trace, and libtorch a C++
// backtrace, to the message that matters.
func Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.Replace(msg, "Libtorch API Error: ", "libtorch: ", 1)
	return errors.New(strings.TrimSpace(msg))
}

// CUDAAvailable reports whether libtorch was built with CUDA and sees a device.
func CUDAAvailable() bool { return gotch.CUDA.IsAvailable() }

// DeviceCount is the number of CUDA devices libtorch sees.
func DeviceCount() int {
	if !CUDAAvailable() {
		return 0
	}
	return int(gotch.CUDA.DeviceCount())
}
