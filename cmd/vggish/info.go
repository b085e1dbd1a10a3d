package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("info", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "libtorch  %s\n", torch.Version())
	fmt.Fprintf(stdout, "gotch     %s\n", torch.GotchVersion)
	fmt.Fprintf(stdout, "cuda      %v\n", torch.CUDAAvailable())
	fmt.Fprintf(stdout, "devices   %d\n", torch.DeviceCount())
	n, source := torch.UsableCPUs()
	fmt.Fprintf(stdout, "threads   %d (the default: one per usable CPU, from %s; libtorch's own default here: %d)\n", n, source, torch.Threads())
	devices := []torch.Device{torch.CPU}
	for i := range torch.DeviceCount() {
		devices = append(devices, torch.CUDA(i))
	}
	for _, d := range devices {
		fmt.Fprintf(stdout, "precision %s: %s\n", d, nativePrecisions(d))
	}
	return nil
}

// nativePrecisions says which --precision values device runs on units built for them.
func nativePrecisions(device torch.Device) string {
	native, units, err := vggish.NativePrecisions(device)
	if err != nil {
		return fmt.Sprintf("unknown compute capability (%v)", err)
	}
	names := make([]string, len(native))
	for i, p := range native {
		names[i] = string(p)
	}
	s := fmt.Sprintf("%s native (%s)", strings.Join(names, ", "), units)
	if !slices.Contains(native, vggish.BF16) {
		s += "; bf16 runs, slowly"
	}
	if !device.IsCUDA() {
		s += "; tf32 is fp32 on the CPU; fp16 is CUDA only"
	}
	return s
}
