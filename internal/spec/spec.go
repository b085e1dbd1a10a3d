// Package spec holds what the library and vggish's command line both name: bounds, defaults and the
// names of options. It is pure Go, so that the command line's front door (cmd/vggish) can define and
// check every flag without linking libtorch; the packages that run libtorch take their constants from
// here.
package spec

import (
	"fmt"
	"math"
	"os"
	"runtime"
)

// Hop bounds, in seconds: one log-mel frame, and one example every 2.8 hours.
const (
	MinHop float64 = 0.01
	MaxHop float64 = 10000
)

// HopFrames is a hop of hop seconds in 10 ms log-mel frames (rounded to even), or an error when it is
// outside MinHop..MaxHop.
func HopFrames(hop float64) (int, error) {
	h := math.RoundToEven(hop * 100)
	if math.IsNaN(hop) || h < MinHop*100 || h > MaxHop*100 {
		return 0, fmt.Errorf("example hop %g s: want %g to %g s (rounded to 10 ms)", hop, MinHop, MaxHop)
	}
	return int(h), nil
}

// The tail policies' names (package preprocess's Tail).
const (
	Drop   = "drop"
	Pad    = "pad"
	Repeat = "repeat"
)

// The channel modes' names (package vggish's Channels).
const (
	Mix  = "mix"
	Each = "each"
)

// The network variants' names (package vggish's Variant).
const (
	Towhee      = "towhee"
	TorchVGGish = "torchvggish"
)

// The precisions' names (package vggish's Precision), in the order messages list them.
const (
	FP32 = "fp32"
	BF16 = "bf16"
	FP16 = "fp16"
	TF32 = "tf32"
)

// Precisions are the valid precisions' names.
var Precisions = []string{FP32, BF16, FP16, TF32}

// DefaultBatchSize is the most clips a forward pass takes by default (see package vggish).
const DefaultBatchSize = 256

// Bounds of what sizes a run, the library's options as the command line's flags. A batch takes about
// 1 MB a clip (on the CPU, batch 256 peaked 243 MB above batch 32): 4096 clips bound it near 4.5 GB,
// where --batch 100000000 once tried to allocate 2.4 TB up front and crashed. More workers than 1024
// only multiply decoders and ffmpeg processes. libtorch threads far beyond the CPUs make it crawl: 1024
// threads on 2 CPUs took over two minutes for a 3 s file, 100000 never finished.
const (
	MaxBatch      = 4096
	MaxWorkers    = 1024
	ThreadsPerCPU = 8
)

// MaxEachChannels is the most channels an input may have to be embedded channel by channel: each is
// preprocessed at once, with its own buffers and its own OS thread in libtorch (255 channels took 2.6 GB;
// a 262 KB WAV declaring 65535 ran the process out of memory and threads).
const MaxEachChannels = 64

// MaxThreads is the most libtorch threads a process may ask for: ThreadsPerCPU per usable CPU.
func MaxThreads() int {
	n, _ := UsableCPUs()
	return ThreadsPerCPU * n
}

// StdinArg is the input argument that means standard input.
const StdinArg = "-"

// Parquet is the name of the output format that writes Parquet parts.
const Parquet = "parquet"

// UsableCPUs is the number of CPUs this process may use, and where that number comes from. It is Go's
// GOMAXPROCS, which follows the CPU affinity mask and the cgroup CPU quota (a container's CPU limit)
// unless the GOMAXPROCS environment variable sets it. libtorch's own default is one thread per core of
// the machine (Debian's build: one thread), blind to both.
func UsableCPUs() (n int, source string) {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return runtime.GOMAXPROCS(0), "GOMAXPROCS=" + v
	}
	return runtime.GOMAXPROCS(0), "CPU affinity and cgroup quota"
}

// GotchVersion is the gotch release this module is built and tested with.
const GotchVersion = "v0.9.1"
