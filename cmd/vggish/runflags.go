package main

import (
	"fmt"
	"slices"

	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// audioFlags are the flags that cut audio into examples: --hop and --tail (with its alias --pad-tail),
// defined here once for embed, fad and logmel.
type audioFlags struct {
	hop     *float64
	tail    preprocess.Tail
	padTail *bool
}

// addAudioFlags adds the audio flags to fs; unit names what a hop separates (a clip, an example).
func addAudioFlags(fs *flagSet, unit string) *audioFlags {
	a := &audioFlags{tail: preprocess.Drop}
	a.hop = fs.Float64("hop", 0.96, fmt.Sprintf("seconds between %[1]s starts, %[2]g to %[3]g (rounded to 10 ms); a hop longer than a %[1]s spaces them out",
		unit, preprocess.MinHop, preprocess.MaxHop))
	fs.Var(&a.tail, "tail", fmt.Sprintf("`POLICY` for the last, partial %[1]s and audio shorter than one %[1]s (0.975 s): drop (the reference),\npad (with silence) or repeat (the %[1]s's own audio, looped) (default drop)", unit))
	a.padTail = fs.Bool("pad-tail", false, "the same as --tail pad")
	return a
}

// options checks the parsed flags and returns them as preprocessing options.
func (a *audioFlags) options(fs *flagSet) (preprocess.Options, error) {
	tail := a.tail
	if *a.padTail {
		if tail != preprocess.Drop && tail != preprocess.Pad {
			return preprocess.Options{}, fs.misuse("--pad-tail and --tail %v disagree", tail)
		}
		tail = preprocess.Pad
	}
	if err := checkHop(*a.hop); err != nil {
		return preprocess.Options{}, fs.asMisuse(err)
	}
	return preprocess.Options{Hop: *a.hop, Tail: tail}, nil
}

// modelFlags are the flags that load and run the model, defined here once for embed and fad.
type modelFlags struct {
	weights, device         *string
	batch, workers, threads *int
	audio                   *audioFlags
	cpus                    int
	cpuSource               string
}

func addModelFlags(fs *flagSet) *modelFlags {
	m := &modelFlags{audio: addAudioFlags(fs, "clip")}
	m.cpus, m.cpuSource = torch.UsableCPUs()
	m.weights = fs.String("weights", "", "VGGish state dict `FILE` (default: the published vggish-10086976.pth, downloaded once; see `vggish weights`)")
	m.device = fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	m.batch = fs.Int("batch", vggish.DefaultBatchSize, fmt.Sprintf("most clips per forward pass, packed across files, 1 to %d", maxBatch))
	m.workers = fs.Int("workers", 0, fmt.Sprintf("files decoded and preprocessed at once, 1 to %d (default: one per usable CPU)", maxWorkers))
	m.threads = fs.Int("threads", 0, fmt.Sprintf("libtorch intra-op threads, 1 to %d× the usable CPUs, with a warning above them (default: one per\nusable CPU; here %d, from %s)",
		threadsPerCPU, m.cpus, m.cpuSource))
	return m
}

// options checks the parsed flags, before any work, and returns them as the model's options; a
// --threads above the usable CPUs is allowed, with a warning on s.err.
func (m *modelFlags) options(fs *flagSet, s stdio) (vggish.Options, error) {
	pre, err := m.audio.options(fs)
	if err != nil {
		return vggish.Options{}, err
	}
	if err := checkSizing(fs, *m.batch, *m.workers, *m.threads, m.cpus, m.cpuSource); err != nil {
		return vggish.Options{}, err
	}
	if _, err := torch.ParseDevice(*m.device); err != nil {
		return vggish.Options{}, fs.asMisuse(err)
	}
	if *m.weights != "" {
		if err := checkRegular("--weights", *m.weights); err != nil {
			return vggish.Options{}, fs.asMisuse(err)
		}
	}
	if err := checkMemoryLimits(s.err); err != nil {
		return vggish.Options{}, err
	}
	if fs.set("threads") && *m.threads > m.cpus {
		fmt.Fprintf(s.err, "warning: --threads %d is more than the %d usable CPUs (%s): libtorch's threads will compete for them\n", *m.threads, m.cpus, m.cpuSource)
	}
	return vggish.Options{WeightsPath: *m.weights, Device: *m.device, BatchSize: *m.batch, Threads: *m.threads, Workers: *m.workers,
		Preprocess: pre, Progress: downloadProgress(s.err)}, nil
}

// netFlags are the flags that choose the network and what follows it, defined here once for embed
// and serve: --variant, --postprocess, --pca, --precision and --channels.
type netFlags struct {
	variant, postprocess, pca, precision *string
	channels                             vggish.Channels
}

func addNetFlags(fs *flagSet) *netFlags {
	n := &netFlags{channels: vggish.Mix}
	n.variant = fs.String("variant", string(vggish.Towhee), "network: towhee (no final ReLU, the Towhee operator) or torchvggish (final ReLU)")
	n.postprocess = fs.String("postprocess", "", "none, pca (PCA whitening) or pca-quantize (torchvggish's: PCA, clip to [-2, 2], quantise to 0..255, as float32)\n(default none; pca-quantize if --pca or --quantize is given)")
	n.pca = fs.String("pca", "", "PCA parameters `FILE` (.pth or .npz); implies --postprocess pca-quantize unless told otherwise\n(default with --postprocess: the published vggish_pca_params-970ea276.pth)")
	n.precision = fs.String("precision", string(vggish.FP32), "the network's arithmetic: fp32 (the reference's numbers), bf16 (CPU and CUDA), fp16 (CUDA) or tf32 (CUDA;\nfp32 on the CPU); see vggish info for what the device runs natively")
	fs.Var(&n.channels, "channels", "`MODE`: mix (average the channels to mono, the reference) or each (a stream of vectors per channel:\nnpy/npz (C, N, 128), a record per channel in jsonl, a channel column in csv) (default mix)")
	return n
}

// apply checks the parsed flags (quantize: uint8 output was asked for) and sets them in opts.
func (n *netFlags) apply(fs *flagSet, quantize bool, opts *vggish.Options) error {
	if *n.variant != string(vggish.Towhee) && *n.variant != string(vggish.TorchVGGish) {
		return fs.misuse("--variant %q: want towhee or torchvggish", *n.variant)
	}
	if !slices.Contains([]vggish.Precision{vggish.FP32, vggish.BF16, vggish.FP16, vggish.TF32}, vggish.Precision(*n.precision)) {
		return fs.misuse("--precision %q: want fp32, bf16, fp16, tf32", *n.precision)
	}
	mode, err := postprocessMode(*n.postprocess, *n.pca, quantize)
	if err != nil {
		return fs.asMisuse(err)
	}
	if *n.pca != "" {
		if err := checkRegular("--pca", *n.pca); err != nil {
			return fs.asMisuse(err)
		}
	}
	opts.Variant, opts.Postprocess, opts.PCAPath = vggish.Variant(*n.variant), mode, *n.pca
	opts.Channels, opts.Precision = n.channels, vggish.Precision(*n.precision)
	return nil
}
