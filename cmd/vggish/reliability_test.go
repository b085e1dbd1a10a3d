package main

// Issue 25, through the built binary: nothing written over an input however it was named, one writer
// per output folder, open files and memory bounded by design, flags that do not apply refused.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
