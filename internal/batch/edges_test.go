package batch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/atomicfile"
	"github.com/vggish-go/vggish/internal/npyfile"
)

// An input that could not be read is its own failure, never opened; the others go on.
func TestRunInputFailures(t *testing.T) {
	root, inputs := corpus(t, "a.wav", "b.wav")
	missing := Input{Path: filepath.Join(root, "gone.wav"), Rel: "gone.wav", Err: fmt.Errorf("input gone.wav: %w", syscall.ENOENT)}
	out := t.TempDir()
	f := &fake{}
	sum, err := Run(context.Background(), f, append(inputs, missing), Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Embedded)
	assert.Equal(t, []Failure{{Path: missing.Path, Error: "input gone.wav: no such file or directory", Kind: KindIO}}, sum.Failures)
	assert.EqualValues(t, 2, f.calls.Load(), "the failed input was not opened")
	b, err := os.ReadFile(filepath.Join(out, "vggish-errors.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "gone.wav")

	// A rerun retries it rather than skipping it.
	sum, err = Run(context.Background(), f, append(inputs, missing), Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1}, []int{sum.Skipped, len(sum.Failures)})
}

// Standard input is embedded from Options.Stdin; a single result goes to standard output as .npy.
func TestRunStdinAndNPYOnStdout(t *testing.T) {
	var stdout bytes.Buffer
	stdin := []Input{{Path: "-", Rel: "-", Stdin: true}}
	sum, err := Run(context.Background(), &fake{}, stdin, Options{Stdout: &stdout, Format: NPY, Stdin: strings.NewReader("audio")})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Embedded)
	want := fakeEmbeddings("-:audio")
	path := filepath.Join(t.TempDir(), "x.npy")
	require.NoError(t, os.WriteFile(path, stdout.Bytes(), 0o644))
	data, shape := readNPY(t, path)
	assert.Equal(t, []int{want.Rows(), 128}, shape)
	assert.Equal(t, want.Data, data)

	stdout.Reset()
	_, err = Run(context.Background(), &fake{}, stdin, Options{Stdout: &stdout, Format: JSONL, Stdin: strings.NewReader("audio")})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(stdout.String(), `{"path":"-",`), stdout.String())
}

// A rerun whose inputs are a glob over the folder that holds its outputs does not take them as inputs.
func TestRunIgnoresItsOwnOutputs(t *testing.T) {
	root, _ := corpus(t, "a.wav", "b.wav", "notes.csv.wav")
	t.Chdir(root) // files named directly are keyed by their names as given: a.wav is written to a.npy
	for _, format := range []Format{NPY, JSONL, CSV} {
		inputs, err := Expand(t.Context(), []string{"*"}, nil, nil)
		require.NoError(t, err)
		var log bytes.Buffer
		sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: root, Format: format, Pool: Mean, Record: testRecord(), Progress: &log})
		require.NoError(t, err, format)
		assert.Equal(t, 3, sum.Inputs, "%s: %s", format, log.String())
	}
	// Every format's outputs, the run record and a temporary file are there now, and ignored.
	touch(t, root, ".a.npy.123.tmp")
	inputs, err := Expand(t.Context(), []string{"*", ".*"}, nil, nil)
	require.NoError(t, err)
	require.Greater(t, len(inputs), 10)
	var log bytes.Buffer
	sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: root, Format: CSV, Pool: Mean, Record: testRecord(), Progress: &log})
	require.NoError(t, err)
	assert.Equal(t, []int{3, 3}, []int{sum.Inputs, sum.Skipped})
	assert.Contains(t, log.String(), "ignoring "+fmt.Sprint(len(inputs)-3)+" inputs under "+root+" named like the outputs of a run")
}

// Inputs named up to the 255-byte limit are written, and their temporary files cleared on a rerun.
func TestRunLongNames(t *testing.T) {
	long := strings.Repeat("x", 251) + ".wav"
	_, inputs := corpus(t, long)
	out := t.TempDir()
	target := strings.TrimSuffix(long, ".wav") + ".npy"
	stale := filepath.Join(out, "."+atomicfile.Stem(target)+".42.tmp")
	touch(t, out, filepath.Base(stale))
	sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Embedded)
	data, _, err := npyfile.Read(filepath.Join(out, target))
	require.NoError(t, err)
	assert.Equal(t, fakeEmbeddings(inputs[0].Path).Data, data)
	assert.NoFileExists(t, stale, "a killed run's temporary file is cleared")
}

// Anything but a regular file, found in a folder or listed, fails alone as an io failure: it could
// not be read, which is not the model's fault.
func TestRunIrregularInputsFailAsIO(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "a.wav")
	fifo := filepath.Join(dir, "fifo.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	tests := []struct {
		name         string
		args, listed []string
		failed       string
	}{
		{"a named pipe in a folder", []string{dir}, nil, fifo},
		{"a named pipe listed", nil, []string{fifo}, fifo},
		{"a device listed", nil, []string{"/dev/null"}, "/dev/null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inputs, err := Expand(t.Context(), tt.args, tt.listed, nil)
			require.NoError(t, err)
			sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: t.TempDir(), Record: testRecord()})
			require.NoError(t, err)
			require.Len(t, sum.Failures, 1)
			assert.Equal(t, tt.failed, sum.Failures[0].Path)
			assert.Contains(t, sum.Failures[0].Error, "not a regular file")
			assert.Equal(t, KindIO, sum.Failures[0].Kind)
		})
	}
}
