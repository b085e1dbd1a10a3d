package main

import (
	"flag"
	"fmt"

	"github.com/vggish-go/vggish/preprocess"
)

// tailFlags adds --tail and its alias --pad-tail to fs; the function it returns gives the policy once
// fs is parsed.
func tailFlags(fs *flag.FlagSet, what string) func() (preprocess.Tail, error) {
	tail := preprocess.Drop
	fs.Var(&tail, "tail", fmt.Sprintf("`POLICY` for the last, partial %[1]s and audio shorter than one %[1]s (0.975 s): drop (the reference),\npad (with silence) or repeat (the %[1]s's own audio, looped) (default drop)", what))
	padTail := fs.Bool("pad-tail", false, "the same as --tail pad")
	return func() (preprocess.Tail, error) {
		if !*padTail {
			return tail, nil
		}
		if tail != preprocess.Drop && tail != preprocess.Pad {
			return 0, fmt.Errorf("--pad-tail and --tail %v disagree", tail)
		}
		return preprocess.Pad, nil
	}
}
