package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

func runInfo(args []string, s cli.Stdio) error {
	if err := cli.ParseInfo(args, s); err != nil {
		return err
	}
	n, source := torch.UsableCPUs()
	fmt.Fprintf(s.Out, "libtorch  %s\n", torch.Version())
	fmt.Fprintf(s.Out, "gotch     %s\n", torch.GotchVersion)
	fmt.Fprintf(s.Out, "cuda      %v\n", torch.CUDAAvailable())
	fmt.Fprintf(s.Out, "devices   %d\n", torch.DeviceCount())
	fmt.Fprintf(s.Out, "threads   %d (the default: one per usable CPU, from %s; libtorch's own default here: %d)\n", n, source, torch.Threads())
	fmt.Fprintf(s.Out, "blas      %s\n", blas())
	devices := []torch.Device{torch.CPU}
	for i := range torch.DeviceCount() {
		devices = append(devices, torch.CUDA(i))
	}
	for _, d := range devices {
		fmt.Fprintf(s.Out, "precision %s: %s\n", d, nativePrecisions(d))
	}
	return nil
}

// blas names the BLAS libtorch's products run on, and says so when it is the reference one.
func blas() string {
	desc, reference := torch.BLAS()
	if reference {
		desc += ": the reference implementation, " + torch.ReferenceBLASFix
	}
	return desc
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
	if runs, _, err := vggish.BF16.Resolve(device); err == nil && runs != vggish.BF16 {
		s += fmt.Sprintf("; bf16 runs as %s here", runs)
	} else if !slices.Contains(native, vggish.BF16) {
		s += "; bf16 runs, slowly"
	}
	if !device.IsCUDA() {
		s += "; tf32 is fp32 on the CPU; fp16 is CUDA only"
	}
	return s
}
