package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// FlagSet is a command's flags and usage. Its own printing is off: -h prints the usage to standard
// output; a mistake prints the synopsis and where the rest is to standard error, followed by the
// error (see Run).
type FlagSet struct {
	*flag.FlagSet
	usage string // the synopsis and description, before the flags
}

// NewFlags makes the flags of command name, whose usage text (synopsis and description) is usage.
func NewFlags(name, usage string) *FlagSet {
	fs := flag.NewFlagSet("vggish "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &FlagSet{fs, usage}
}

// PrintUsage prints the usage text and the flags.
func (f *FlagSet) PrintUsage(w io.Writer) {
	fmt.Fprint(w, f.usage)
	hasFlags := false
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
}

// PrintSynopsis prints the usage text's synopsis (up to its first blank line) and the command that
// prints the rest: what a mistake needs, where the whole usage (over 100 lines for embed) would bury
// the error.
func (f *FlagSet) PrintSynopsis(w io.Writer) {
	synopsis, _, _ := strings.Cut(f.usage, "\n\n")
	fmt.Fprintf(w, "%s\nRun '%s' for the command's description and flags.\n", strings.TrimSuffix(synopsis, "\n"),
		strings.Replace(f.Name(), "vggish ", "vggish help ", 1))
}

// UsageError is a mistake in the command line: Run prints it after the command's synopsis, on
// standard error, and exits with status 2.
type UsageError struct {
	err error
	fs  *FlagSet
}

func (e *UsageError) Error() string { return e.err.Error() }
func (e *UsageError) Unwrap() error { return e.err }

// Misuse is a usage error with a formatted message.
func (f *FlagSet) Misuse(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...), f}
}

// AsMisuse makes err, if any, a usage error.
func (f *FlagSet) AsMisuse(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{err, f}
}

// ParseArgs parses flags that may come before, between or after the positional arguments
// (`vggish embed data/ --out-dir out`), which flag.FlagSet alone stops at, and returns the positional
// ones; "--" ends the flags. -h (or --help) prints the usage to out and returns flag.ErrHelp.
func (f *FlagSet) ParseArgs(args []string, out io.Writer) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err == flag.ErrHelp {
			f.PrintUsage(out)
			return nil, err
		} else if err != nil {
			return nil, f.AsMisuse(err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// flag.Parse consumed a "--" if it stopped there: then everything left is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// IsSet reports whether the flag was given on the command line.
func (f *FlagSet) IsSet(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

// Choice is a flag.Value that takes one of a few names (the name of an option of a package that runs
// libtorch, whose parser the engine applies to it once checked).
type Choice struct {
	what  string // what the names name, for errors
	names []string
	value string
}

// NewChoice is a Choice of a what among names, set to the first.
func NewChoice(what string, names ...string) *Choice { return &Choice{what, names, names[0]} }

// String is the name chosen.
func (c *Choice) String() string {
	if c == nil {
		return ""
	}
	return c.value
}

// Set makes *Choice a flag.Value.
func (c *Choice) Set(s string) error {
	if !slices.Contains(c.names, s) {
		last := len(c.names) - 1
		return fmt.Errorf("%s %q: want %s or %s", c.what, s, strings.Join(c.names[:last], ", "), c.names[last])
	}
	c.value = s
	return nil
}
