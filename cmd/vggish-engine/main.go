// Command vggish-engine runs the vggish commands that load libtorch: embed, logmel, fad, serve,
// selftest and info. vggish (cmd/vggish), the command users run, checks the command line and replaces
// itself with this program, found beside it; run alone, it takes vggish's command line and answers
// every command the same way (see package cli for the commands and their flags).
package main

import (
	"os"

	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/torch"
)

// stdio is a command's standard streams: the process's in main, buffers in tests.
type stdio = cli.Stdio

// runs are the commands' runners.
func runs() map[string]cli.RunFunc {
	return map[string]cli.RunFunc{
		"embed": runEmbed, "logmel": runLogmel, "fad": runFAD, "serve": runServe, "selftest": runSelftest,
		"weights": cli.RunWeights, "info": runInfo, "version": cli.RunVersion(torch.Version),
	}
}

func main() {
	decoderWorkerMain()
	stopDecoders := useDecoders()
	code := run(os.Args[1:], stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stopDecoders()
	os.Exit(code)
}

func run(args []string, s stdio) int { return cli.Run(args, s, runs()) }
