// Package reftest runs the Python reference (scripts under testdata/) from Go tests.
//
// The reference must run wherever `make test` runs: a missing interpreter or module fails the test. Set
// VGGISH_SKIP_REFERENCE=1 to skip parity tests instead (for library users without the Python stack).
package reftest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// Require skips tb when VGGISH_SKIP_REFERENCE=1 and fails it when the reference interpreter is missing.
func Require(tb testing.TB) {
	tb.Helper()
	if Skipped() {
		tb.Skip("VGGISH_SKIP_REFERENCE=1: Python reference not run")
	}
	if _, err := os.Stat(Interpreter()); err != nil {
		tb.Fatalf("Python reference interpreter %s: %v (run `make setup`, or set VGGISH_SKIP_REFERENCE=1)", Interpreter(), err)
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
