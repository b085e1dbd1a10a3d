package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/preprocess"
)

func runLogmel(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logmel", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vggish logmel --output OUT.npy [--hop S] [--tail drop|pad|repeat] INPUT\n\nWrites the log-mel examples the network sees, float32 (N, 96, 64).\n\nflags:")
		fs.PrintDefaults()
	}
	output := fs.String("output", "", "the .npy `FILE` to write (required)")
	hop := fs.Float64("hop", 0.96, "seconds between example starts (rounded to 10 ms)")
	tailPolicy := tailFlags(fs, "example")
	inputs, err := parse(fs, args)
	if err != nil {
		return err
	}
	tail, err := tailPolicy()
	if err != nil {
		return err
	}
	if *output == "" || len(inputs) != 1 {
		fs.Usage()
		return errors.New("want --output FILE and one INPUT")
	}
	// Like embed, the first interrupt stops cleanly: the partial output is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	src, err := decode.Open(inputs[0])
	if err != nil {
		return err
	}
	defer src.Close()
	// Examples go to the file a block at a time: memory does not grow with the length of the audio.
	w, err := npyfile.Create(*output, preprocess.ExampleFrames, preprocess.MelBins)
	if err != nil {
		return err
	}
	info, err := preprocess.Stream(ctx, src, preprocess.Options{Hop: *hop, Tail: tail}, func(ex *preprocess.Examples) error {
		return w.Append(ex.Data)
	})
	if err != nil {
		w.Abort()
		return err
	}
	if w.Rows() == 0 {
		fmt.Fprintf(stderr, "warning: %s: no examples in %.3g s of audio (an example needs 0.975 s; --tail pad or repeat makes one of a short tail)\n", inputs[0], info.Duration)
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s shape=(%d, %d, %d)\n", *output, w.Rows(), preprocess.ExampleFrames, preprocess.MelBins)
	return nil
}
