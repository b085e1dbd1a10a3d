package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/preprocess"
)

const logmelUsage = `usage: vggish logmel --output OUT.npy [--hop S] [--tail drop|pad|repeat] INPUT

Writes the log-mel examples the network sees, float32 (N, 96, 64), a block at a time: memory does not
grow with the length of the audio. INPUT - reads the audio from standard input (WAV natively, anything
else through ffmpeg); --output - writes the .npy to standard output, once complete (the examples wait
in a temporary file: the header needs their count). The output may not be the input.
`

func runLogmel(args []string, s stdio) error {
	fs := newFlags("logmel", logmelUsage)
	output := fs.String("output", "", "the .npy `FILE` to write, or - for standard output (required)")
	audio := addAudioFlags(fs, "example")
	inputs, err := fs.parse(args, s.out)
	if err != nil {
		return err
	}
	if *output == "" || len(inputs) != 1 {
		return fs.misuse("want --output FILE and one INPUT")
	}
	pre, err := audio.options(fs)
	if err != nil {
		return err
	}
	input := inputs[0]
	if err := checkStreams(input, *output, s); err != nil {
		return fs.asMisuse(err)
	}
	in := batch.Input{Path: input, Stdin: input == batch.StdinArg}
	if !in.Stdin {
		if err := checkRegular("input", input); err != nil {
			return fs.asMisuse(err)
		}
	}
	var stdout io.Writer
	if *output == "-" {
		stdout = s.out
	}
	if err := batch.CheckOverwrite([]string{*output}, stdout, []batch.Input{in}, s.in, nil); err != nil {
		return fs.asMisuse(err)
	}
	// Like embed, the first interrupt stops cleanly: the partial output is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	var src decode.Source
	if input == "-" {
		src, err = decode.OpenReader(ctx, s.in, input)
	} else {
		src, err = decode.OpenContext(ctx, input)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	path := *output
	if path == "-" {
		dir, err := os.MkdirTemp("", "vggish-logmel-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "stdout.npy")
	}
	// Examples go to the file a block at a time: memory does not grow with the length of the audio.
	w, err := npyfile.Create(path, preprocess.ExampleFrames, preprocess.MelBins)
	if err != nil {
		return err
	}
	info, err := preprocess.Stream(ctx, src, pre, func(ex *preprocess.Examples) error {
		return w.Append(ex.Data)
	})
	if err != nil {
		w.Abort()
		return err
	}
	if w.Rows() == 0 {
		fmt.Fprintf(s.err, "warning: %s: no examples in %.3g s of audio (an example needs 0.975 s; --tail pad or repeat makes one of a short tail)\n", input, info.Duration)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if *output == "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(s.out, f)
		return err
	}
	fmt.Fprintf(s.out, "%s shape=(%d, %d, %d)\n", *output, w.Rows(), preprocess.ExampleFrames, preprocess.MelBins)
	return nil
}
