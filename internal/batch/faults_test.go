package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vggish-go/vggish/vggish"
)

// A panic while processing one file (a bug) is that file's failure, with its stack in the failure
// list, and the run goes on, writing to files or to standard output.
func TestRunPanicIsAFileFailure(t *testing.T) {
	_, inputs := corpus(t, names...)
	panics := func(p string) bool { return strings.HasSuffix(p, "ccc.mp3") }
	out := t.TempDir()
	var log bytes.Buffer
	sum, err := Run(context.Background(), &fake{panicOn: panics}, inputs, Options{OutDir: out, Workers: 3, Record: testRecord(), Progress: &log})
	require.NoError(t, err)
	assert.Equal(t, 6, sum.Embedded)
	require.Len(t, sum.Failures, 2)
	p := sum.Failures[1]
	require.True(t, panics(p.Path), p.Path)
	assert.Equal(t, "panic: runtime error: invalid memory address or nil pointer dereference", p.Error)
	assert.Equal(t, KindPanic, p.Kind)
	assert.Contains(t, p.Stack, "batch.(*fake).EmbedFile")
	assert.Contains(t, log.String(), "FAILED "+p.Path+": panic: runtime error: invalid memory address or nil pointer dereference (a bug: please report it with the stack in "+filepath.Join(out, "vggish-errors.jsonl")+")")
	b, err := os.ReadFile(filepath.Join(out, "vggish-errors.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2)
	var listed Failure
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &listed))
	assert.Equal(t, p, listed)

	var stdout bytes.Buffer
	sum, err = Run(context.Background(), &fake{panicOn: panics, jitter: true}, inputs, Options{Stdout: &stdout, Workers: 3})
	require.NoError(t, err)
	assert.Equal(t, 6, sum.Embedded)
	assert.Equal(t, 6, strings.Count(stdout.String(), "shape=("), "the files after the panicking one are written, in order")

	// A panic writing one file's output fails that file.
	r, err := newRun(inputs, Options{OutDir: t.TempDir(), Workers: 2})
	require.NoError(t, err)
	r.sink.(*files).write = func(main, pool string, format Format, p Pool, asUint8 bool, in Input, e *vggish.Embeddings) error {
		if in.Rel == "bb.wav" {
			panic("writer bug")
		}
		return writeFiles(main, pool, format, p, asUint8, in, e)
	}
	sum, err = r.run(context.Background(), &fake{})
	require.NoError(t, err)
	assert.Equal(t, 6, sum.Embedded)
	require.Len(t, sum.Failures, 2)
	assert.Equal(t, "panic: writer bug", sum.Failures[1].Error)
	assert.Contains(t, sum.Failures[1].Stack, "TestRunPanicIsAFileFailure")
}

// pathError is how os reports errno while writing path's temporary file, wrapped as npyfile does.
func pathError(path string, errno syscall.Errno) error {
	return fmt.Errorf("npy %s: %w", path, &fs.PathError{Op: "write", Path: filepath.Join(filepath.Dir(path), ".x.tmp"), Err: errno})
}

// A write failing for a reason that would fail every other file too (a full disk, a read-only folder,
// ...) stops the run with that reason instead of failing the remaining files one by one; the outputs
// written so far are complete, and a rerun once the fault is fixed finishes the run. Any other write
// error is the file's failure.
func TestRunStopsOnOutputFault(t *testing.T) {
	_, inputs := corpus(t, names...)
	tests := []struct {
		err  error
		want string // "" when the run goes on
	}{
		{syscall.ENOSPC, "no space left on device"},
		{syscall.EDQUOT, "disk quota exceeded"},
		{syscall.EROFS, "read-only file system"},
		{syscall.EACCES, "permission denied"},
		{syscall.EPERM, "operation not permitted"},
		{syscall.EIO, "input/output error"},
		{syscall.EFBIG, "file too large"},
		{errors.New("an encoder bug"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			out := t.TempDir()
			r, err := newRun(inputs, Options{OutDir: out, Workers: 1, Record: testRecord()})
			require.NoError(t, err)
			sink := r.sink.(*files)
			writes := 0
			sink.write = func(main, pool string, format Format, p Pool, asUint8 bool, in Input, e *vggish.Embeddings) error {
				if writes++; writes > 3 { // a, bb and ccc are written; bad fails before
					if errno, ok := tt.err.(syscall.Errno); ok {
						return pathError(main, errno)
					}
					return tt.err
				}
				return writeFiles(main, pool, format, p, asUint8, in, e)
			}
			sum, err := r.run(context.Background(), &fake{})
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, 3, sum.Embedded)
				assert.Len(t, sum.Failures, 5, "bad.wav and every file after the third write")
				return
			}
			require.Error(t, err)
			var fault *Fault
			require.ErrorAs(t, err, &fault)
			assert.Equal(t, []int{3, 8}, []int{fault.Done, fault.Inputs})
			assert.Contains(t, err.Error(), "output folder "+out+": npy "+filepath.Join(out, "sub", "d.npy")+": write ")
			assert.Contains(t, err.Error(), tt.want+": the run stopped after writing the outputs of 3 of 8 files (those are complete): fix this and run again to finish the rest")
			assert.Equal(t, []int{3, 1 + 2 + 3}, []int{sum.Embedded, sum.Clips}, "a, bb and ccc")
			require.Len(t, sum.Failures, 1, "only bad.wav failed; the others were not done")
			assert.Equal(t, 4, writes, "no write after the fault")
			assert.Empty(t, tempFiles(t, out))
			for _, in := range inputs[:4] {
				if in.Rel != "bad.wav" {
					data, _ := readNPY(t, filepath.Join(out, strings.TrimSuffix(in.Rel, filepath.Ext(in.Rel))+".npy"))
					assert.Equal(t, fakeEmbeddings(in.Path).Data, data, in.Rel)
				}
			}

			sum, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
			require.NoError(t, err)
			assert.Equal(t, []int{3, 4, 1}, []int{sum.Skipped, sum.Embedded, len(sum.Failures)})
		})
	}
}

// The output folder vanishing mid-run stops it; the folder is not made again behind the user's back.
func TestRunStopsWhenOutputFolderVanishes(t *testing.T) {
	_, inputs := corpus(t, names...)
	out := filepath.Join(t.TempDir(), "out")
	f := &fake{onCall: func(n int32) {
		if n == 3 {
			require.NoError(t, os.RemoveAll(out))
		}
	}}
	sum, err := Run(context.Background(), f, inputs, Options{OutDir: out, Workers: 1, Record: testRecord()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "output folder "+out+" is gone (stat "+out+": no such file or directory): the run stopped after writing the outputs of 1 of 8 files")
	assert.Equal(t, 1, sum.Embedded)
	assert.NoDirExists(t, out)

	sum, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, 7, sum.Embedded)
}

// mountTmpfs mounts a tmpfs of the given size on a new folder, or skips the test where that is not
// allowed (it needs root, or CAP_SYS_ADMIN in a container).
func mountTmpfs(t *testing.T, size string) string {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mounting a tmpfs: %v (needs root or CAP_SYS_ADMIN; the fault classes are tested above with injected errors)", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	return dir
}

// On a real filesystem: a full disk, then one made read-only mid-run.
func TestRunOnFullAndReadOnlyTmpfs(t *testing.T) {
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("f%02d.wav", i))
	}
	_, inputs := corpus(t, many...)
	mnt := mountTmpfs(t, "64k")
	out := filepath.Join(mnt, "out")
	sum, err := Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Workers: 2, Record: testRecord()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left on device: the run stopped after writing the outputs of ")
	t.Log(err)
	assert.Positive(t, sum.Embedded)
	assert.Less(t, sum.Embedded, 60)
	assert.Empty(t, sum.Failures)
	assert.Empty(t, tempFiles(t, out))

	require.NoError(t, unix.Mount("", mnt, "", unix.MS_REMOUNT, "size=1m"))
	written := sum.Embedded
	sum, err = Run(context.Background(), &fake{}, inputs, Options{OutDir: out, Workers: 2, Record: testRecord()})
	require.NoError(t, err)
	assert.Equal(t, []int{written, 60 - written}, []int{sum.Skipped, sum.Embedded})

	f := &fake{onCall: func(n int32) {
		if n == 5 {
			require.NoError(t, unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
		}
	}}
	_, err = Run(context.Background(), f, inputs, Options{OutDir: out, Workers: 1, Overwrite: true, Record: testRecord()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read-only file system: the run stopped after writing the outputs of 4 of 60 files")
	t.Log(err)
}
