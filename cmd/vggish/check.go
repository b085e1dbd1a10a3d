package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/preprocess"
)

// checkRegular refuses a path that is missing or is not a regular file, before anything opens it: a
// named pipe would block the run, a device or a socket never end.
func checkRegular(what, path string) error {
	if err := regfile.Require(path); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// Bounds of the flags that size a run. A batch takes about 1 MB a clip (on the CPU, batch 256 peaked
// 243 MB above batch 32): 4096 clips bound it near 4.5 GB, where --batch 100000000 once tried to
// allocate 2.4 TB up front and crashed. More workers than 1024 only multiply decoders and ffmpeg
// processes. libtorch threads far beyond the CPUs make it crawl: 1024 threads on 2 CPUs took over two
// minutes for a 3 s file, 100000 never finished.
const (
	maxBatch      = 4096
	maxWorkers    = 1024
	threadsPerCPU = 8
)

// checkSizing checks --batch, and --workers and --threads when given (0, their default, is the usable
// CPUs).
func checkSizing(fs *flagSet, batch, workers, threads, cpus int, cpuSource string) error {
	switch {
	case batch < 1 || batch > maxBatch:
		return fs.misuse("--batch %d: want 1 to %d clips", batch, maxBatch)
	case fs.set("workers") && (workers < 1 || workers > maxWorkers):
		return fs.misuse("--workers %d: want 1 to %d", workers, maxWorkers)
	case fs.set("threads") && (threads < 1 || threads > threadsPerCPU*cpus):
		return fs.misuse("--threads %d: want 1 to %d (%d× the %d usable CPUs, from %s)", threads, threadsPerCPU*cpus, threadsPerCPU, cpus, cpuSource)
	}
	return nil
}

// checkHop checks a --hop value: 0 is no default here, and the bounds are preprocess's.
func checkHop(hop float64) error {
	if hop == 0 || (preprocess.Options{Hop: hop}).Check() != nil {
		return fmt.Errorf("--hop %g: want %g to %g seconds (rounded to 10 ms)", hop, preprocess.MinHop, preprocess.MaxHop)
	}
	return nil
}

// checkStreams refuses what standard input and output cannot do for a command reading input and
// writing output ("-" for either stream): audio typed on a terminal and binary output on a terminal.
// Output redirected onto an input is batch.CheckOverwrite's to refuse.
func checkStreams(input, output string, s stdio) error {
	switch {
	case input == "-" && isTerminal(s.in):
		return errors.New("input -: standard input is a terminal: pipe audio into vggish (ffmpeg -i talk.mp4 -f wav - | vggish ...)")
	case output == "-" && isTerminal(s.out):
		return errors.New("--output -: refusing to write .npy (binary) to a terminal: redirect standard output, or give --output FILE")
	}
	return nil
}

// isTerminal reports whether a stream is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
