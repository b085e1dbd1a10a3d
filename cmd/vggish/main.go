// Command vggish computes VGGish audio embeddings with libtorch: one 128-d vector per 0.96 s of sound,
// the numbers of the Towhee operator audio_embedding.vggish.
//
// Usage:
//
//	vggish embed [flags] INPUT...                embeddings of files, folders, globs, a list or - (stdin)
//	vggish logmel --output OUT.npy INPUT         the log-mel examples the network sees
//	vggish fad [flags] BACKGROUND EVAL           the Fréchet Audio Distance between two sets
//	vggish serve [--listen ADDR] [flags]         an embedding service (KServe v2 REST and gRPC, /v1/embed)
//	vggish selftest [--weights FILE]             TensorFlow's smoke-test figures, on this machine
//	vggish weights download|path|verify [FILE]   the published weights
//	vggish info                                  libtorch, gotch, CUDA and thread details
//	vggish version                               vggish-go, its commit, libtorch and gotch versions
//
// Run `vggish help COMMAND` (or `vggish COMMAND -h`) for a command's flags. The exit status is 0 on
// success, 1 when the work failed (a file that could not be embedded, a download that failed), and 2
// when the command line is wrong (an unknown flag, a value out of range, a missing input).
//
// This program is the front door, and links neither libtorch nor ffmpeg's libraries: it answers help,
// version, weights and a wrong command line by itself, in milliseconds, where loading libtorch takes
// most of a second. For the commands that run the network it checks the command line, then replaces
// itself (execve: same process, arguments, environment and streams) with vggish-engine, which it
// finds beside its own file.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vggish-go/vggish/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, runs()))
}

// runs are the commands' runners: weights and version here, the others the engine's once their
// command line passes its checks.
func runs() map[string]cli.RunFunc {
	r := map[string]cli.RunFunc{"weights": cli.RunWeights, "version": cli.RunVersion(libtorchVersion)}
	for name, check := range cli.Checks {
		r[name] = func(args []string, s cli.Stdio) error {
			if err := check(args, s); err != nil {
				return err
			}
			return handOff()
		}
	}
	return r
}

// enginePath is vggish-engine's path: beside this program's file, links resolved (a link to vggish in
// a bin folder finds the engine beside the file it links to).
func enginePath() (string, error) {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", cli.EngineName, err)
	}
	return filepath.Join(filepath.Dir(exe), cli.EngineName), nil
}

// handOff replaces this process with the engine, given the same arguments and environment: signals,
// standard streams and the exit status are the engine's, and no process is left between. It returns
// only when the engine cannot start.
func handOff() error {
	path, err := enginePath()
	if err != nil {
		return err
	}
	err = syscall.Exec(path, os.Args, os.Environ())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s not found: this command runs libtorch in vggish-engine, which belongs beside vggish (make build puts bin/vggish-engine there; or go build -o %s ./cmd/vggish-engine)", path, path)
	}
	return fmt.Errorf("starting %s: %w", path, err)
}

// libtorchVersion is the version of the libtorch the engine was built against, read from its file
// without loading it, or why it is unknown.
func libtorchVersion() string {
	path, err := enginePath()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	v, err := cli.LibtorchVersion(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("unknown (%s not found: vggish runs libtorch in it, beside vggish)", path)
	case err != nil:
		return "unknown (" + err.Error() + ")"
	}
	return v
}
