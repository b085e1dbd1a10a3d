package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is where tensors live: the CPU or one CUDA device. The zero value is the CPU.
type Device struct {
	cuda  bool
	index int
}

// CPU is the host: the zero Device. (A variable, as a struct cannot be a constant; not meant to be
// assigned.)
var CPU = Device{}

// CUDA is CUDA device i.
func CUDA(i int) Device { return Device{cuda: true, index: i} }

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d.cuda }

// Index is the CUDA device's index (0 for the CPU).
func (d Device) Index() int { return d.index }

// String is the device's name as ParseDevice reads it: "cpu" or "cuda:N".
func (d Device) String() string {
	if d.cuda {
		return fmt.Sprintf("cuda:%d", d.index)
	}
	return "cpu"
}

// ParseDevice resolves a device name: "auto" (or "") is the first CUDA device when libtorch has one and
// the CPU otherwise; "cpu"; "cuda" (device 0); "cuda:N". A CUDA device that libtorch cannot give is a
// [*CUDAError].
func ParseDevice(name string) (Device, error) {
	switch s := strings.ToLower(strings.TrimSpace(name)); {
	case s == "" || s == "auto":
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case s == "cpu":
		return CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if s != "cuda" {
			n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
			if err != nil || n < 0 {
				return CPU, fmt.Errorf("torch: device %q: want cuda:N with N a device index", name)
			}
			idx = n
		}
		if idx >= DeviceCount() {
			return CPU, cudaError(name)
		}
		return CUDA(idx), nil
	default:
		return CPU, fmt.Errorf("torch: device %q: want auto, cpu, cuda or cuda:N", name)
	}
}
