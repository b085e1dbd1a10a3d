package vggish

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sugarme/gotch"
	"golang.org/x/sys/cpu"

	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/torch"
)

// Precision is the arithmetic the network runs in. Whatever the precision, the log-mel features are
// computed in float64, and the embeddings come back float32, the PCA post-processing running on them
// in float32 after the network.
type Precision string

const (
	// FP32 is float32 throughout: the reference's numbers (the default).
	FP32 Precision = spec.FP32
	// BF16 runs the network in bfloat16, on the CPU or CUDA: the weights are converted once, at load,
	// and the activations are bfloat16. It pays on CPUs with bfloat16 units (AVX512-BF16, AMX-BF16)
	// and on GPUs of compute capability 8.0 and up; elsewhere it runs, slowly (see Model.Warnings).
	// On a CPU without AVX-512 it is FP32.
	BF16 Precision = spec.BF16
	// FP16 runs the network in float16 on CUDA (tensor cores from compute capability 7.0). libtorch's
	// CPU kernels do not run it: New refuses it on the CPU.
	FP16 Precision = spec.FP16
	// TF32 keeps float32 weights and activations and lets CUDA convolutions and matrix products round
	// their inputs to TensorFloat-32 (compute capability 8.0 and up). On the CPU it is FP32.
	//
	// libtorch's TF32 switch is process-wide: New refuses a CUDA model whose TF32 setting differs from
	// that of a CUDA model still open in the process.
	TF32 Precision = spec.TF32
)

// precisions are the valid precisions, in the order messages list them.
var precisions = []Precision{FP32, BF16, FP16, TF32}

// dtype is the type the network's weights and activations have at precision p.
func (p Precision) dtype() gotch.DType {
	switch p {
	case BF16:
		return gotch.BFloat16
	case FP16:
		return gotch.Half
	}
	return gotch.Float
}

// Resolve validates p for device and says what runs there, as New does: TF32 is FP32 on the CPU, and so
// is BF16 on a CPU without AVX-512. The warnings say what the user asked for that does not happen as
// asked (Model.Warnings).
func (p Precision) Resolve(device torch.Device) (Precision, []string, error) {
	if p == "" {
		p = FP32
	}
	if !slices.Contains(precisions, p) {
		return "", nil, fmt.Errorf("vggish: precision %q: want %s", p, joinPrecisions(precisions))
	}
	if !device.IsCUDA() {
		switch {
		case p == FP16:
			return "", nil, errors.New("vggish: precision fp16 runs on CUDA only (libtorch's CPU kernels lack float16 convolutions); on the CPU use bf16")
		case p == TF32:
			return FP32, []string{"precision tf32 applies to CUDA only: on the CPU the network runs in fp32"}, nil
		case p == BF16 && !tensor.MKLDNNRuns(gotch.BFloat16):
			// libtorch's fallback kernels ran 13x slower than fp32 there, and drifted to a cosine of 0.995.
			return FP32, []string{"precision bf16 needs AVX-512 (BW, VL and DQ) for libtorch's bfloat16 kernels: on this CPU the network runs in fp32"}, nil
		}
	}
	if p == FP32 {
		return p, nil, nil
	}
	native, units, err := NativePrecisions(device)
	if err != nil || slices.Contains(native, p) {
		return p, nil, nil // an unknown compute capability is no reason to warn
	}
	if p == TF32 {
		return p, []string{fmt.Sprintf("%s (%s) has no TF32 units: tf32 runs as fp32 there", device, units)}, nil
	}
	if !device.IsCUDA() {
		return p, []string{fmt.Sprintf("this CPU has no bfloat16 units (AVX512-BF16 or AMX-BF16): libtorch emulates %s, slower than fp32", p)}, nil
	}
	return p, []string{fmt.Sprintf("%s (%s) has no %s tensor cores: %s runs slower than it would on a newer GPU, perhaps slower than fp32", device, units, p, p)}, nil
}

// NativePrecisions lists the precisions that device runs on units built for them, and names those
// units: on the CPU, fp32 and, with AVX512-BF16 or AMX-BF16 units, bf16; on CUDA, by compute
// capability: fp32, fp16 from 7.0 (tensor cores), tf32 and bf16 from 8.0. It fails when a GPU's
// compute capability cannot be read.
func NativePrecisions(device torch.Device) (native []Precision, units string, err error) {
	native = []Precision{FP32}
	if !device.IsCUDA() {
		var names []string
		if cpu.X86.HasAVX512BF16 {
			names = append(names, "AVX512-BF16")
		}
		if cpu.X86.HasAMXBF16 {
			names = append(names, "AMX-BF16")
		}
		if len(names) == 0 {
			return native, "no bfloat16 units", nil
		}
		return append(native, BF16), strings.Join(names, ", "), nil
	}
	major, minor, err := torch.ComputeCapability(device)
	if err != nil {
		return nil, "", err
	}
	if major >= 7 {
		native = append(native, FP16)
	}
	if major >= 8 {
		native = append(native, BF16, TF32)
	}
	return native, fmt.Sprintf("compute capability %d.%d", major, minor), nil
}

func joinPrecisions(ps []Precision) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// tf32 counts the CUDA models open in the process by whether they run with TF32: libtorch's switch is
// process-wide, and flipping it for a new model would change the numbers of the open ones.
var tf32 struct {
	sync.Mutex
	open [2]int // without, with
}

// claimTF32 sets libtorch's TF32 switch for a new CUDA model at precision p and returns the function
// that gives the claim back when the model closes.
func claimTF32(p Precision) (release func(), err error) {
	on := 0
	if p == TF32 {
		on = 1
	}
	tf32.Lock()
	defer tf32.Unlock()
	if n := tf32.open[1-on]; n > 0 {
		state := [2]string{"off", "on"}
		return nil, fmt.Errorf("vggish: precision %s on CUDA needs libtorch's TF32 switch %s, and %d CUDA model(s) open in this process need it %s (the switch is process-wide); close them first",
			p, state[on], n, state[1-on])
	}
	tf32.open[on]++
	tensor.SetTF32(on == 1)
	return func() {
		tf32.Lock()
		defer tf32.Unlock()
		tf32.open[on]--
	}, nil
}
