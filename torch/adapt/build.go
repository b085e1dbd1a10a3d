package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/vggish-go/vggish/torch/adapt/stubs"
)

// formatVersion changes whenever adapt's output for the same inputs changes, invalidating old copies.
const formatVersion = 4

type adaptation struct {
	lt      libtorch
	mod     module
	dst     string
	listDir string
	regen   bool
}

func (a adaptation) key() string {
	return fmt.Sprintf("adapt format %d\ngotch %s\nlibtorch %s %s\nroot %s\nlibdir %s\ncxx11abi %d\nshim %s\nlib.go %x\ncompiler %s %q\n",
		formatVersion, a.mod.GotchVersion, a.lt.Version, a.lt.flavour(), a.lt.Root, a.lt.LibDir, a.lt.CXX11ABI, shimHash(),
		sha256.Sum256([]byte(a.libGo())), compiler(), envFlags())
}

// build makes the adapted copy in a temporary folder and renames it into place, so an interrupted run
// never leaves a copy that looks finished.
func (a adaptation) build() error {
	stamp := filepath.Join(a.dst, ".adapt-stamp")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == a.key() && !a.regen {
		return nil
	}
	tmp := a.dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyTree(a.mod.GotchDir, tmp); err != nil {
		return fmt.Errorf("copying gotch: %w", err)
	}
	if err := dropBallast(tmp); err != nil {
		return err
	}
	if err := writeMarker(tmp); err != nil {
		return err
	}
	libtch := filepath.Join(tmp, "libtch")
	if err := os.WriteFile(filepath.Join(libtch, "lib.go"), []byte(a.libGo()), 0o644); err != nil {
		return err
	}
	if err := writeShim(libtch); err != nil {
		return err
	}
	gen, err := readGenerated(libtch)
	if err != nil {
		return err
	}
	// A version without a committed list is examined with the compiler.
	stubbed, listed := stubs.List(a.lt.Version)
	if !listed || a.regen {
		fmt.Fprintf(os.Stderr, "adapt: finding the gotch wrappers that libtorch %s cannot compile (a few minutes)...\n", a.lt.Version)
		if stubbed, err = a.discover(libtch, gen); err != nil {
			return err
		}
		if a.regen {
			if err := a.writeList(stubbed); err != nil {
				return err
			}
		}
	} else if err := gen.stub(stubbed, a.stubMessage); err != nil {
		return err
	}
	if err := gen.write(); err != nil {
		return err
	}
	if err := a.compile(libtch); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".adapt-stamp"), []byte(a.key()), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(a.dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, a.dst); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "adapt: gotch %s for libtorch %s (%s, C++11 ABI %d): %d wrappers stubbed -> %s\n",
		a.mod.GotchVersion, a.lt.Version, a.lt.flavour(), a.lt.CXX11ABI, len(stubbed), a.dst)
	return nil
}

// ballast is the field through which gotch gives every tensor wrapper a 100 kB Go allocation, so that
// the garbage collector, feeling that much memory, runs the finalizers of tensors nobody freed sooner.
// vggish-go frees each tensor itself; the ballast made the CPU zero, and collect, more Go memory than the
// audio it preprocessed (a resampling group of 1 s made 17 wrappers: 1.7 MB), a tenth of the CPU time.
const ballast = "lots [1e5]byte"

// dropBallast shrinks the ballast of the gotch copy in dir to nothing.
func dropBallast(dir string) error {
	path := filepath.Join(dir, "ts", "tensor.go")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(ballast)) {
		return fmt.Errorf("adapting gotch: %s has no %q to drop (a gotch this version of adapt does not know)", path, ballast)
	}
	return os.WriteFile(path, bytes.Replace(b, []byte(ballast), []byte("lots [0]byte"), 1), 0o644)
}

// adaptedMarker is the identifier that the adapted gotch's package half defines and that package
// github.com/vggish-go/vggish/torch/internal/adapted refers to: a build with the published gotch stops
// there within seconds, the compiler's "undefined: gotch.Adapted_run_..." spelling out the command to
// run, where it would otherwise take minutes to fail on gotch's C++ with "torch/torch.h: No such file".
// Package half is pure Go and nothing in libtch imports it, so the marker costs no C++ recompilation.
const adaptedMarker = "Adapted_run__go_run_github_com_vggish_go_vggish_torch_adapt"

// writeMarker adds adaptedMarker to the gotch copy in dir.
func writeMarker(dir string) error {
	src := "// Written by github.com/vggish-go/vggish/torch/adapt: this copy of gotch is adapted to the\n" +
		"// machine's libtorch (see vggish-go's torch/internal/adapted).\n\npackage half\n\n" +
		"// " + adaptedMarker + " marks a gotch adapted by vggish-go's torch/adapt.\nconst " + adaptedMarker + " = true\n"
	return os.WriteFile(filepath.Join(dir, "half", "vggish_adapted.go"), []byte(src), 0o644)
}

// cppFlags are the preprocessor's flags for libtorch's headers, with dir the folder of libtch's own.
func (a adaptation) cppFlags(dir string) []string {
	cpp := []string{"-I" + dir}
	if !a.lt.System {
		for _, inc := range a.lt.Includes {
			cpp = append(cpp, "-I"+inc)
		}
	} else {
		cpp = append(cpp, "-I"+a.lt.Includes[1])
	}
	return append(cpp, fmt.Sprintf("-D_GLIBCXX_USE_CXX11_ABI=%d", a.lt.CXX11ABI))
}

// cxxFlags compile gotch's C++ and the shim. OpenMP, as PyTorch's own C++ extensions have it:
// at::parallel_for is a header template, and without it runs serially. -fPIC, as cgo's own objects
// are, for every build mode.
var cxxFlags = []string{"-std=c++17", "-O2", "-w", "-fopenmp", "-fPIC"}

// cxxObject is the object adapt compiles libtch's C++ into; go build links a package's .syso files.
const cxxObject = "libtch_cxx.syso"

// compile builds libtch's C++ (gotch's wrappers and the shim) into cxxObject, a file at a time in
// parallel, and removes the sources. go build then links the object rather than compiling the C++
// itself: a build in another mode (-race, a cleaned cache) does not spend minutes recompiling it, and
// the object's contents are part of the package's build key, as sources are.
func (a adaptation) compile(libtch string) error {
	srcs, err := filepath.Glob(filepath.Join(libtch, "*.cpp"))
	if err != nil {
		return err
	}
	// The longest first: gotch's wrappers are most of the work.
	sort.Slice(srcs, func(i, j int) bool { return size(srcs[i]) > size(srcs[j]) })
	fmt.Fprintf(os.Stderr, "adapt: compiling gotch's C++ and the shim, %d files (minutes)...\n", len(srcs))
	objDir, err := os.MkdirTemp("", "vggish-adapt-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(objDir)
	cxx, flags := compiler(), slices.Concat(a.cppFlags(libtch), cxxFlags, envFlags())
	objs := make([]string, len(srcs))
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i, src := range srcs {
		objs[i] = filepath.Join(objDir, strings.TrimSuffix(filepath.Base(src), ".cpp")+".o")
		g.Go(func() error {
			args := slices.Concat(flags, []string{"-c", "-o", objs[i], src})
			if out, err := exec.Command(cxx, args...).CombinedOutput(); err != nil {
				return fmt.Errorf("compiling %s: %w\n%s", filepath.Base(src), err, firstLines(string(out), 20))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	args := append([]string{"-r", "-nostdlib", "-o", filepath.Join(libtch, cxxObject)}, objs...)
	if out, err := exec.Command(cxx, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("linking %s: %w\n%s", cxxObject, err, out)
	}
	for _, src := range srcs {
		if err := os.Remove(src); err != nil {
			return err
		}
	}
	return nil
}

// envFlags are $CGO_CPPFLAGS and $CGO_CXXFLAGS, which go build would have added to the compiler's
// (e.g. the CUDA headers' folder for an upstream CUDA libtorch's headers).
func envFlags() []string {
	return append(strings.Fields(os.Getenv("CGO_CPPFLAGS")), strings.Fields(os.Getenv("CGO_CXXFLAGS"))...)
}

// compiler is the C++ compiler: $CXX, as for cgo, or the system's c++.
func compiler() string {
	if cxx := os.Getenv("CXX"); cxx != "" {
		return cxx
	}
	return "c++"
}

func size(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// libGo is the cgo preamble for this libtorch: the headers for the package's cgo comments, the link
// flags for cxxObject. The CUDA libraries are linked only when libtorch has them, with --no-as-needed
// because nothing references libtorch_cuda directly and the linker would otherwise drop it, leaving
// CUDA unavailable at run time.
func (a adaptation) libGo() string {
	var ld []string
	cpp := a.cppFlags("${SRCDIR}")
	ld = append(ld, "-L"+a.lt.LibDir)
	if !a.lt.System {
		ld = append(ld, "-Wl,-rpath,"+a.lt.LibDir)
	}
	if a.lt.CUDA {
		ld = append(ld, "-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed")
	}
	ld = append(ld, "-ltorch", "-ltorch_cpu", "-lc10", "-lstdc++", "-lm", "-fopenmp")
	return fmt.Sprintf(`// Code generated by github.com/vggish-go/vggish/torch/adapt for libtorch %s (%s); DO NOT EDIT.

package libtch

// #cgo CPPFLAGS: %s
// #cgo CFLAGS: -O2 -Wno-unused-variable -Wno-deprecated-declarations
// #cgo LDFLAGS: %s
import "C"
`, a.lt.Version, a.lt.flavour(), strings.Join(cpp, " "), strings.Join(ld, " "))
}

// shim holds vggish-go's own C++ (csrc/): the libtorch version, and the network run in one call with
// weights laid out for the device's fastest kernels. It is compiled into the adapted libtch, with the
// flags of the machine's libtorch; internal/tensor and torch declare its functions.
//
//go:embed csrc/*.cpp
var shim embed.FS

func writeShim(libtch string) error {
	files, err := fs.ReadDir(shim, "csrc")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := shim.ReadFile("csrc/" + f.Name())
		if err != nil {
			return err
		}
		text := "// Code generated by github.com/vggish-go/vggish/torch/adapt from torch/adapt/csrc; DO NOT EDIT.\n" + string(b)
		if err := os.WriteFile(filepath.Join(libtch, f.Name()), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// shimHash changes with the shim's sources, so that editing them re-adapts gotch.
func shimHash() string {
	h := sha256.New()
	files, _ := fs.ReadDir(shim, "csrc")
	for _, f := range files {
		b, _ := shim.ReadFile("csrc/" + f.Name())
		fmt.Fprintf(h, "%s %d\n", f.Name(), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (a adaptation) stubMessage(name string) string {
	return fmt.Sprintf("gotch %s: %s is not available with libtorch %s", a.mod.GotchVersion, strings.TrimPrefix(name, "atg_"), a.lt.Version)
}

func (a adaptation) writeList(names []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# gotch %s wrappers that do not compile against libtorch %s; written by `go run ./torch/adapt -regen`.\n",
		a.mod.GotchVersion, a.lt.Version)
	for _, s := range names {
		b.WriteString(s + "\n")
	}
	path := filepath.Join(a.listDir, stubs.FileName(a.lt.Version))
	if err := os.MkdirAll(a.listDir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "adapt: wrote %s\n", path)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var diagRE = regexp.MustCompile(`(?m)^(?:In file included from )?([^\s:]+):(\d+):(?:\d+:)? (?:error|.*required from)`)

// discover compiles the wrappers (syntax only) and stubs every function the compiler complains about,
// until the file compiles. Diagnostics inside libtorch's own templates are traced back to the wrapper
// through their "required from" lines.
func (a adaptation) discover(libtch string, gen *generated) ([]string, error) {
	args := []string{"-fsyntax-only", "-std=c++17", "-w", "-fmax-errors=0", "-I."}
	for _, inc := range a.lt.Includes {
		args = append(args, "-I"+inc)
	}
	args = append(args, fmt.Sprintf("-D_GLIBCXX_USE_CXX11_ABI=%d", a.lt.CXX11ABI), "torch_api.cpp")
	var all []string
	for pass := 1; pass <= 5; pass++ {
		cmd := exec.Command("c++", args...)
		cmd.Dir = libtch
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			sort.Strings(all)
			return all, nil
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return nil, fmt.Errorf("running the C++ compiler: %w", err)
		}
		bad := map[string]bool{}
		for _, m := range diagRE.FindAllStringSubmatch(stderr.String(), -1) {
			if filepath.Base(m[1]) != generatedFile {
				continue
			}
			line, _ := strconv.Atoi(m[2])
			if name := gen.funcAt(line); name != "" {
				bad[name] = true
			}
		}
		if len(bad) == 0 {
			return nil, fmt.Errorf("gotch does not compile against libtorch %s outside its generated wrappers:\n%s",
				a.lt.Version, firstLines(stderr.String(), 20))
		}
		names := make([]string, 0, len(bad))
		for n := range bad {
			names = append(names, n)
		}
		if err := gen.stub(names, a.stubMessage); err != nil {
			return nil, err
		}
		if err := gen.write(); err != nil {
			return nil, err
		}
		all = append(all, names...)
	}
	return nil, errors.New("the generated wrappers still do not compile after 5 passes")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// copyTree copies a module folder; files in the module cache are read-only, the copy is writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
