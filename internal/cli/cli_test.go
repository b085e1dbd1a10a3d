package cli

import (
	"io"
	"runtime/debug"
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
