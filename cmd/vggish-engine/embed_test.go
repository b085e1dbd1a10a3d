package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/cli"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/weights"
)

// The test binary is the decoding workers' program too, as vggish is.
func TestMain(m *testing.M) {
	decoderWorkerMain()
	useDecoders() // its workers end with the test binary
	reftest.Main(m)
}

// corpusSize is the number of files of TestEmbedBatch: the 200 by default (about 300 clips);
// VGGISH_BATCH_FILES changes it.
func corpusSize(t *testing.T) int {
	if v := os.Getenv("VGGISH_BATCH_FILES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "VGGISH_BATCH_FILES")
		return n
	}
	return 200
}

// buildBinary builds vggish (the front door), vggish-engine and the decoding workers' program into a
// temporary folder, as `make build` lays them out, and returns vggish's path (sharedBinary's runs
// test the fallback: no vggish-decoder).
func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := build(tb.TempDir(), true)
	require.NoError(tb, err)
	return bin
}

// build builds vggish and vggish-engine into dir, and vggish-decoder with decoder, and returns
// vggish's path.
func build(dir string, decoder bool) (string, error) {
	builds := [][2]string{{"vggish", "../vggish"}, {cli.EngineName, "."}}
	if decoder && decoderWorkers {
		builds = append(builds, [2]string{decoderName, "../vggish-decoder"})
	}
	for _, b := range builds {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b[0]), b[1]).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", b[1], err, out)
		}
	}
	return filepath.Join(dir, "vggish"), nil
}

// runBin runs the binary and returns its exit code and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stderr.String()
	}
	require.NoError(t, err)
	return 0, stderr.String()
}

// The acceptance run, as a user runs it: a batch with three corrupt files writes every good
// file's output, lists the three and exits 1; a rerun skips what is done; a run killed (SIGKILL)
// once outputs appear, then rerun, ends with the same outputs and no partial or temporary file;
// outputs equal single-file --output runs.
func TestEmbedBatch(t *testing.T) {
	bin := buildBinary(t)
	c := batchtest.Make(t, filepath.Join(t.TempDir(), "corpus"), corpusSize(t))
	w := reftest.Weights(t, "zip")
	common := []string{"embed", "--weights", w, "--device", "cpu", "--batch", "16", c.Root}
	total := len(c.Good) + len(c.Corrupt)

	out1 := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	code, stderr := runBin(t, bin, append(common, "--out-dir", out1)...)
	t.Logf("first run, %s: %s", time.Since(start).Round(time.Millisecond), summaryLine(stderr))
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "vggish embed: 3 of "+strconv.Itoa(total)+" files failed")
	assert.Equal(t, 3, strings.Count(stderr, "FAILED "), stderr)
	assert.ElementsMatch(t, c.Corrupt, failureList(t, c.Root, out1))
	good := outputs(t, out1)
	require.Len(t, good, len(c.Good))
	for _, rel := range c.Good {
		assert.Contains(t, good, npyName(rel))
	}
	var rec batch.Record
	b, err := os.ReadFile(filepath.Join(out1, "vggish-run.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rec))
	sum, err := weights.SHA256(w)
	require.NoError(t, err)
	assert.Equal(t, sum, rec.Settings.WeightsSHA256)
	assert.Equal(t, resampler, rec.Settings.Resampler)
	assert.Equal(t, "cpu", rec.Device)
	assert.Equal(t, blas(), rec.BLAS, "the BLAS and its kernels, which the bits depend on")
	assert.Equal(t, []int{total, len(c.Good), 3}, []int{rec.Inputs, rec.Embedded, rec.Failed})

	start = time.Now()
	code, stderr = runBin(t, bin, append(common, "--out-dir", out1)...)
	t.Logf("rerun: %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, 1, code, "the corrupt files fail again")
	assert.Contains(t, stderr, "skipping "+strconv.Itoa(len(c.Good))+" of "+strconv.Itoa(total)+" files")

	// Killed midway, then rerun.
	out2 := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(bin, append(common, "--out-dir", out2)...)
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(2 * time.Minute)
	for len(outputs(t, out2)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	partial := outputs(t, out2)
	t.Logf("killed with %d of %d outputs written", len(partial), len(c.Good))
	require.NotEmpty(t, partial)
	require.Less(t, len(partial), len(c.Good), "killed before the end")
	for _, rel := range partial {
		sameEmbeddings(t, filepath.Join(out1, rel), filepath.Join(out2, rel))
	}
	code, stderr = runBin(t, bin, append(common, "--out-dir", out2)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "skipping "+strconv.Itoa(len(partial))+" of")
	assert.Equal(t, good, outputs(t, out2))
	for _, rel := range good {
		sameEmbeddings(t, filepath.Join(out1, rel), filepath.Join(out2, rel))
	}
	assert.ElementsMatch(t, c.Corrupt, failureList(t, c.Root, out2))
	for _, dir := range []string{out1, out2, c.Root} {
		assertNoTemps(t, dir)
	}

	// Single-file runs: a WAV of several clips and the FLAC, MP3 and Ogg conversions.
	var singles []string
	for _, rel := range c.Good {
		if strings.HasPrefix(rel, "converted/") {
			singles = append(singles, rel)
		}
	}
	singles = append(singles, "fixtures/speech_16k_mono_pcm32_10s.wav")
	require.Len(t, singles, 4)
	for _, rel := range singles {
		single := filepath.Join(t.TempDir(), "single.npy")
		code, stderr := runBin(t, bin, "embed", "--weights", w, "--device", "cpu", "--output", single, filepath.Join(c.Root, rel))
		require.Equal(t, 0, code, stderr)
		sameEmbeddings(t, single, filepath.Join(out1, npyName(rel)))
	}
}

// summaryLine is the "N files: ..." line of a run's stderr.
func summaryLine(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, " files: ") {
			return line
		}
	}
	return ""
}

func npyName(rel string) string { return strings.TrimSuffix(rel, path.Ext(rel)) + ".npy" }

// outputs lists the .npy files under dir, relative and slash-separated, sorted.
func outputs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".npy") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	require.NoError(t, err)
	slices.Sort(out)
	return out
}

// failureList reads the paths of DIR/vggish-errors.jsonl, relative to root.
func failureList(t *testing.T, root, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "vggish-errors.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var rels []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fail batch.Failure
		require.NoError(t, json.Unmarshal(sc.Bytes(), &fail))
		assert.NotEmpty(t, fail.Error)
		rel, err := filepath.Rel(root, fail.Path)
		require.NoError(t, err)
		rels = append(rels, filepath.ToSlash(rel))
	}
	return rels
}

// sameEmbeddings asserts two .npy outputs are equal to the bit: batching does not change a clip's
// numbers (see vggish's TestBatchInvariance).
func sameEmbeddings(t *testing.T, want, got string) {
	t.Helper()
	a, shapeA, err := npyfile.Read(want)
	require.NoError(t, err)
	b, shapeB, err := npyfile.Read(got)
	require.NoError(t, err)
	require.Equal(t, shapeA, shapeB, got)
	assert.True(t, slices.Equal(a, b), "%s differs from %s", got, want)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	}))
}
