package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
)

// fadResult is reference.py fad's output.
type fadResult struct {
	Results []struct {
		Eval      string  `json:"eval"`
		FAD       float64 `json:"fad"`
		Exact     float64 `json:"fad_from_vectors"`
		N         []*int  `json:"n"`
		TraceSqrt float64 `json:"trace_sqrt"`
		MaxImag   float64 `json:"max_imag"`
	}
	Embeddings map[string]string
	Seconds    float64
}

// runFADBinary runs `vggish fad` to completion and returns the FAD it prints, its stderr and its wall
// time from process start to exit.
func runFADBinary(t *testing.T, bin string, args ...string) (float64, string, time.Duration) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"fad"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Run(), "%s", stderr.String())
	wall := time.Since(start)
	d, err := strconv.ParseFloat(strings.TrimSpace(stdout.String()), 64)
	require.NoError(t, err, "stdout %q", stdout.String())
	return d, stderr.String(), wall
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

// The acceptance: `vggish fad` on two sets of 100 files (distorted sines after Google's FAD
// test files: clean background, noisy eval; 200 clips each) equals numpy mean/cov + scipy sqrtm on
// the reference's embeddings of the same files (reference.py fad) to 1e-6 relative, and both run
// end to end from process start, each at one thread per core; the times are logged (the machine may
// be shared: see BenchmarkFAD). Then: the saved statistics are numpy's mean and covariance of the
// reference's embeddings; statistics files stand in for sets; eval sets of 30 files (60 clips: singular
// covariances), given as a list file and as a glob, within 1e-6 relative of the FAD computed from the
// reference's vectors, where scipy's sqrtm of the singular product errs by up to 5e-8 of the traces
// (which the FAD of similar sets is far smaller than); statistics made with other settings are
// refused; a file that fails fails the command.
func TestFADMatchesPython(t *testing.T) {
	w := reftest.Weights(t, "zip")
	dir := t.TempDir()
	reftest.Run(t, "reference.py", "fadsets", "--out", dir, "--files", "100", "--seconds", "2", "--sets", "background", "noisy")
	small := filepath.Join(dir, "small")
	reftest.Run(t, "reference.py", "fadsets", "--out", small, "--files", "30", "--seconds", "2", "--sets", "clipped", "detuned")
	bg, noisy := filepath.Join(dir, "background"), filepath.Join(dir, "noisy")
	bin := buildBinary(t)
	threads := strconv.Itoa(runtime.NumCPU())

	emb := filepath.Join(dir, "emb")
	start := time.Now()
	var ref fadResult
	require.NoError(t, json.Unmarshal(reftest.Run(t, "reference.py", "fad", "--threads", threads, "--weights", w, "--save-embeddings", emb, bg, noisy), &ref))
	refWall := time.Since(start)
	bgStats, noisyStats := filepath.Join(dir, "bg.npz"), filepath.Join(dir, "noisy.npz")
	got, stderr, goWall := runFADBinary(t, bin, "--weights", w, "--threads", threads, "--save-stats", bgStats, "--save-eval-stats", noisyStats, bg, noisy)
	want := ref.Results[0].FAD
	t.Logf("background vs noisy (100 files, 200 clips each): vggish fad %.17g, reference %.17g, relative difference %.2g (tolerance 1e-6)", got, want, relDiff(got, want))
	t.Logf("end to end: vggish fad %.1f s, reference.py fad %.1f s (%.2fx)", goWall.Seconds(), refWall.Seconds(), refWall.Seconds()/goWall.Seconds())
	assert.InDelta(t, want, got, 1e-6*want)
	assert.Contains(t, stderr, "saved the statistics of "+bg+" (200 clips)")

	// numpy reads the statistics: float64 mu, sigma and n, numpy's mean and covariance of the
	// reference's embeddings.
	out, err := exec.Command(reftest.Interpreter(), "-c", `import sys, json, numpy as np
z = np.load(sys.argv[1]); e = np.load(sys.argv[2]).astype(np.float64)
mu, sigma = e.mean(axis=0), np.cov(e, rowvar=False)
print(json.dumps({"n": int(z["n"]), "dtypes": [str(z["mu"].dtype), str(z["sigma"].dtype)],
  "mu": float(np.abs(z["mu"] - mu).max() / np.abs(mu).max()), "sigma": float(np.abs(z["sigma"] - sigma).max() / np.abs(sigma).max()),
  "settings": json.loads(bytes(z["settings"]).decode())}))`, bgStats, ref.Embeddings["background"]).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var stats struct {
		N         int
		DTypes    []string
		Mu, Sigma float64
		Settings  map[string]any
	}
	require.NoError(t, json.Unmarshal(out, &stats))
	t.Logf("saved statistics against numpy's of the reference's embeddings: mu %.2g, sigma %.2g (relative)", stats.Mu, stats.Sigma)
	assert.Equal(t, 200, stats.N)
	assert.Equal(t, []string{"float64", "float64"}, stats.DTypes)
	assert.Less(t, stats.Mu, 1e-6)
	assert.Less(t, stats.Sigma, 1e-6)
	assert.Equal(t, "drop", stats.Settings["tail"])

	fromStats, _, _ := runFADBinary(t, bin, bgStats, noisyStats)
	assert.InDelta(t, got, fromStats, 1e-12*got, "statistics files stand in for the sets")

	// Eval sets of 30 files against the saved background: as a list file and as a glob.
	list := filepath.Join(dir, "clipped.txt")
	clipped, err := filepath.Glob(filepath.Join(small, "clipped", "*.wav"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(list, []byte(strings.Join(clipped, "\n")), 0o644))
	var refSmall fadResult
	require.NoError(t, json.Unmarshal(reftest.Run(t, "reference.py", "fad", "--weights", w, ref.Embeddings["background"],
		filepath.Join(small, "clipped"), filepath.Join(small, "detuned")), &refSmall))
	for i, set := range []string{list, filepath.Join(small, "detuned", "*.wav")} {
		got, stderr, _ := runFADBinary(t, bin, "--weights", w, bgStats, set)
		r := refSmall.Results[i]
		t.Logf("background vs %s (60 clips): vggish fad %.17g; from the reference's vectors %.17g, relative difference %.2g; scipy %.17g, %.2g (its largest imaginary part %.2g)",
			filepath.Base(r.Eval), got, r.Exact, relDiff(got, r.Exact), r.FAD, relDiff(got, r.FAD), r.MaxImag)
		assert.InDelta(t, r.Exact, got, 1e-6*r.Exact, set)
		assert.Contains(t, stderr, "has 60 clips, no more than the 128 dimensions")
	}

	code, stderr := runBin(t, bin, "fad", "--weights", w, "--hop", "0.5", bgStats, filepath.Join(small, "clipped"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "bg.npz was made with other settings than this run: hop_seconds 0.96, now 0.5")

	broken := filepath.Join(dir, "broken")
	require.NoError(t, os.MkdirAll(broken, 0o755))
	for _, f := range clipped[:3] {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(broken, filepath.Base(f)), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(broken, "garbage.wav"), []byte("RIFF not really"), 0o644))
	code, stderr = runBin(t, bin, "fad", "--weights", w, bgStats, broken)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "1 of 4 files failed: no FAD of the rest")
}

// BenchmarkFAD is `vggish fad` on the two sets of 100 files of TestFADMatchesPython, from process
// start to exit, beside reference.py fad (numpy + scipy, the model loaded once) on the same files at
// the same thread count.
func BenchmarkFAD(b *testing.B) {
	w := reftest.Weights(b, "zip")
	dir := b.TempDir()
	reftest.Run(b, "reference.py", "fadsets", "--out", dir, "--files", "100", "--seconds", "2", "--sets", "background", "noisy")
	bg, noisy := filepath.Join(dir, "background"), filepath.Join(dir, "noisy")
	bin := buildBinary(b)
	threads := strconv.Itoa(reftest.BenchThreads())
	args := []string{"fad", "--weights", w, "--threads", threads, bg, noisy}
	runProcess(b, bin, args...) // warm the page cache, as for any program run twice
	var refWall time.Duration
	b.ResetTimer()
	for range b.N {
		runProcess(b, bin, args...)
		b.StopTimer()
		refWall += runProcess(b, reftest.Interpreter(), reftest.Script("reference.py"), "fad", "--threads", threads, "--weights", w, bg, noisy).wall
		b.StartTimer()
	}
	b.StopTimer()
	reftest.ReportVsReference(b, refWall.Seconds()/float64(b.N))
}
