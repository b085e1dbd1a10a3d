package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/preprocess"
)

func runLogmel(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logmel", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vggish logmel --output OUT.npy [--hop S] [--pad-tail] INPUT\n\nWrites the log-mel examples the network sees, float32 (N, 96, 64).\n\nflags:")
		fs.PrintDefaults()
	}
	output := fs.String("output", "", "the .npy `FILE` to write (required)")
	hop := fs.Float64("hop", 0.96, "seconds between example starts (rounded to 10 ms)")
	padTail := fs.Bool("pad-tail", false, "pad the audio with silence so that a last, partial example is kept")
	inputs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *output == "" || len(inputs) != 1 {
		fs.Usage()
		return errors.New("want --output FILE and one INPUT")
	}
	ex, info, err := preprocess.File(context.Background(), inputs[0], preprocess.Options{Hop: *hop, PadTail: *padTail})
	if err != nil {
		return err
	}
	if ex.Len() == 0 {
		fmt.Fprintf(stderr, "warning: %s: no examples in %.3g s of audio (an example needs 0.975 s; --pad-tail pads a short tail into one)\n", inputs[0], info.Duration)
	}
	if err := npyfile.Write(*output, ex.Data, ex.Len(), preprocess.ExampleFrames, preprocess.MelBins); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s shape=(%d, %d, %d)\n", *output, ex.Len(), preprocess.ExampleFrames, preprocess.MelBins)
	return nil
}
