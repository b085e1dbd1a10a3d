package batch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// touch creates empty files under root.
func touch(t *testing.T, root string, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, nil, 0o644))
	}
}

func TestExpand(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "a/x.wav", "a/y.MP3", "a/notes.txt", "a/.hidden.wav", "a/.cache/z.wav", "a/sub/z.flac",
		"a/sub/deeper/w.opus", "b/x.wav", "c.wav", "weird[1].wav")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "empty"), 0o755))
	j := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	tests := []struct {
		name  string
		args  []string
		paths []string // Path of each input, in order
		rels  []string
	}{
		{"a folder is its own root; audio extensions only, any case; hidden names skipped",
			[]string{j("a")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac"), j("a/x.wav"), j("a/y.MP3")},
			[]string{"sub/deeper/w.opus", "sub/z.flac", "x.wav", "y.MP3"}},
		{"two folders: their common parent is the root",
			[]string{j("b"), j("a/sub")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac"), j("b/x.wav")},
			[]string{"a/sub/deeper/w.opus", "a/sub/z.flac", "b/x.wav"}},
		{"a file is taken whatever its extension; its folder is the root",
			[]string{j("a/notes.txt")}, []string{j("a/notes.txt")}, []string{"notes.txt"}},
		{"files in several folders",
			[]string{j("c.wav"), j("a/x.wav")}, []string{j("a/x.wav"), j("c.wav")}, []string{"a/x.wav", "c.wav"}},
		{"glob", []string{j("*/x.wav")}, []string{j("a/x.wav"), j("b/x.wav")}, []string{"a/x.wav", "b/x.wav"}},
		{"a glob matching a folder walks it",
			[]string{j("a/su?")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac")}, []string{"deeper/w.opus", "z.flac"}},
		{"a name that exists is not a pattern", []string{j("weird[1].wav")}, []string{j("weird[1].wav")}, []string{"weird[1].wav"}},
		{"duplicates are dropped; the first name is kept",
			[]string{j("a/sub"), j("a/sub/z.flac"), j("a/sub/../sub/z.flac"), j("a/sub/*.flac")},
			[]string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac")}, []string{"deeper/w.opus", "z.flac"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.args)
			require.NoError(t, err)
			var paths, rels []string
			for _, in := range got {
				paths, rels = append(paths, in.Path), append(rels, in.Rel)
			}
			assert.Equal(t, tt.paths, paths)
			assert.Equal(t, tt.rels, rels)
		})
	}

	t.Run("relative arguments keep their form", func(t *testing.T) {
		t.Chdir(root)
		got, err := Expand([]string{"b", "./c.wav"})
		require.NoError(t, err)
		assert.Equal(t, []Input{{Path: "b/x.wav", Rel: "b/x.wav"}, {Path: "c.wav", Rel: "c.wav"}}, got)
	})
}

func TestExpandErrors(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "a/x.wav", "a/notes.txt")
	tests := []struct {
		name, arg, want string
	}{
		{"missing file", "nope.wav", "input " + filepath.Join(root, "nope.wav") + ": no such file or directory"},
		{"pattern without match", "*.ogg", "no file matches it as a pattern"},
		{"recursive pattern", "**/x.wav", "** is not supported"},
		{"bad pattern", "a/[x.wav", "syntax error in pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Expand([]string{filepath.Join(root, tt.arg)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("folder without audio", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(root, "a/x.wav")))
		_, err := Expand([]string{filepath.Join(root, "a")})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no audio files in "+filepath.Join(root, "a"))
	})
}
