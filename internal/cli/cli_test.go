package cli

import (
	"io"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
