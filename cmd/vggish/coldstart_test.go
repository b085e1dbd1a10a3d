package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
)

// runProcess runs a command to completion and returns its wall time and peak RSS in MB.
func runProcess(tb testing.TB, name string, args ...string) (time.Duration, float64) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	require.NoError(tb, err, "%s %v: %s", name, args, out)
	return wall, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
}

// BenchmarkColdStart is what a user waits for: `vggish embed --weights W --output o.npy` on a 10 s file,
// from process start to exit, beside the reference doing the same from a fresh interpreter. It also
// reports both processes' peak RSS.
func BenchmarkColdStart(b *testing.B) {
	bin := buildBinary(b)
	weights := reftest.Weights(b, "legacy") // the published file's format
	wav := reftest.Corpus(b, 1, 44100, 2, 10)[0]
	dir := b.TempDir()
	// Warm the page cache for both, as for any program run twice.
	runProcess(b, bin, "embed", "--weights", weights, "--output", filepath.Join(dir, "o.npy"), wav)
	var goWall, refWall time.Duration
	var goRSS, refRSS float64
	b.ResetTimer()
	for range b.N {
		w, rss := runProcess(b, bin, "embed", "--weights", weights, "--output", filepath.Join(dir, "o.npy"), wav)
		goWall, goRSS = goWall+w, max(goRSS, rss)
		b.StopTimer()
		w, rss = runProcess(b, reftest.Interpreter(), reftest.Script("reference.py"), "embed", "--weights", weights, "--out", dir, wav)
		refWall, refRSS = refWall+w, max(refRSS, rss)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(goRSS, "peak-RSS-MB")
	b.ReportMetric(refRSS, "ref-peak-RSS-MB")
	reftest.ReportVsReference(b, refWall.Seconds()/float64(b.N))
}

// A process that loads the weights and embeds one file stays under 800 MB.
func TestColdStartPeakMemory(t *testing.T) {
	bin := buildBinary(t)
	weights := reftest.Weights(t, "legacy")
	wav := reftest.Corpus(t, 1, 44100, 2, 10)[0]
	out := filepath.Join(t.TempDir(), "o.npy")
	wall, rss := runProcess(t, bin, "embed", "--weights", weights, "--output", out, wav)
	t.Logf("vggish embed of 10 s (44.1 kHz stereo): %v, peak RSS %.0f MB", wall.Round(time.Millisecond), rss)
	assert.Less(t, rss, 800.0)
	assert.FileExists(t, out)
	_, err := os.Stat(out)
	require.NoError(t, err)
}
