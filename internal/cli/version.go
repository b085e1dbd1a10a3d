package cli

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	modpkg "golang.org/x/mod/module"

	"github.com/vggish-go/vggish/internal/spec"
)

// RunVersion is the version command, which prints libtorch's version as libtorch tells it.
func RunVersion(libtorch func() string) RunFunc {
	return func(args []string, s Stdio) error { return runVersion(args, s, libtorch) }
}

func runVersion(args []string, s Stdio, libtorch func() string) error {
	fs := NewFlags("version", "usage: vggish version\n       vggish --version\n\nPrints vggish-go's module version and commit, and the versions of libtorch, gotch and Go it runs with.\n")
	rest, err := fs.ParseArgs(args, s.Out)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Misuse("version takes no arguments, not %q", rest)
	}
	module, commit := buildVersion()
	fmt.Fprintf(s.Out, "vggish-go %s\n", module)
	fmt.Fprintf(s.Out, "commit    %s\n", commit)
	fmt.Fprintf(s.Out, "libtorch  %s\n", libtorch())
	fmt.Fprintf(s.Out, "gotch     %s\n", spec.GotchVersion)
	fmt.Fprintf(s.Out, "go        %s\n", runtime.Version())
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

// Version is vggish-go's module version and commit in one string, for run records.
func Version() string {
	module, commit := buildVersion()
	if commit == "unknown" {
		return module
	}
	return module + " " + commit
}

// LibtorchSection is the ELF section of vggish-engine's file that holds the libtorch version it was
// compiled against (package torch puts it there).
const LibtorchSection = "vggish.libtorch"

// LibtorchVersion reads the libtorch version from the LibtorchSection of the program at path: it reads
// the section headers and the section alone, and loads nothing.
func LibtorchVersion(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sec := f.Section(LibtorchSection)
	if sec == nil {
		return "", fmt.Errorf("%s: no section %s (built without libtorch's headers on the include path)", path, LibtorchSection)
	}
	b, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("%s: section %s: %w", path, LibtorchSection, err)
	}
	v, _, _ := bytes.Cut(b, []byte{0})
	if len(v) == 0 {
		return "", errors.New(path + ": section " + LibtorchSection + " is empty")
	}
	return string(v), nil
}
