package reftest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vggish-go/vggish/internal/golden"
)

// Fixture is one of the test WAVs the reference synthesises (testdata/reference.py synth).
type Fixture struct {
	Name     string  `json:"name"`
	Path     string  `json:"path"`
	Signal   string  `json:"signal"`
	Rate     int     `json:"rate"`
	Channels int     `json:"channels"`
	Subtype  string  `json:"subtype"`
	Seconds  float64 `json:"seconds"`
}

// Stem is the fixture's file name without extension: the reference names its outputs after it.
func (f Fixture) Stem() string {
	base := filepath.Base(f.Path)
	return base[:len(base)-len(filepath.Ext(base))]
}

var (
	workOnce sync.Once
	workDir  string
	workErr  error

	fixturesOnce sync.Once
	fixtures     []Fixture
)

// WorkDir is a folder shared by one test binary's reference outputs. Call Cleanup from TestMain.
func WorkDir(tb testing.TB) string {
	tb.Helper()
	dir, err := workDirPath()
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

func workDirPath() (string, error) {
	workOnce.Do(func() { workDir, workErr = os.MkdirTemp("", "vggish-reference-*") })
	return workDir, workErr
}

// Main runs a test binary's tests, removes the folders they shared (WorkDir's, and the formula
// weights of internal/golden) and exits with their status: a TestMain's whole body.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	golden.Cleanup()
	os.Exit(code)
}

// Cleanup removes WorkDir's folder.
func Cleanup() {
	if workDir != "" {
		os.RemoveAll(workDir)
	}
}

// Fixtures has the reference synthesise its test WAVs (once per test binary) and returns the manifest
// path and its entries.
func Fixtures(tb testing.TB) (manifest string, fx []Fixture) {
	tb.Helper()
	Require(tb)
	dir := filepath.Join(WorkDir(tb), "fixtures")
	manifest = filepath.Join(dir, "manifest.json")
	fixturesOnce.Do(func() {
		Run(tb, "reference.py", "synth", "--out", dir)
		b, err := os.ReadFile(manifest)
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, &fixtures); err != nil {
			tb.Fatal(err)
		}
	})
	if len(fixtures) == 0 {
		tb.Fatal("the reference synthesised no fixtures")
	}
	return manifest, fixtures
}

var (
	weightsMu sync.Mutex
	made      = map[string]string{}
)

// Weights returns seeded He-initialised VGGish weights in the published layout, written by the
// reference with torch.save in format "zip" or "legacy" (once per test binary; ~288 MB each).
func Weights(tb testing.TB, format string) string {
	tb.Helper()
	Require(tb)
	return must(tb)(WeightsPath(format))
}

// WeightsPath is Weights for callers without a testing.TB.
func WeightsPath(format string) (string, error) {
	return generated("weights-"+format+".pth", "--out", "--format", format)
}

// PCAParams returns seeded PCA parameters like torchvggish's .pth (kind "pth") or the TensorFlow
// release's .npz (kind "npz").
func PCAParams(tb testing.TB, kind string) string {
	tb.Helper()
	Require(tb)
	flag := map[string]string{"pth": "--pca", "npz": "--pca-npz"}[kind]
	return must(tb)(generated("pca."+kind, flag))
}

func must(tb testing.TB) func(string, error) string {
	return func(s string, err error) string {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

func generated(name, flag string, extra ...string) (string, error) {
	weightsMu.Lock()
	defer weightsMu.Unlock()
	if p, ok := made[name]; ok {
		return p, nil
	}
	dir, err := workDirPath()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := Exec("make_weights.py", append([]string{"--seed", "1", flag, p}, extra...)...); err != nil {
		return "", err
	}
	made[name] = p
	return p, nil
}
