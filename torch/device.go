package torch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
)

// ParseDevice resolves a device name: "auto" (or "") is the first CUDA device when libtorch has one and
// the CPU otherwise; "cpu"; "cuda" (device 0); "cuda:N".
func ParseDevice(name string) (gotch.Device, error) {
	switch s := strings.ToLower(strings.TrimSpace(name)); {
	case s == "" || s == "auto":
		if CUDAAvailable() {
			return gotch.CudaBuilder(0), nil
		}
		return gotch.CPU, nil
	case s == "cpu":
		return gotch.CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if s != "cuda" {
			n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
			if err != nil || n < 0 {
				return gotch.CPU, fmt.Errorf("device %q: want cuda:N with N a device index", name)
			}
			idx = n
		}
		if n := DeviceCount(); idx >= n {
			return gotch.CPU, fmt.Errorf("device %q: libtorch %s sees %d CUDA device(s)", name, Version(), n)
		}
		return gotch.CudaBuilder(uint(idx)), nil
	default:
		return gotch.CPU, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", name)
	}
}

// DeviceName is the inverse of ParseDevice for a resolved device.
func DeviceName(d gotch.Device) string {
	if d.IsCuda() {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return "cpu"
}
