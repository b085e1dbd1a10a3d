//go:build !nolibav

package main

import (
	"os"

	"github.com/vggish-go/vggish/decode/libav"
)

// decoderWorkers says that compressed files are decoded by workers, not the ffmpeg command.
const decoderWorkers = true

// Compressed audio is decoded by ffmpeg's libraries (package libav) in worker processes, vggish-decoder
// beside this program or else this program started again: no process per file, and a decoder crash
// fails its file alone. Built with -tags nolibav, vggish needs no libav -dev packages and runs the
// ffmpeg command per file instead.

// decoderWorkerMain serves as a decoding worker, and exits, when this process was started as one.
func decoderWorkerMain() { libav.WorkerMain() }

// useDecoders hands the files decode does not decode natively to libav's workers, and returns what
// ends them (a run's end would, by their parent-death signal, but after this process had exited).
// Should this program not be found (it always is on Linux), the ffmpeg command stays.
func useDecoders() (stop func()) {
	exe, err := os.Executable()
	if err != nil {
		return func() {}
	}
	p, err := libav.Use(libav.Options{Command: decoderCommand(exe)})
	if err != nil {
		return func() {}
	}
	return func() { p.Close() }
}
