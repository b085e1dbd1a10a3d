package cli

import (
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		out  string
	}{
		{[]string{"a", "--out", "x", "b"}, []string{"a", "b"}, "x"},
		{[]string{"--out=x", "a"}, []string{"a"}, "x"},
		{[]string{"a", "--", "--out", "b"}, []string{"a", "--out", "b"}, ""},
		{[]string{"-", "--out", "x"}, []string{"-"}, "x"},
	}
	for _, tt := range tests {
		fs := NewFlags("t", "")
		out := fs.String("out", "", "")
		pos, err := fs.ParseArgs(tt.args, io.Discard)
		require.NoError(t, err, tt.args)
		assert.Equal(t, tt.pos, pos, tt.args)
		assert.Equal(t, tt.out, *out, tt.args)
	}
}

func TestVersionOf(t *testing.T) {
	tests := []struct {
		version  string
		settings map[string]string
		module   string
		commit   string
	}{
		{"v1.2.3", nil, "v1.2.3", "unknown"},
		{"v0.0.0-20250101120000-abcdef123456", nil, "v0.0.0-20250101120000-abcdef123456", "abcdef123456"},
		{"v1.2.4-0.20250101120000-abcdef123456", nil, "v1.2.4-0.20250101120000-abcdef123456", "abcdef123456"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123456789abcdef01234567", "vcs.modified": "true"},
			"(devel)", "0123456789abcdef0123456789abcdef01234567 +modified"},
		{"", map[string]string{"vcs.revision": "0123", "vcs.modified": "false"}, "(devel)", "0123"},
	}
	for _, tt := range tests {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tt.version}}
		for k, v := range tt.settings {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		module, commit := versionOf(bi)
		assert.Equal(t, []string{tt.module, tt.commit}, []string{module, commit}, tt.version)
	}
}

// A mistake prints the command's synopsis and where its flags are, then the error, last: not the whole
// usage, which for embed is over 100 lines above the error. -h prints the whole usage.
func TestMistakePrintsTheSynopsis(t *testing.T) {
	const usage = "usage: vggish x [--n N] IN\n       vggish x -\n\nDoes x.\n"
	runs := map[string]RunFunc{"x": func(args []string, s Stdio) error {
		fs := NewFlags("x", usage)
		n := fs.Int("n", 1, "how many")
		in, err := fs.ParseArgs(args, s.Out)
		if err != nil {
			return fs.AsMisuse(err)
		}
		if len(in) != 1 || *n < 1 {
			return fs.Misuse("want one IN and --n of at least 1")
		}
		return nil
	}}
	tests := []struct {
		args         []string
		code         int
		stdout, want string
	}{
		{[]string{"x", "a"}, ExitOK, "", ""},
		{[]string{"x", "-h"}, ExitOK, usage + "\nflags:\n  -n int\n    \thow many (default 1)\n", ""},
		{[]string{"x"}, ExitUsage, "", "usage: vggish x [--n N] IN\n       vggish x -\nRun 'vggish help x' for the command's description and flags.\n" +
			"vggish x: want one IN and --n of at least 1\n"},
		{[]string{"x", "--n", "0", "a"}, ExitUsage, "", "usage: vggish x [--n N] IN\n       vggish x -\nRun 'vggish help x' for the command's description and flags.\n" +
			"vggish x: want one IN and --n of at least 1\n"},
		{[]string{"x", "--m", "a"}, ExitUsage, "", "usage: vggish x [--n N] IN\n       vggish x -\nRun 'vggish help x' for the command's description and flags.\n" +
			"vggish x: flag provided but not defined: -m\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			assert.Equal(t, tt.code, Run(tt.args, Stdio{Out: &stdout, Err: &stderr}, runs))
			assert.Equal(t, tt.stdout, stdout.String())
			assert.Equal(t, tt.want, stderr.String())
		})
	}
}

// An empty path given to a flag is a usage error naming the flag, not the flag left out: an empty
// --output would print the result on standard output, an empty --out-dir too.
func TestParseEmbedEmptyPaths(t *testing.T) {
	const (
		output    = "--output is empty: name a file, or - for standard output"
		outDir    = "--out-dir is empty: name a folder"
		filesFrom = "--files-from is empty: name a list, or - for standard input"
	)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--output", "", "a.wav"}, output},
		{[]string{"--output=", "a.wav"}, output},
		{[]string{"--out-dir", "", "a.wav"}, outDir},
		{[]string{"--files-from", ""}, filesFrom},
		{[]string{"--files-from", "", "a.wav"}, filesFrom},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := ParseEmbed(tt.args, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
			var usage *UsageError
			require.ErrorAs(t, err, &usage)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// help answers its own usage too, as every command answers -h: on standard output, exit status 0.
func TestHelpOfHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "help"}, {"help", "-h"}, {"help", "-help"}, {"help", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			assert.Equal(t, ExitOK, Run(args, Stdio{Out: &stdout, Err: &stderr}, nil))
			assert.Equal(t, helpUsage, stdout.String())
			assert.Empty(t, stderr.String())
		})
	}
}

// Every path of fad and selftest is checked before any work, each a usage error naming it: a
// statistics file that is missing or is not a regular file (a named pipe would block the run), a set
// read from standard input, which fad does not read, and an output that could not be written at the
// end of the work (a named pipe, a folder, a missing folder).
func TestParsePathsBeforeWork(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "q.npz")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	stats := filepath.Join(dir, "ev.npz")
	require.NoError(t, os.WriteFile(stats, nil, 0o644))
	missing := filepath.Join(dir, "missing.npz")
	noFolder := filepath.Join(dir, "none", "s.npz")
	parseFAD := func(args []string, s Stdio) error { _, err := ParseFAD(args, s); return err }
	parseSelftest := func(args []string, s Stdio) error { _, err := ParseSelftest(args, s); return err }
	tests := []struct {
		name  string
		parse func([]string, Stdio) error
		args  []string
		want  string
	}{
		{"fad statistics: missing", parseFAD, []string{missing, stats}, "statistics " + missing + ": no such file or directory"},
		{"fad statistics: named pipe", parseFAD, []string{fifo, stats}, "statistics " + fifo + ": not a regular file: it is a named pipe"},
		{"fad set -", parseFAD, []string{"-", stats}, "set -: fad reads no standard input: name a folder, a glob, an audio file, a list or a statistics file"},
		{"fad --save-stats: named pipe", parseFAD, []string{"--save-stats", fifo, "audio/"}, "--save-stats " + fifo + ": not a regular file: it is a named pipe"},
		{"fad --save-stats: folder", parseFAD, []string{"--save-stats", dir, "audio/"}, "--save-stats " + dir + ": not a regular file: it is a folder"},
		{"fad --save-stats: no folder", parseFAD, []string{"--save-stats", noFolder, "audio/"}, "--save-stats " + noFolder + ": no folder " + filepath.Dir(noFolder) + " to write it in"},
		{"fad --save-eval-stats: named pipe", parseFAD, []string{"--save-eval-stats", fifo, stats, "audio/"}, "--save-eval-stats " + fifo + ": not a regular file: it is a named pipe"},
		{"selftest --save: named pipe", parseSelftest, []string{"--save", fifo}, "--save " + fifo + ": not a regular file: it is a named pipe"},
		{"selftest --save: no folder", parseSelftest, []string{"--save", noFolder}, "--save " + noFolder + ": no folder " + filepath.Dir(noFolder) + " to write it in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.args, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
			var usage *UsageError
			require.ErrorAs(t, err, &usage)
			assert.EqualError(t, err, tt.want)
		})
	}
}
