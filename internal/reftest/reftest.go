// Package reftest runs the Python reference (scripts under testdata/) from Go tests.
//
// The reference must run wherever `make test` runs, which sets VGGISH_REQUIRE_REFERENCE=1: there a
// missing interpreter or module fails the test. Elsewhere (`go test ./...` after `go get`, on a
// machine without the Python stack) the tests that run the reference live are skipped, saying why,
// and the rest run, the goldens' tests (internal/golden) among them. VGGISH_SKIP_REFERENCE=1 skips
// the live tests in any case.
package reftest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Interpreter is the Python that has torch, numpy, scipy, resampy and soundfile (Debian's apt packages).
// VGGISH_PYTHON overrides it.
func Interpreter() string {
	if p := os.Getenv("VGGISH_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// Root is the repository root, found from this file's location.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Script is the absolute path of a script under testdata/.
func Script(name string) string { return filepath.Join(Root(), "testdata", name) }

// Skipped reports whether VGGISH_SKIP_REFERENCE=1 asks to skip the reference.
func Skipped() bool { return os.Getenv("VGGISH_SKIP_REFERENCE") == "1" }

// Required reports whether VGGISH_REQUIRE_REFERENCE=1 (set by `make test`) makes a reference that
// cannot run a failure rather than a reason to skip.
func Required() bool { return os.Getenv("VGGISH_REQUIRE_REFERENCE") == "1" }

// modules are what the reference scripts import.
const modules = "torch, numpy, scipy, resampy, soundfile"

var (
	probeOnce sync.Once
	probeErr  error
)

// available returns why the reference cannot run here, or nil: the interpreter is missing or lacks
// one of the modules (checked once per test binary).
func available() error {
	probeOnce.Do(func() {
		if _, err := os.Stat(Interpreter()); err != nil {
			probeErr = fmt.Errorf("Python reference interpreter %s: %v", Interpreter(), err)
			return
		}
		out, err := exec.Command(Interpreter(), "-c", "import "+modules).CombinedOutput()
		if err != nil {
			probeErr = fmt.Errorf("Python reference interpreter %s cannot import %s: %v: %s", Interpreter(), modules, err, bytes.TrimSpace(out))
		}
	})
	return probeErr
}

// Require skips tb when VGGISH_SKIP_REFERENCE=1, or when the reference cannot run here unless
// VGGISH_REQUIRE_REFERENCE=1, with which a missing interpreter fails tb.
func Require(tb testing.TB) {
	tb.Helper()
	switch {
	case Skipped():
		tb.Skip("VGGISH_SKIP_REFERENCE=1: Python reference not run")
	case Required():
		if _, err := os.Stat(Interpreter()); err != nil {
			tb.Fatalf("Python reference interpreter %s: %v (run `make setup`)", Interpreter(), err)
		}
	default:
		if err := available(); err != nil {
			tb.Skipf("%v: live parity test skipped (`make test` requires it; the goldens' tests run without it)", err)
		}
	}
}

// Run runs testdata/<script> with args under the reference interpreter and returns its stdout. It fails
// tb, showing stderr, when the script fails.
func Run(tb testing.TB, script string, args ...string) []byte {
	tb.Helper()
	Require(tb)
	out, err := Exec(script, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Exec is Run for callers without a testing.TB (TestMain, examples, benchmarks' shared setup).
func Exec(script string, args ...string) ([]byte, error) {
	cmd := exec.Command(Interpreter(), append([]string{Script(script)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("reference %s %v: %v\n%s", script, args, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
