package main

// Output identity that does not move (issue 25): each input's key depends on how it was named, not on
// the other inputs, so a rerun with more, fewer or reordered inputs skips exactly those done; file
// names that are not UTF-8 are kept apart; links to folders are followed; an Ogg of zero samples is
// an empty output.

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/npyfile"
)

// written lists what a run left in out: for npy the .npy files (relative, slash-separated) with their
// inodes, for Parquet each clip row's path and clip with the part holding it.
func written(t *testing.T, out string, format batch.Format) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	if format == batch.Parquet {
		files, err := filepath.Glob(filepath.Join(out, "clips.*.parquet"))
		require.NoError(t, err)
		for _, f := range batchtest.ReadParquet(t, files...) {
			for _, row := range f.Rows {
				k := row.String(t, "path") + "#" + strconv.Itoa(row.Int(t, "clip"))
				require.NotContains(t, got, k, "clip written twice")
				got[k] = 1
			}
		}
		return got
	}
	require.NoError(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if strings.HasSuffix(p, ".npy") {
			info, err := d.Info()
			require.NoError(t, err)
			rel, _ := filepath.Rel(out, p)
			got[filepath.ToSlash(rel)] = info.Sys().(*syscall.Stat_t).Ino
		}
		return nil
	}))
	return got
}

// A rerun with one input more, one fewer (and one missing), or the same in another order, in npy and
// Parquet, writes exactly the inputs not yet done: nothing twice, nothing missing.
func TestRerunChangedInputs(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	j := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	for _, rel := range []string{"d/a.wav", "d/sub/b.wav", "d/c.wav", "other/e.wav"} {
		copyFile(t, f.wav, j(rel))
	}
	list := func(rels ...string) string {
		var paths []string
		for _, r := range rels {
			paths = append(paths, j(r))
		}
		p := filepath.Join(t.TempDir(), "list.txt")
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(paths, "\n")+"\n"), 0o644))
		return p
	}
	// A named file's key is its path as named, less the leading "/"; a folder's file's, its path
	// under the folder. Each file of 3 s gives 3 clips.
	key := func(rel string) string { return strings.TrimPrefix(j(rel), "/") }
	for _, format := range []batch.Format{batch.NPY, batch.Parquet} {
		t.Run(string(format), func(t *testing.T) {
			runs := []struct {
				name   string
				args   []string
				code   int
				skip   string   // "skipping N of M", or "" for none
				inputs []string // the keys (npy) or paths (Parquet) of everything written so far
			}{
				{"a list of two", []string{"--files-from", list("d/a.wav", "d/sub/b.wav")}, 0, "",
					[]string{key("d/a.wav"), key("d/sub/b.wav")}},
				{"one more, in another folder", []string{"--files-from", list("d/sub/b.wav", "other/e.wav", "d/a.wav")}, 0, "skipping 2 of 3",
					[]string{key("d/a.wav"), key("d/sub/b.wav"), key("other/e.wav")}},
				{"one fewer, and one missing", []string{"--files-from", list("other/e.wav", "missing/x.wav")}, 1, "skipping 1 of 2",
					[]string{key("d/a.wav"), key("d/sub/b.wav"), key("other/e.wav")}},
				{"the same files named directly", []string{j("d/a.wav"), j("other/e.wav")}, 0, "skipping 2 of 2",
					[]string{key("d/a.wav"), key("d/sub/b.wav"), key("other/e.wav")}},
			}
			if format == batch.Parquet { // the path column holds the path as named
				for i := range runs {
					for k, in := range runs[i].inputs {
						runs[i].inputs[k] = "/" + in
					}
				}
			}
			folders := []struct {
				name   string
				args   []string
				skip   string
				inputs []string
			}{
				{"a folder", []string{j("d")}, "", []string{"a", "c", "sub/b"}},
				{"one folder more, first", []string{j("other"), j("d")}, "skipping 3 of 4", []string{"a", "c", "e", "sub/b"}},
				{"one folder fewer", []string{j("other")}, "skipping 1 of 1", []string{"a", "c", "e", "sub/b"}},
			}
			check := func(t *testing.T, out string, args []string, code int, skip string, inputs []string, before map[string]uint64) map[string]uint64 {
				common := []string{"embed", "--weights", f.weights, "--device", "cpu", "--format", string(format), "--out-dir", out}
				r := runVggish(t, nil, nil, append(common, args...)...)
				require.Equal(t, code, r.code, r.stderr)
				if skip != "" {
					assert.Contains(t, r.stderr, skip)
				} else {
					assert.NotContains(t, r.stderr, "skipping")
				}
				got := written(t, out, format)
				var want []string
				for _, in := range inputs {
					if format == batch.Parquet {
						for c := range 3 {
							want = append(want, in+"#"+strconv.Itoa(c))
						}
					} else {
						want = append(want, strings.TrimSuffix(in, ".wav")+".npy")
					}
				}
				assert.ElementsMatch(t, want, slices.Collect(maps.Keys(got)), "nothing missing, nothing else")
				for k, ino := range before {
					assert.Equal(t, ino, got[k], "%s written again", k)
				}
				return got
			}
			t.Run("lists and files", func(t *testing.T) {
				out := t.TempDir()
				var before map[string]uint64
				for _, r := range runs {
					before = check(t, out, r.args, r.code, r.skip, r.inputs, before)
				}
			})
			t.Run("folders", func(t *testing.T) {
				out := t.TempDir()
				var before map[string]uint64
				for _, r := range folders {
					inputs := r.inputs
					if format == batch.Parquet {
						inputs = nil
						for _, in := range r.inputs {
							p := j("d/" + in + ".wav")
							if in == "e" {
								p = j("other/e.wav")
							}
							inputs = append(inputs, p)
						}
					}
					before = check(t, out, r.args, 0, r.skip, inputs, before)
				}
			})
		})
	}
}

// Two files whose names differ only in bytes that are not UTF-8 are both embedded under distinct keys,
// their paths written escaped (batch.EscapePath) so that they read back exactly, and a rerun skips
// both, in every format that writes a folder.
func TestNamesNotUTF8(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "n")
	names := []string{"a\xff.wav", "a\xfe.wav"}
	for _, n := range names {
		copyFile(t, f.wav, filepath.Join(dir, n))
	}
	unescape := func(s string) string {
		b, err := strconv.Unquote(`"` + s + `"`) // the form's two escapes are Go's
		require.NoError(t, err, s)
		return b
	}
	for _, format := range []batch.Format{batch.NPY, batch.JSONL, batch.Parquet} {
		t.Run(string(format), func(t *testing.T) {
			out := t.TempDir()
			args := []string{"embed", "--weights", f.weights, "--device", "cpu", "--format", string(format), "--pool", "mean", "--out-dir", out, dir}
			r := runVggish(t, nil, nil, args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stderr, "2 embedded")

			var paths []string
			switch format {
			case batch.NPY:
				for _, n := range names {
					data, shape, err := npyfile.Read(filepath.Join(out, strings.TrimSuffix(n, ".wav")+".npy"))
					require.NoError(t, err, "%q", n)
					assert.Equal(t, []int{3, 128}, shape)
					assert.Len(t, data, 3*128)
				}
			case batch.JSONL:
				for _, n := range names {
					b, err := os.ReadFile(filepath.Join(out, strings.TrimSuffix(n, ".wav")+".jsonl"))
					require.NoError(t, err, "%q", n)
					var rec struct{ Path string }
					require.NoError(t, json.Unmarshal(b, &rec))
					paths = append(paths, rec.Path)
				}
			case batch.Parquet:
				files, err := filepath.Glob(filepath.Join(out, "*.parquet"))
				require.NoError(t, err)
				seen := map[string]bool{}
				for _, pf := range batchtest.ReadParquet(t, files...) {
					for _, row := range pf.Rows {
						seen[row.String(t, "path")] = true
					}
				}
				for p := range seen {
					paths = append(paths, p)
				}
				b, err := os.ReadFile(filepath.Join(out, batch.RecordName(batch.Shard{})))
				require.NoError(t, err)
				var rec batch.Record
				require.NoError(t, json.Unmarshal(b, &rec))
				require.Len(t, rec.Parts, 1)
				assert.ElementsMatch(t, []string{`a\xff.wav`, `a\xfe.wav`}, rec.Parts[0].Inputs)
			}
			if format != batch.NPY {
				require.Len(t, paths, 2)
				for i := range paths {
					assert.True(t, strings.HasSuffix(paths[i], `/a\xff.wav`) || strings.HasSuffix(paths[i], `/a\xfe.wav`), paths[i])
					paths[i] = unescape(paths[i])
				}
				assert.ElementsMatch(t, []string{filepath.Join(dir, names[0]), filepath.Join(dir, names[1])}, paths, "read back exactly")
			}

			r = runVggish(t, nil, nil, args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stderr, "skipping 2 of 2")
			assert.Contains(t, r.stderr, "0 embedded")
		})
	}
}

// A symbolic link to a folder inside a folder argument is followed; one that loops back is skipped
// with a warning naming it. An Ogg file of zero samples gives a (0, 128) output, as a WAV does.
func TestFolderLinksAndEmptyOgg(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	dir, elsewhere := filepath.Join(root, "corpus"), filepath.Join(root, "elsewhere")
	copyFile(t, f.wav, filepath.Join(dir, "a.wav"))
	copyFile(t, f.wav, filepath.Join(elsewhere, "b.wav"))
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(dir, "linked")))
	require.NoError(t, os.Symlink("..", filepath.Join(elsewhere, "up"))) // back to root: not a loop, but searched
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "loop")))
	ogg := filepath.Join(dir, "empty.ogg")
	cmd := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", "-c:a", "libvorbis", ogg)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)

	out := t.TempDir()
	r := runVggish(t, nil, nil, "embed", "--weights", f.weights, "--device", "cpu", "--out-dir", out, dir)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "warning: "+filepath.Join(dir, "loop")+": not following the link, it leads to "+dir+", searched already")
	for name, rows := range map[string]int{"a.npy": 3, "linked/b.npy": 3, "empty.npy": 0, "linked/up/corpus/a.npy": -1} {
		_, shape, err := npyfile.Read(filepath.Join(out, filepath.FromSlash(name)))
		if rows < 0 {
			assert.ErrorIs(t, err, fs.ErrNotExist, "%s: a folder searched already is not searched again", name)
			continue
		}
		require.NoError(t, err, name)
		assert.Equal(t, []int{rows, 128}, shape, name)
	}
	assert.Contains(t, r.stderr, "3 files: 3 embedded")
}
