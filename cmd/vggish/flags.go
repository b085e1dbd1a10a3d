package main

import (
	"flag"
	"fmt"
	"io"
)

// flagSet is a command's flags and usage. Its own printing is off: -h prints the usage to standard
// output, a mistake prints it to standard error, followed by the error (see run).
type flagSet struct {
	*flag.FlagSet
	usage string // the synopsis and description, before the flags
}

func newFlags(name, usage string) *flagSet {
	fs := flag.NewFlagSet("vggish "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{fs, usage}
}

func (f *flagSet) printUsage(w io.Writer) {
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

// usageError is a mistake in the command line: run prints it after the command's usage, on standard
// error, and exits with status 2.
type usageError struct {
	err error
	fs  *flagSet
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func (f *flagSet) misuse(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...), f}
}

// asMisuse makes err, if any, a usage error.
func (f *flagSet) asMisuse(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err, f}
}

// parse parses flags that may come before, between or after the positional arguments
// (`vggish embed data/ --out-dir out`), which flag.FlagSet alone stops at; "--" ends the flags.
// -h (or --help) prints the usage to out and returns flag.ErrHelp.
func (f *flagSet) parse(args []string, out io.Writer) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err == flag.ErrHelp {
			f.printUsage(out)
			return nil, err
		} else if err != nil {
			return nil, f.asMisuse(err)
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

// set reports whether the flag was given on the command line.
func (f *flagSet) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}
