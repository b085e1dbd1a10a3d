package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	modpkg "golang.org/x/mod/module"

	"github.com/vggish-go/vggish/torch"
)

func runVersion(args []string, s stdio) error {
	fs := newFlags("version", "usage: vggish version\n       vggish --version\n\nPrints vggish-go's module version and commit, and the versions of libtorch, gotch and Go it runs with.\n")
	rest, err := fs.parse(args, s.out)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.misuse("version takes no arguments, not %q", rest)
	}
	module, commit := buildVersion()
	fmt.Fprintf(s.out, "vggish-go %s\n", module)
	fmt.Fprintf(s.out, "commit    %s\n", commit)
	fmt.Fprintf(s.out, "libtorch  %s\n", torch.Version())
	fmt.Fprintf(s.out, "gotch     %s\n", torch.GotchVersion)
	fmt.Fprintf(s.out, "go        %s\n", runtime.Version())
	return nil
}

// buildVersion is vggish-go's module version and commit, from the binary's build info.
func buildVersion() (module, commit string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown", "unknown"
	}
	return versionOf(bi)
}

// versionOf reads the module version (a release or pseudo-version from `go install ...@version`, or
// "(devel)" for a build from a checkout) and the commit: from VCS stamping ("+modified" when the tree
// had changes; Go stamps builds in a git clone, not in a git worktree), else the revision in a
// pseudo-version, else "unknown".
func versionOf(bi *debug.BuildInfo) (module, commit string) {
	module, commit = bi.Main.Version, "unknown"
	if module == "" {
		module = "(devel)"
	}
	if rev, err := modpkg.PseudoVersionRev(module); err == nil {
		commit = rev
	}
	modified := ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			commit = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			modified = " +modified"
		}
	}
	return module, commit + modified
}

// version is buildVersion in one string, for the run record.
func version() string {
	module, commit := buildVersion()
	if commit == "unknown" {
		return module
	}
	return module + " " + commit
}
