// Command adapt builds gotch against the libtorch this machine has, without touching the Go module cache.
//
// gotch's C++ wrappers are generated for one libtorch release and its lib.go hard-codes link flags for a
// CUDA build. adapt copies the gotch module into a git-ignored folder, writes libtch/lib.go with the
// flags of the libtorch it finds, replaces the body of every generated wrapper that does not compile
// against that libtorch with a thrown error (so calling it returns a Go error), and writes a go.work that
// points the module at the copy.
//
// Run it from the root of any module that requires github.com/sugarme/gotch:
//
//	go run github.com/vggish-go/vggish/torch/adapt
//
// libtorch is $LIBTORCH (an upstream tree with include/ and lib/) or the system install (Debian's
// libtorch-dev). The result is cached on gotch version, libtorch version and CUDA: a second run only
// checks the stamp.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	var (
		buildDir  = flag.String("dir", ".build", "folder for the adapted gotch copy, relative to the module root")
		regen     = flag.Bool("regen", false, "find the wrappers to stub with the compiler even when a list is committed, and rewrite the list")
		listDir   = flag.String("lists", "torch/adapt/stubs", "with -regen: folder to write the stub list to, relative to the module root")
		printInfo = flag.Bool("print", false, "print what was found and exit")
	)
	flag.Parse()
	if err := run(*buildDir, *listDir, *regen, *printInfo); err != nil {
		fmt.Fprintln(os.Stderr, "adapt:", err)
		os.Exit(1)
	}
}

func run(buildDir, listDir string, regen, printOnly bool) error {
	lt, err := findLibtorch()
	if err != nil {
		return err
	}
	mod, err := findModule()
	if err != nil {
		return err
	}
	if printOnly {
		fmt.Printf("libtorch %s (%s) cuda=%v cxx11abi=%d\ngotch %s (%s)\nmodule root %s\n",
			lt.Version, lt.Root, lt.CUDA, lt.CXX11ABI, mod.GotchVersion, mod.GotchDir, mod.Root)
		return nil
	}
	if !filepath.IsAbs(buildDir) {
		buildDir = filepath.Join(mod.Root, buildDir)
	}
	if !filepath.IsAbs(listDir) {
		listDir = filepath.Join(mod.Root, listDir)
	}
	dst := filepath.Join(buildDir, fmt.Sprintf("gotch-%s-libtorch-%s-%s", mod.GotchVersion, lt.Version, lt.flavour()))
	a := adaptation{lt: lt, mod: mod, dst: dst, listDir: listDir, regen: regen}
	if err := a.build(); err != nil {
		return err
	}
	return writeWorkspace(mod, dst)
}
