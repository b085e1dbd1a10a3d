// Command vggish computes VGGish audio embeddings with libtorch: one 128-d vector per 0.96 s of sound,
// the numbers of the Towhee operator audio_embedding.vggish.
//
// Usage:
//
//	vggish info                                  libtorch, gotch, CUDA and thread details
//	vggish embed [flags] INPUT...                embeddings of files, folders, globs or a list
//	vggish logmel --output OUT.npy INPUT         the log-mel examples the network sees
//	vggish fad [flags] BACKGROUND EVAL           the Fréchet Audio Distance between two sets
//	vggish selftest [--weights FILE]             TensorFlow's smoke-test figures, on this machine
//	vggish weights download|path|verify [FILE]   the published weights
//
// Run `vggish COMMAND -h` for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"info", "libtorch, gotch, CUDA and thread details", runInfo},
		{"embed", "embeddings of files, folders, globs or a list", runEmbed},
		{"logmel", "the log-mel examples the network sees", runLogmel},
		{"fad", "the Fréchet Audio Distance between two sets of audio", runFAD},
		{"selftest", "TensorFlow's smoke test: do the weights and libtorch here give its figures?", runSelftest},
		{"weights", "download, locate or verify the published weights", runWeights},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 2
			default:
				fmt.Fprintf(stderr, "vggish %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "vggish: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vggish COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlags makes a command's flag set; errors are returned, not printed twice.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vggish "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
