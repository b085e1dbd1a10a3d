package cli

import (
	"fmt"
	"slices"

	"github.com/vggish-go/vggish/internal/spec"
)

// AudioFlags are the flags that cut audio into examples: --hop and --tail (with its alias --pad-tail),
// defined here once for embed, fad and logmel.
type AudioFlags struct {
	hop     *float64
	tail    *Choice
	padTail *bool
}

// addAudioFlags adds the audio flags to fs; unit names what a hop separates (a clip, an example).
func addAudioFlags(fs *FlagSet, unit string) *AudioFlags {
	a := &AudioFlags{tail: NewChoice("tail policy", spec.Drop, spec.Pad, spec.Repeat)}
	a.hop = fs.Float64("hop", 0.96, fmt.Sprintf("seconds between %[1]s starts, %[2]g to %[3]g (rounded to 10 ms); a hop longer than a %[1]s spaces them out",
		unit, spec.MinHop, spec.MaxHop))
	fs.Var(a.tail, "tail", fmt.Sprintf("`POLICY` for the last, partial %[1]s and audio shorter than one %[1]s (0.975 s): drop (the reference),\npad (with silence) or repeat (the %[1]s's own audio, looped)", unit))
	a.padTail = fs.Bool("pad-tail", false, "the same as --tail pad")
	return a
}

// check checks the parsed flags.
func (a *AudioFlags) check(fs *FlagSet) error {
	if *a.padTail && a.tail.value != spec.Drop && a.tail.value != spec.Pad {
		return fs.Misuse("--pad-tail and --tail %v disagree", a.tail)
	}
	return fs.AsMisuse(checkHop(*a.hop))
}

// Hop is --hop, in seconds.
func (a *AudioFlags) Hop() float64 { return *a.hop }

// Tail is the tail policy's name: --tail, or pad with --pad-tail.
func (a *AudioFlags) Tail() string {
	if *a.padTail {
		return spec.Pad
	}
	return a.tail.value
}

// ModelFlags are the flags that load and run the model, defined here once for embed and fad.
type ModelFlags struct {
	Weights, Device         *string
	Batch, Workers, Threads *int
	Audio                   *AudioFlags
	CPUs                    int    // the usable CPUs,
	CPUSource               string // and where that number comes from
}

func addModelFlags(fs *FlagSet) *ModelFlags {
	m := &ModelFlags{Audio: addAudioFlags(fs, "clip")}
	m.CPUs, m.CPUSource = spec.UsableCPUs()
	m.Weights = fs.String("weights", "", "VGGish state dict `FILE` (default: the published vggish-10086976.pth, downloaded once; see `vggish weights`)")
	m.Device = fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	m.Batch = fs.Int("batch", spec.DefaultBatchSize, fmt.Sprintf("most clips per forward pass, packed across files, 1 to %d", spec.MaxBatch))
	m.Workers = fs.Int("workers", 0, fmt.Sprintf("files decoded and preprocessed at once, 1 to %d (default: one per usable CPU)", spec.MaxWorkers))
	m.Threads = fs.Int("threads", 0, fmt.Sprintf("libtorch intra-op threads, 1 to %d× the usable CPUs, with a warning above them (default: one per\nusable CPU; here %d, from %s)",
		spec.ThreadsPerCPU, m.CPUs, m.CPUSource))
	return m
}

// check checks the parsed flags that need no libtorch (the engine checks --device, and the limits
// the model runs under).
func (m *ModelFlags) check(fs *FlagSet) error {
	if err := m.Audio.check(fs); err != nil {
		return err
	}
	if err := checkSizing(fs, *m.Batch, *m.Workers, *m.Threads, m.CPUs, m.CPUSource); err != nil {
		return err
	}
	if *m.Weights != "" {
		return fs.AsMisuse(CheckRegular("--weights", *m.Weights))
	}
	return nil
}

// NetFlags are the flags that choose the network and what follows it, defined here once for embed
// and serve: --variant, --postprocess, --pca, --precision and --channels.
type NetFlags struct {
	Variant, Postprocess, PCA, Precision *string
	Channels                             *Choice
}

func addNetFlags(fs *FlagSet) *NetFlags {
	n := &NetFlags{Channels: NewChoice("channels", spec.Mix, spec.Each)}
	n.Variant = fs.String("variant", spec.Towhee, "network: towhee (no final ReLU, the Towhee operator) or torchvggish (final ReLU)")
	n.Postprocess = fs.String("postprocess", "", "none, pca (PCA whitening) or pca-quantize (torchvggish's: PCA, clip to [-2, 2], quantise to 0..255, as float32)\n(default none; pca-quantize if --pca or --quantize is given)")
	n.PCA = fs.String("pca", "", "PCA parameters `FILE` (.pth or .npz); implies --postprocess pca-quantize unless told otherwise\n(default with --postprocess: the published vggish_pca_params-970ea276.pth)")
	n.Precision = fs.String("precision", spec.FP32, "the network's arithmetic: fp32 (the reference's numbers), bf16 (CPU and CUDA), fp16 (CUDA) or tf32 (CUDA;\nfp32 on the CPU); see vggish info for what the device runs natively")
	fs.Var(n.Channels, "channels", "`MODE`: mix (average the channels to mono, the reference) or each (a stream of vectors per channel:\nnpy/npz (C, N, 128), a record per channel in jsonl, a channel column in csv)")
	return n
}

// check checks the parsed flags that need no libtorch (the engine resolves --postprocess).
func (n *NetFlags) check(fs *FlagSet) error {
	if *n.Variant != spec.Towhee && *n.Variant != spec.TorchVGGish {
		return fs.Misuse("--variant %q: want towhee or torchvggish", *n.Variant)
	}
	if !slices.Contains(spec.Precisions, *n.Precision) {
		return fs.Misuse("--precision %q: want fp32, bf16, fp16, tf32", *n.Precision)
	}
	return nil
}
