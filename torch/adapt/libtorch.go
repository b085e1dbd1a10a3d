package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// libtorch describes the libtorch installation gotch is built against.
type libtorch struct {
	Root     string   // $LIBTORCH, or "/usr" for the system install
	Includes []string // header folders, in search order
	LibDir   string
	Version  string // TORCH_VERSION from the headers
	CUDA     bool   // libtorch_cuda is present
	CXX11ABI int    // the _GLIBCXX_USE_CXX11_ABI libtorch was built with
	System   bool   // found in the system folders rather than $LIBTORCH
}

func (lt libtorch) flavour() string {
	if lt.CUDA {
		return "cuda"
	}
	return "cpu"
}

var versionRE = regexp.MustCompile(`#define\s+TORCH_VERSION\s+(?:\\\s*)?"([^"]+)"`)

func findLibtorch() (libtorch, error) {
	lt := libtorch{Root: os.Getenv("LIBTORCH")}
	if lt.Root != "" {
		lt.Includes = []string{filepath.Join(lt.Root, "include"), filepath.Join(lt.Root, "include", "torch", "csrc", "api", "include")}
		lt.LibDir = filepath.Join(lt.Root, "lib")
	} else {
		lt.Root, lt.System = "/usr", true
		lt.Includes = []string{"/usr/include", "/usr/include/torch/csrc/api/include"}
		for _, dir := range systemLibDirs() {
			if exists(filepath.Join(dir, "libtorch.so")) {
				lt.LibDir = dir
				break
			}
		}
		if lt.LibDir == "" {
			return lt, errors.New("no libtorch found: set LIBTORCH to an upstream libtorch folder, or install it " +
				"(Debian/Ubuntu: apt-get install libtorch-dev; or run `make setup`)")
		}
	}
	if !exists(filepath.Join(lt.LibDir, "libtorch.so")) {
		return lt, fmt.Errorf("libtorch at %s: no libtorch.so in %s", lt.Root, lt.LibDir)
	}
	header := filepath.Join(lt.Includes[1], "torch", "version.h")
	b, err := os.ReadFile(header)
	if err != nil {
		return lt, fmt.Errorf("libtorch at %s: reading its version: %w", lt.Root, err)
	}
	m := versionRE.FindSubmatch(b)
	if m == nil {
		return lt, fmt.Errorf("libtorch at %s: no TORCH_VERSION in %s", lt.Root, header)
	}
	lt.Version = string(m[1])
	lt.CUDA = exists(filepath.Join(lt.LibDir, "libtorch_cuda.so"))
	if lt.CXX11ABI, err = cxx11ABI(lt); err != nil {
		return lt, fmt.Errorf("libtorch at %s: %w", lt.Root, err)
	}
	return lt, nil
}

// systemLibDirs lists where a distribution puts shared libraries, multiarch first.
func systemLibDirs() []string {
	var dirs []string
	if out, err := exec.Command("gcc", "-print-multiarch").Output(); err == nil {
		if ma := strings.TrimSpace(string(out)); ma != "" {
			dirs = append(dirs, "/usr/lib/"+ma)
		}
	}
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	return append(dirs, "/usr/lib/"+arch+"-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")
}

var abiRE = regexp.MustCompile(`_GLIBCXX_USE_CXX11_ABI=([01])`)

// cxx11ABI reads the ABI from TorchConfig.cmake, which records the flag libtorch was built with, and
// falls back to looking for C++11-ABI symbols in libc10.
func cxx11ABI(lt libtorch) (int, error) {
	for _, cfg := range []string{
		filepath.Join(lt.Root, "share", "cmake", "Torch", "TorchConfig.cmake"),
		filepath.Join(lt.LibDir, "cmake", "Torch", "TorchConfig.cmake"),
	} {
		if b, err := os.ReadFile(cfg); err == nil {
			if m := abiRE.FindSubmatch(b); m != nil {
				return int(m[1][0] - '0'), nil
			}
		}
	}
	f, err := elf.Open(filepath.Join(lt.LibDir, "libc10.so"))
	if err != nil {
		return 0, fmt.Errorf("finding its C++ ABI: %w", err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return 0, fmt.Errorf("finding its C++ ABI: %w", err)
	}
	for _, s := range syms {
		if strings.Contains(s.Name, "__cxx11") {
			return 1, nil
		}
	}
	return 0, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
