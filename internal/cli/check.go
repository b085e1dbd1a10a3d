package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/vggish-go/vggish/internal/regfile"
	"github.com/vggish-go/vggish/internal/spec"
)

// CheckRegular refuses a path that is missing or is not a regular file, before anything opens it: a
// named pipe would block the run, a device or a socket never end.
func CheckRegular(what, path string) error {
	if err := regfile.Require(path); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// CheckOutput refuses, before any work, an output path that could not be written at the end of it:
// one that exists and is not a regular file (a named pipe, a folder), or whose folder is missing.
func CheckOutput(what, path string) error {
	err := regfile.Require(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
		if info, serr := os.Stat(filepath.Dir(path)); serr != nil || !info.IsDir() {
			err = fmt.Errorf("no folder %s to write it in", filepath.Dir(path))
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// checkSizing checks --batch, and --workers and --threads when given (0, their default, is the usable
// CPUs).
func checkSizing(fs *FlagSet, batch, workers, threads, cpus int, cpuSource string) error {
	switch {
	case batch < 1 || batch > spec.MaxBatch:
		return fs.Misuse("--batch %d: want 1 to %d clips", batch, spec.MaxBatch)
	case fs.IsSet("workers") && (workers < 1 || workers > spec.MaxWorkers):
		return fs.Misuse("--workers %d: want 1 to %d", workers, spec.MaxWorkers)
	case fs.IsSet("threads") && (threads < 1 || threads > spec.ThreadsPerCPU*cpus):
		return fs.Misuse("--threads %d: want 1 to %d (%d× the %d usable CPUs, from %s)", threads, spec.ThreadsPerCPU*cpus, spec.ThreadsPerCPU, cpus, cpuSource)
	}
	return nil
}

// checkHop checks a --hop value: 0 is no default here, and the bounds are preprocess's.
func checkHop(hop float64) error {
	if _, err := spec.HopFrames(hop); hop == 0 || err != nil {
		return fmt.Errorf("--hop %g: want %g to %g seconds (rounded to 10 ms)", hop, spec.MinHop, spec.MaxHop)
	}
	return nil
}

// CheckStreams refuses what standard input and output cannot do for a command reading input and
// writing output ("-" for either stream): audio typed on a terminal and binary output on a terminal.
// Output redirected onto an input is batch.CheckOverwrite's to refuse.
func CheckStreams(input, output string, s Stdio) error {
	switch {
	case input == "-" && IsTerminal(s.In):
		return errors.New("input -: standard input is a terminal: pipe audio into vggish (ffmpeg -i talk.mp4 -f wav - | vggish ...)")
	case output == "-" && IsTerminal(s.Out):
		return errors.New("--output -: refusing to write .npy (binary) to a terminal: redirect standard output, or give --output FILE")
	}
	return nil
}

// IsTerminal reports whether a stream is a terminal.
func IsTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
