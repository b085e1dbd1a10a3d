package main

import (
	"fmt"

	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// The flags' values as the library's options, with the checks the front door leaves to the engine:
// those that need libtorch (a device) or would print a warning twice.

// preprocessOptions is the audio flags as preprocessing options.
func preprocessOptions(a *cli.AudioFlags) (preprocess.Options, error) {
	tail, err := preprocess.ParseTail(a.Tail())
	return preprocess.Options{Hop: a.Hop(), Tail: tail}, err
}

// modelOptions checks the rest of the model flags, before any work, and returns them as the model's
// options; a --threads above the usable CPUs is allowed, with a warning on s.Err.
func modelOptions(m *cli.ModelFlags, fs *cli.FlagSet, s cli.Stdio) (vggish.Options, error) {
	if _, err := torch.ParseDevice(*m.Device); err != nil {
		return vggish.Options{}, fs.AsMisuse(err)
	}
	pre, err := preprocessOptions(m.Audio)
	if err != nil {
		return vggish.Options{}, fs.AsMisuse(err)
	}
	if err := cli.CheckMemoryLimits(s.Err); err != nil {
		return vggish.Options{}, err
	}
	if fs.IsSet("threads") && *m.Threads > m.CPUs {
		fmt.Fprintf(s.Err, "warning: --threads %d is more than the %d usable CPUs (%s): libtorch's threads will compete for them\n", *m.Threads, m.CPUs, m.CPUSource)
	}
	return vggish.Options{WeightsPath: *m.Weights, Device: *m.Device, BatchSize: *m.Batch, Threads: *m.Threads, Workers: *m.Workers,
		Preprocess: pre, Progress: cli.DownloadProgress(s.Err)}, nil
}

// applyNet resolves the network flags (quantize: uint8 output was asked for) and sets them in opts.
func applyNet(n *cli.NetFlags, fs *cli.FlagSet, quantize bool, opts *vggish.Options) error {
	mode, err := postprocessMode(*n.Postprocess, *n.PCA, quantize)
	if err != nil {
		return fs.AsMisuse(err)
	}
	if *n.PCA != "" {
		if err := cli.CheckRegular("--pca", *n.PCA); err != nil {
			return fs.AsMisuse(err)
		}
	}
	channels, err := vggish.ParseChannels(n.Channels.String())
	if err != nil {
		return fs.AsMisuse(err)
	}
	opts.Variant, opts.Postprocess, opts.PCAPath = vggish.Variant(*n.Variant), mode, *n.PCA
	opts.Channels, opts.Precision = channels, vggish.Precision(*n.Precision)
	return nil
}
