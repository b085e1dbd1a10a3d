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
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// stdio is a command's standard streams: the process's in main, buffers in tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

type command struct {
	name, summary string
	run           func(args []string, s stdio) error
}

func commands() []command {
	return []command{
		{"embed", "embeddings of files, folders, globs, a list or standard input", runEmbed},
		{"logmel", "the log-mel examples the network sees", runLogmel},
		{"fad", "the Fréchet Audio Distance between two sets of audio", runFAD},
		{"serve", "an embedding service: the Open Inference Protocol (REST, gRPC) and POST /v1/embed", runServe},
		{"selftest", "TensorFlow's smoke test: do the weights and libtorch here give its figures?", runSelftest},
		{"weights", "download, locate or verify the published weights", runWeights},
		{"info", "libtorch, gotch, CUDA and thread details", runInfo},
		{"version", "vggish-go's version and commit, libtorch's and gotch's", runVersion},
		{"help", "a command's usage and flags", nil}, // handled by run
	}
}

func main() {
	decoderWorkerMain()
	stopDecoders := useDecoders()
	code := run(os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stopDecoders()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the work failed
	exitUsage   = 2 // the command line is wrong
)

func run(args []string, s stdio) int {
	if len(args) == 0 {
		usage(s.err)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		usage(s.out)
		return exitOK
	case "-version", "--version":
		name = "version"
	case "help":
		if len(rest) == 0 {
			usage(s.out)
			return exitOK
		}
		if len(rest) > 1 {
			usage(s.err)
			fmt.Fprintf(s.err, "vggish help: want one command, not %q\n", rest)
			return exitUsage
		}
		name, rest = rest[0], []string{"-h"}
	}
	for _, c := range commands() {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(rest, s)
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			ue.fs.printUsage(s.err)
			fmt.Fprintf(s.err, "vggish %s: %v\n", c.name, ue.err)
			return exitUsage
		default:
			fmt.Fprintf(s.err, "vggish %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	usage(s.err)
	fmt.Fprintf(s.err, "vggish: unknown command %q\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vggish COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vggish help COMMAND' for a command's flags. Exit status: 0 done, 1 failed, 2 wrong usage.")
}
