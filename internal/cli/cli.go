// Package cli is vggish's command line without libtorch: the commands, their flags, usage texts and the
// checks that need no model. Both programs use it: cmd/vggish, the front door, answers help, version,
// weights and mistakes by itself and hands the commands that run the network to cmd/vggish-engine,
// which parses the same command line again with the same flags and runs it.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
)

// Stdio is a command's standard streams: the process's in a program, buffers in tests.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// RunFunc runs a command with its arguments (after the command's name).
type RunFunc func(args []string, s Stdio) error

// Command is one of vggish's commands.
type Command struct{ Name, Summary string }

// Commands are vggish's commands, in the order usage lists them.
var Commands = []Command{
	{"embed", "embeddings of files, folders, globs, a list or standard input"},
	{"logmel", "the log-mel examples the network sees"},
	{"fad", "the Fréchet Audio Distance between two sets of audio"},
	{"serve", "an embedding service: the Open Inference Protocol (REST, gRPC) and POST /v1/embed"},
	{"selftest", "TensorFlow's smoke test: do the weights and libtorch here give its figures?"},
	{"weights", "download, locate or verify the published weights"},
	{"info", "libtorch, gotch, CUDA and thread details"},
	{"version", "vggish-go's version and commit, libtorch's and gotch's"},
	{"help", "a command's usage and flags"}, // handled by Run
}

// Checks are the checks of the command lines of the commands that run libtorch, which vggish-engine
// runs: the front door runs them first, and hands the engine only a command line that passes them.
var Checks = map[string]RunFunc{
	"embed":    func(args []string, s Stdio) error { _, err := ParseEmbed(args, s); return err },
	"logmel":   func(args []string, s Stdio) error { _, err := ParseLogmel(args, s); return err },
	"fad":      func(args []string, s Stdio) error { _, err := ParseFAD(args, s); return err },
	"serve":    func(args []string, s Stdio) error { _, err := ParseServe(args, s); return err },
	"selftest": func(args []string, s Stdio) error { _, err := ParseSelftest(args, s); return err },
	"info":     ParseInfo,
}

// EngineName is the program that runs the commands that need libtorch (cmd/vggish-engine), which
// vggish finds beside itself.
const EngineName = "vggish-engine"

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1 // the work failed
	ExitUsage   = 2 // the command line is wrong
)

// Run runs the command line args (without the program's name) with runs, each command's runner by
// name, and returns the exit status. It answers no arguments, help and unknown commands itself, and
// prints a command's error.
func Run(args []string, s Stdio, runs map[string]RunFunc) int {
	if len(args) == 0 {
		Usage(s.Err)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		Usage(s.Out)
		return ExitOK
	case "-version", "--version":
		name = "version"
	case "help":
		if len(rest) == 0 {
			Usage(s.Out)
			return ExitOK
		}
		if len(rest) > 1 {
			Usage(s.Err)
			fmt.Fprintf(s.Err, "vggish help: want one command, not %q\n", rest)
			return ExitUsage
		}
		if slices.Contains([]string{"help", "-h", "-help", "--help"}, rest[0]) {
			fmt.Fprint(s.Out, helpUsage)
			return ExitOK
		}
		name, rest = rest[0], []string{"-h"}
	}
	run := runs[name]
	if run == nil || name == "help" {
		Usage(s.Err)
		fmt.Fprintf(s.Err, "vggish: unknown command %q\n", name)
		return ExitUsage
	}
	err := run(rest, s)
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		ue.fs.PrintSynopsis(s.Err)
		fmt.Fprintf(s.Err, "vggish %s: %v\n", name, ue.err)
		return ExitUsage
	default:
		fmt.Fprintf(s.Err, "vggish %s: %v\n", name, err)
		return ExitFailure
	}
}

const helpUsage = `usage: vggish help [COMMAND]

Prints COMMAND's usage and flags, as vggish COMMAND -h does; without COMMAND, the list of commands.
`

// Usage prints vggish's usage: the commands.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vggish COMMAND [flags] [args]\n\ncommands:")
	for _, c := range Commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintln(w, "\nRun 'vggish help COMMAND' for a command's flags. Exit status: 0 done, 1 failed, 2 wrong usage.")
}
