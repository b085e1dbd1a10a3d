package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/reftest"
)

// The same audio gives the same bytes whatever the run: runs over files of mixed lengths (clips of
// many files share batches, in an order that depends on timing) with other --workers, --batch and
// --threads write identical .npy files.
func TestSameBytesWhateverTheRun(t *testing.T) {
	bin := buildBinary(t)
	c := batchtest.Make(t, filepath.Join(t.TempDir(), "corpus"), 40)
	w := reftest.Weights(t, "zip")
	runs := [][]string{
		{"--workers", "1", "--batch", "1", "--threads", "1"},
		{"--workers", "5", "--batch", "7", "--threads", "2"},
		{}, // the defaults
	}
	var first string
	for i, flags := range runs {
		out := filepath.Join(t.TempDir(), "out")
		code, stderr := runBin(t, bin, append(append([]string{"embed", "--weights", w, "--device", "cpu", "--out-dir", out}, flags...), c.Root)...)
		require.Equal(t, 1, code, "the corrupt files fail: %s", stderr)
		got := outputs(t, out)
		require.Len(t, got, len(c.Good))
		if i == 0 {
			first = out
			continue
		}
		for _, rel := range got {
			a, err := os.ReadFile(filepath.Join(first, rel))
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(out, rel))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(a, b), "%s: %v gives other bytes than %v", rel, flags, runs[0])
		}
	}
}
