package batch

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	k := func(rel string) string { return strings.TrimPrefix(filepath.ToSlash(j(rel)), "/") } // a named file's key
	tests := []struct {
		name  string
		args  []string
		paths []string // Path of each input, in order
		rels  []string
	}{
		{"a folder is its own root; audio extensions only, any case; hidden names skipped",
			[]string{j("a")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac"), j("a/x.wav"), j("a/y.MP3")},
			[]string{"sub/deeper/w.opus", "sub/z.flac", "x.wav", "y.MP3"}},
		{"two folders: each is its files' root",
			[]string{j("b"), j("a/sub")}, []string{j("a/sub/deeper/w.opus"), j("b/x.wav"), j("a/sub/z.flac")},
			[]string{"deeper/w.opus", "x.wav", "z.flac"}},
		{"a file is taken whatever its extension, keyed by its path as named",
			[]string{j("a/notes.txt")}, []string{j("a/notes.txt")}, []string{k("a/notes.txt")}},
		{"files in several folders",
			[]string{j("c.wav"), j("a/x.wav")}, []string{j("a/x.wav"), j("c.wav")}, []string{k("a/x.wav"), k("c.wav")}},
		{"glob", []string{j("*/x.wav")}, []string{j("a/x.wav"), j("b/x.wav")}, []string{k("a/x.wav"), k("b/x.wav")}},
		{"a glob matching a folder walks it",
			[]string{j("a/su?")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac")}, []string{"deeper/w.opus", "z.flac"}},
		{"a name that exists is not a pattern", []string{j("weird[1].wav")}, []string{j("weird[1].wav")}, []string{k("weird[1].wav")}},
		{"duplicates are dropped; a file found in a folder is keyed there",
			[]string{j("a/sub/z.flac"), j("a/sub"), j("a/sub/../sub/z.flac"), j("a/sub/*.flac")},
			[]string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac")}, []string{"deeper/w.opus", "z.flac"}},
		{"nested folders: the outer one keys the files, whatever the order",
			[]string{j("a/sub"), j("a")}, []string{j("a/sub/deeper/w.opus"), j("a/sub/z.flac"), j("a/x.wav"), j("a/y.MP3")},
			[]string{"sub/deeper/w.opus", "sub/z.flac", "x.wav", "y.MP3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(t.Context(), tt.args, nil, nil)
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
		t.Chdir(filepath.Join(root, "a"))
		got, err := Expand(t.Context(), []string{"../b", "./x.wav", "../c.wav", "sub/../sub/z.flac"}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, []Input{{Path: "../c.wav", Rel: "c.wav"}, {Path: "sub/z.flac", Rel: "sub/z.flac"}, {Path: "../b/x.wav", Rel: "x.wav"}, {Path: "x.wav", Rel: "x.wav"}}, got,
			"a folder's files are keyed under it, a named file by its cleaned path less leading ..; equal keys are ordered by path")
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
			_, err := Expand(t.Context(), []string{filepath.Join(root, tt.arg)}, nil, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("folder without audio", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(root, "a/x.wav")))
		_, err := Expand(t.Context(), []string{filepath.Join(root, "a")}, nil, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no audio files in "+filepath.Join(root, "a"))
	})
}

// What a list names and what a walk finds fail alone; what is typed stops the run; "-" is stdin.
func TestExpandFailuresAndStdin(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "d/a.wav", "d/sub/b.wav", "c.wav")
	j := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	require.NoError(t, syscall.Mkfifo(j("d/fifo.wav"), 0o644))
	require.NoError(t, syscall.Mkfifo(j("fifo.wav"), 0o644))
	require.NoError(t, os.Symlink(j("gone.wav"), j("d/broken.wav")))
	l, err := net.Listen("unix", j("d/sock.wav"))
	require.NoError(t, err)
	defer l.Close()

	type result struct{ path, err string }
	results := func(inputs []Input) []result {
		var out []result
		for _, in := range inputs {
			r := result{path: in.Path}
			if in.Err != nil {
				r.err = in.Err.Error()
			}
			if in.Stdin {
				r.err = "stdin"
			}
			out = append(out, r)
		}
		return out
	}
	tests := []struct {
		name         string
		args, listed []string
		want         []result
	}{
		{"a walk: a named pipe, a socket and a broken link fail alone", []string{j("d")}, nil, []result{
			{j("d/a.wav"), ""},
			{j("d/broken.wav"), "input " + j("d/broken.wav") + ": no such file or directory"},
			{j("d/fifo.wav"), "input " + j("d/fifo.wav") + ": not a regular file: it is a named pipe"},
			{j("d/sock.wav"), "input " + j("d/sock.wav") + ": not a regular file: it is a socket"},
			{j("d/sub/b.wav"), ""},
		}},
		{"a list: missing, unmatched, irregular entries fail alone", nil,
			[]string{j("c.wav"), j("missing.wav"), j("*.ogg"), j("fifo.wav"), "/dev/zero", j("d/sub")}, []result{
				{j("d/sub/b.wav"), ""}, // keyed b.wav, under the folder listed
				{"/dev/zero", "input /dev/zero: not a regular file: it is a character device"},
				{j("*.ogg"), "input \"" + j("*.ogg") + "\": no such file, and no file matches it as a pattern"},
				{j("c.wav"), ""},
				{j("fifo.wav"), "input " + j("fifo.wav") + ": not a regular file: it is a named pipe"},
				{j("missing.wav"), "input " + j("missing.wav") + ": no such file or directory"},
			}},
		{"standard input beside files", []string{j("c.wav"), "-"}, nil, []result{{"-", "stdin"}, {j("c.wav"), ""}}},
		{"standard input alone", []string{"-"}, nil, []result{{"-", "stdin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(t.Context(), tt.args, tt.listed, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, results(got))
		})
	}

	// A missing listed file is keyed as named, like the others: their keys do not depend on it.
	got, err := Expand(t.Context(), nil, []string{j("d/a.wav"), j("elsewhere/missing.wav")}, nil)
	require.NoError(t, err)
	k := func(p string) string { return strings.TrimPrefix(p, "/") }
	assert.Equal(t, []string{k(j("d/a.wav")), k(j("elsewhere/missing.wav"))}, []string{got[0].Rel, got[1].Rel})

	for _, tt := range []struct{ name, arg, want string }{
		{"a typed named pipe", j("fifo.wav"), "input " + j("fifo.wav") + ": not a regular file: it is a named pipe"},
		{"a typed device", "/dev/null", "input /dev/null: not a regular file: it is a character device"},
		{"a typed broken link", j("d/broken.wav"), "input " + j("d/broken.wav") + ": no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Expand(t.Context(), []string{tt.arg}, nil, nil)
			assert.EqualError(t, err, tt.want)
		})
	}
	_, err = Expand(t.Context(), []string{"-", j("c.wav"), "-"}, nil, nil)
	assert.EqualError(t, err, "input - (standard input) given twice")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Expand(ctx, []string{root}, nil, nil)
	assert.ErrorIs(t, err, context.Canceled, "a walk stops when cancelled")
}

// Links to folders are followed, each folder searched once: a loop, or a second name for a folder,
// is skipped with a warning naming it.
func TestExpandLinks(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "d/a.wav", "d/v3/b.wav", "ext/e.wav")
	j := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	require.NoError(t, os.Symlink("../ext", j("d/extlink")))
	require.NoError(t, os.Symlink("v3", j("d/current")))
	require.NoError(t, os.Symlink("..", j("d/v3/loop")))
	require.NoError(t, os.Symlink("d", j("dlink")))

	for _, arg := range []string{"d", "dlink"} {
		t.Run(arg, func(t *testing.T) {
			var warnings []string
			got, err := Expand(t.Context(), []string{j(arg)}, nil, func(w string) { warnings = append(warnings, w) })
			require.NoError(t, err)
			var paths, rels []string
			for _, in := range got {
				require.NoError(t, in.Err)
				paths, rels = append(paths, in.Path), append(rels, in.Rel)
			}
			assert.Equal(t, []string{j(arg + "/a.wav"), j(arg + "/extlink/e.wav"), j(arg + "/v3/b.wav")}, paths)
			assert.Equal(t, []string{"a.wav", "extlink/e.wav", "v3/b.wav"}, rels)
			assert.Equal(t, []string{
				j(arg+"/current") + ": not following the link, it leads to " + j(arg+"/v3") + ", searched already",
				j(arg+"/v3/loop") + ": not following the link, it leads to " + j(arg) + ", searched already",
			}, warnings)
		})
	}
	t.Run("a link to a folder named as an argument", func(t *testing.T) {
		var warnings []string
		got, err := Expand(t.Context(), []string{j("d"), j("ext")}, nil, func(w string) { warnings = append(warnings, w) })
		require.NoError(t, err)
		require.Len(t, got, 3)
		assert.Equal(t, Input{Path: j("ext/e.wav"), Rel: "e.wav"}, got[1], "keyed under the folder named")
		assert.Contains(t, warnings, j("d/extlink")+": not following the link, it leads to "+j("ext")+", searched already")
	})
}

// Paths are written as text one-to-one, and read back exactly.
func TestEscapePath(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"plain/é ü.wav", "plain/é ü.wav"},
		{"a\xff.wav", `a\xff.wav`},
		{"a\xfe.wav", `a\xfe.wav`},
		{`a\xff.wav`, `a\\xff.wav`},
		{"back\\slash\xc3.wav", `back\\slash\xc3.wav`},
		{"\uFFFD.wav", "\uFFFD.wav"},
	} {
		got := EscapePath(tt.name)
		assert.Equal(t, tt.want, got, "%q", tt.name)
		back, err := strconv.Unquote(`"` + got + `"`) // Go's escapes read the form as written
		require.NoError(t, err)
		assert.Equal(t, tt.name, back)
	}
}
