package main

// Issue 25, through the built binary: nothing written over an input however it was named, one writer
// per output folder, open files and memory bounded by design, flags that do not apply refused.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/npyfile"
)

// Every command that writes refuses, before any work, an output that is one of its inputs found
// through a folder, a glob or a list, not only one named directly.
func TestNoOutputOverInputsHoweverNamed(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		// setup returns the arguments and the input that must survive.
		setup func(dir string) (args []string, input string)
	}{
		{"fad --save-stats over a file of a folder set", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "set", "a.wav"))
			return []string{"fad", "--weights", fx.weights, "--save-stats", in, filepath.Join(dir, "set")}, in
		}},
		{"fad --save-stats over a glob match", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "set", "a.wav"))
			return []string{"fad", "--weights", fx.weights, "--save-stats", in, filepath.Join(dir, "set", "*.wav")}, in
		}},
		{"fad --save-stats over a file a list names", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "a.wav"))
			list := filepath.Join(dir, "set.txt")
			require.NoError(t, os.WriteFile(list, []byte(in+"\n"), 0o644))
			return []string{"fad", "--weights", fx.weights, "--save-stats", in, list}, in
		}},
		{"fad --save-eval-stats over a file of the background set, through a link", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "bg", "a.wav"))
			copyFile(t, fx.wav, filepath.Join(dir, "ev", "b.wav"))
			link := filepath.Join(dir, "stats.npz")
			require.NoError(t, os.Symlink(in, link))
			return []string{"fad", "--weights", fx.weights, "--save-eval-stats", link, filepath.Join(dir, "bg"), filepath.Join(dir, "ev")}, in
		}},
		{"fad --save-stats over the list itself", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "a.wav"))
			list := filepath.Join(dir, "set.txt")
			require.NoError(t, os.WriteFile(list, []byte(in+"\n"), 0o644))
			return []string{"fad", "--weights", fx.weights, "--save-stats", list, list}, list
		}},
		{"embed --output over a file of a folder", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "set", "a.wav"))
			return []string{"embed", "--weights", fx.weights, "--format", "npy", "--output", in, filepath.Join(dir, "set")}, in
		}},
		{"embed --output over a file a list names", func(dir string) ([]string, string) {
			in := copyFile(t, fx.wav, filepath.Join(dir, "a.wav"))
			list := filepath.Join(dir, "list.txt")
			require.NoError(t, os.WriteFile(list, []byte(in+"\n"), 0o644))
			return []string{"embed", "--weights", fx.weights, "--format", "npy", "--output", in, "--files-from", list}, in
		}},
		{"selftest --save over the weights", func(dir string) ([]string, string) {
			w := filepath.Join(dir, "w.pth")
			require.NoError(t, os.Link(fx.weights, w))
			return []string{"selftest", "--weights", w, "--save", w}, w
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, input := tt.setup(t.TempDir())
			before := sum(t, input)
			r := runVggish(t, nil, nil, args...)
			assert.Equal(t, 2, r.code, r.stderr)
			last := lastLine(r.stderr)
			assert.Contains(t, last, "refusing to write over an input")
			assert.Contains(t, last, input)
			assert.Equal(t, before, sum(t, input), "the input is untouched")
		})
	}
	t.Run("logmel: standard output appended to the input from standard input", func(t *testing.T) {
		in := copyFile(t, fx.wav, filepath.Join(t.TempDir(), "a.wav"))
		before := sum(t, in)
		f, err := os.OpenFile(in, os.O_RDWR|os.O_APPEND, 0)
		require.NoError(t, err)
		defer f.Close()
		cmd := exec.Command(sharedBinary(t), "logmel", "--output", "-", "-")
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 2, exit.ExitCode())
		assert.Contains(t, lastLine(stderr.String()), "standard output is the input -: refusing to write over an input")
		assert.Equal(t, before, sum(t, in))
	})
}

// One writer per output folder: a second run is refused, naming the first, until the first ends
// however it ends (SIGKILL included: the kernel releases the lock).
func TestOneWriterPerOutputFolder(t *testing.T) {
	fx := newFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	// 12,000 clips: minutes of work.
	first := start(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--hop", "0.05", longFLAC(t))
	first.waitDecoder(t) // past the lock: embedding
	for _, extra := range [][]string{nil, {"--shard", "1/2"}, {"--format", "npy"}} {
		args := append([]string{"embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", fx.wav}, extra...)
		r := runVggish(t, nil, nil, args...)
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Contains(t, lastLine(r.stderr), fmt.Sprintf("is being written by another run (pid %d on ", first.cmd.Process.Pid), extra)
		assert.Contains(t, lastLine(r.stderr), "long.flac", "the first run's command line")
	}
	require.NoError(t, first.cmd.Process.Kill())
	first.wait(t, hangLimit)
	r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--hop", "0.05", fx.wav)
	assert.Equal(t, 0, r.code, r.stderr)

	t.Run("the shards of a job side by side", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		long := longFLAC(t)
		inputs, err := batch.Expand(t.Context(), []string{long}, nil, nil)
		require.NoError(t, err)
		i := 0
		if !(batch.Shard{Index: 0, Count: 2}).Contains(inputs[0]) {
			i = 1
		}
		busy := start(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--shard", fmt.Sprintf("%d/2", i), "--hop", "0.05", long)
		busy.waitDecoder(t)
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--shard", fmt.Sprintf("%d/2", 1-i), "--hop", "0.05", fx.wav)
		assert.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, busy.cmd.Process.Kill())
		busy.wait(t, hangLimit)
	})
}

// Open files are bounded by design: under `ulimit -n 64` (soft and hard) every one of 160 files, half
// of them through ffmpeg, is embedded, and the run record holds --workers as given.
func TestOpenFilesBoundedByTheLimit(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	const n = 80
	for i := range n {
		copyFile(t, fx.wav, filepath.Join(in, fmt.Sprintf("w%03d.wav", i)))
		copyFile(t, fx.flac, filepath.Join(in, fmt.Sprintf("f%03d.flac", i)))
	}
	script := fmt.Sprintf("ulimit -n 64 && exec %q embed --weights %q --workers 2 --out-dir %q %q", sharedBinary(t), fx.weights, out, in)
	cmd := exec.Command("bash", "-c", script)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Contains(t, string(b), fmt.Sprintf("%d files: %d embedded", 2*n, 2*n))
	var rec batch.Record
	b, err = os.ReadFile(filepath.Join(out, "vggish-run.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, 2, rec.Workers, "as given")
	assert.Equal(t, (64-32)/4, rec.FilesInFlight, "bounded by the limit")
}

// Flags that would not apply, or could not work, are refused before any work (exit status 2).
func TestFlagsThatDoNotApply(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--out-dir", "OUT", "--part-size", "1MiB"}, nil, "--part-size and --part-time size Parquet parts: they need --format parquet"},
		{[]string{"--out-dir", "OUT", "--part-time", "1m", "--format", "npz"}, nil, "they need --format parquet"},
		{[]string{"--output", "OUT.npy", "--overwrite"}, nil, "--overwrite redoes the outputs of an output folder: it needs --out-dir"},
		{[]string{"--out-dir", "OUT", "--precision", "fp16", "--device", "cpu"}, nil, "--precision fp16 runs on CUDA only"},
		{[]string{"--out-dir", "OUT"}, []string{"VGGISH_NUM_SHARDS=8"}, "VGGISH_NUM_SHARDS=8 but no shard index"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.env, tt.args...), " "), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"embed", "--weights", fx.weights, fx.wav}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "OUT", filepath.Join(dir, "out")))
			}
			r := runVggish(t, nil, tt.env, args...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, lastLine(r.stderr), tt.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing done")
		})
	}
	t.Run("fad: one file for both sets' statistics", func(t *testing.T) {
		stats := filepath.Join(t.TempDir(), "s.npz")
		r := runVggish(t, nil, nil, "fad", "--weights", fx.weights, "--save-stats", stats, "--save-eval-stats", stats, fx.wav, fx.flac)
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Contains(t, lastLine(r.stderr), "--save-stats and --save-eval-stats are both "+stats)
	})
	t.Run("a 20 MB line in --files-from fails alone", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "list.txt")
		long := strings.Repeat("x", 20<<20) // far over bufio.Scanner's token limit, which aborted the list
		require.NoError(t, os.WriteFile(list, []byte(fx.wav+"\n"+long+"\n"), 0o644))
		out := filepath.Join(t.TempDir(), "out")
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--files-from", list)
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Contains(t, r.stderr, "2 files: 1 embedded")
		assert.Contains(t, r.stderr, "file name too long")
	})
}

// FAD results that cannot be are errors naming the statistics; a count that is not known reads well.
func TestFADImpossibleResults(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mu0 float64, n int64) string {
		const d = 128
		mu, sigma := make([]float64, d), make([]float64, d*d)
		mu[0] = mu0
		for i := range d {
			sigma[i*d+i] = 1
		}
		z := npyfile.NewNPZ()
		npyfile.Add(z, "mu", mu, d)
		npyfile.Add(z, "sigma", sigma, d, d)
		if n > 0 {
			npyfile.Add(z, "n", []int64{n})
		}
		path := filepath.Join(dir, name)
		require.NoError(t, z.Write(path))
		return path
	}
	zero, huge, uncounted := write("zero.npz", 0, 500), write("huge.npz", 1e200, 500), write("fid.npz", 1, 0)
	r := runVggish(t, nil, nil, "fad", zero, huge)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, lastLine(r.stderr), "FAD +Inf is not a distance: the statistics in "+zero+" and "+huge)
	assert.Empty(t, r.stdout)

	r = runVggish(t, nil, nil, "fad", uncounted, zero)
	assert.Equal(t, 0, r.code, r.stderr)
	d, err := strconv.ParseFloat(strings.TrimSpace(r.stdout), 64)
	require.NoError(t, err)
	assert.InDelta(t, 1, d, 1e-12, "the means 1 apart, the covariances equal")
	assert.Contains(t, r.stderr, "(an unknown number of clips and 500 clips)")
}

// A memory limit the model cannot run under is refused before it loads, clearly and with exit status
// 1, where it once crashed (a Go runtime abort, exit status 2) or spun in OpenBLAS's allocator; under
// a limit it fits in, the run completes.
func TestMemoryLimitRefusedUpFront(t *testing.T) {
	fx := newFixture(t)
	run := func(kb int) (int, string) {
		out := filepath.Join(t.TempDir(), "x.npy")
		script := fmt.Sprintf("ulimit -v %d && exec %q embed --weights %q --device cpu --output %q %q", kb, sharedBinary(t), fx.weights, out, fx.wav)
		return runBin(t, "bash", "-c", script)
	}
	code, stderr := run(2_500_000)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, lastLine(stderr), "the address-space limit (ulimit -v) is 2.4 GiB: the model needs about 3.1 GiB")
	assert.NotContains(t, stderr, "goroutine", "no crash")

	code, stderr = run(8_000_000)
	assert.Equal(t, 0, code, stderr)
}

// fad and selftest refuse every path they cannot use before any work, with exit status 2: a statistics
// file that is missing or a named pipe (which once blocked the run in open), a set on standard input,
// which fad does not read, and an output that is a named pipe or in a missing folder (once refused
// only after the embedding, as "npy FILE.npz").
func TestFADAndSelftestPathsBeforeWork(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "q.npz")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	stats := filepath.Join(dir, "ev.npz")
	require.NoError(t, os.WriteFile(stats, nil, 0o644))
	missing := filepath.Join(dir, "missing.npz")
	noFolder := filepath.Join(dir, "none", "s.npz")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fad", missing, stats}, "vggish fad: statistics " + missing + ": no such file or directory"},
		{[]string{"fad", fifo, stats}, "vggish fad: statistics " + fifo + ": not a regular file: it is a named pipe"},
		{[]string{"fad", "--weights", fx.weights, "-", fx.wav}, "vggish fad: set -: fad reads no standard input"},
		{[]string{"fad", "--weights", fx.weights, "--save-stats", fifo, fx.wav}, "vggish fad: --save-stats " + fifo + ": not a regular file: it is a named pipe"},
		{[]string{"fad", "--weights", fx.weights, "--save-eval-stats", noFolder, fx.wav, fx.flac}, "vggish fad: --save-eval-stats " + noFolder + ": no folder"},
		{[]string{"selftest", "--weights", fx.weights, "--save", fifo}, "vggish selftest: --save " + fifo + ": not a regular file: it is a named pipe"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runVggish(t, nil, nil, tt.args...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "usage: vggish "), r.stderr)
			assert.True(t, strings.HasPrefix(lastLine(r.stderr), tt.want), r.stderr)
			assert.NotContains(t, r.stderr, "embedding ", "no work done")
		})
	}
}
