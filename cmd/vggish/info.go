package main

import (
	"fmt"
	"io"

	"github.com/vggish-go/vggish/torch"
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
	return nil
}
