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
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/preprocess"
)

func runLogmel(args []string, s cli.Stdio) error {
	l, err := cli.ParseLogmel(args, s)
	if err != nil {
		return err
	}
	fs, input, output := l.FS, l.Input, l.Output
	pre, err := preprocessOptions(l.Audio)
	if err != nil {
		return fs.AsMisuse(err)
	}
	in := batch.Input{Path: input, Stdin: input == batch.StdinArg}
	var stdout io.Writer
	if *output == "-" {
		stdout = s.Out
	}
	if err := batch.CheckOverwrite([]string{*output}, stdout, []batch.Input{in}, s.In, nil); err != nil {
		return fs.AsMisuse(err)
	}
	// Like embed, the first interrupt stops cleanly: the partial output is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	var src decode.Source
	if input == "-" {
		src, err = decode.OpenReader(ctx, s.In, input)
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
		fmt.Fprintf(s.Err, "warning: %s: no examples in %.3g s of audio (an example needs 0.975 s; --tail pad or repeat makes one of a short tail)\n", input, info.Duration)
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
		_, err = io.Copy(s.Out, f)
		return err
	}
	fmt.Fprintf(s.Out, "%s shape=(%d, %d, %d)\n", *output, w.Rows(), preprocess.ExampleFrames, preprocess.MelBins)
	return nil
}
