package main

// Issue 25, through the built binary: nothing written over an input however it was named, one writer
// per output folder, open files and memory bounded by design, flags that do not apply refused.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
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
	first.waitFFmpeg(t) // past the lock: embedding
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
		i := 0
		if !(batch.Shard{Index: 0, Count: 2}).Contains(batch.Input{Rel: filepath.Base(long)}) {
			i = 1
		}
		busy := start(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--shard", fmt.Sprintf("%d/2", i), "--hop", "0.05", long)
		busy.waitFFmpeg(t)
		r := runVggish(t, nil, nil, "embed", "--weights", fx.weights, "--out-dir", out, "--format", "parquet", "--shard", fmt.Sprintf("%d/2", 1-i), "--hop", "0.05", fx.wav)
		assert.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, busy.cmd.Process.Kill())
		busy.wait(t, hangLimit)
	})
}
