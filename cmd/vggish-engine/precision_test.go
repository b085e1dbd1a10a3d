package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// --precision reaches the model and the run record; a rerun at another precision is refused; the
// model's warnings are printed; fp16 is refused on the CPU, and bf16 runs as fp32 on one without
// AVX-512.
func TestEmbedPrecision(t *testing.T) {
	w := golden.Weights(t)
	wav := reftest.Corpus(t, 1, 16000, 1, 2.0)[0]
	out := filepath.Join(t.TempDir(), "out")
	npy := filepath.Join(out, strings.TrimSuffix(wav, ".wav")+".npy") // a file named directly is keyed by its path
	embed := func(precision string, extra ...string) (int, string) {
		code, _, stderr := runArgs(append([]string{"embed", "--weights", w, "--device", "cpu", "--precision", precision, "--out-dir", out, wav}, extra...)...)
		return code, stderr
	}
	recorded := func() string {
		b, err := os.ReadFile(filepath.Join(out, "vggish-run.json"))
		require.NoError(t, err)
		var rec batch.Record
		require.NoError(t, json.Unmarshal(b, &rec))
		return rec.Settings.Precision
	}

	code, stderr := embed("tf32")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "warning: precision tf32 applies to CUDA only: on the CPU the network runs in fp32")
	assert.Equal(t, "fp32", recorded(), "what ran")
	fp32, _, err := npyfile.Read(npy)
	require.NoError(t, err)

	if runs, _, _ := vggish.BF16.Resolve(torch.CPU); runs == vggish.BF16 {
		code, stderr = embed("bf16")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "other settings (vggish-run.json, format npy: precision fp32, now bf16)")

		code, stderr = embed("bf16", "--overwrite")
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "bf16", recorded())
		bf16, _, err := npyfile.Read(npy)
		require.NoError(t, err)
		assert.Len(t, bf16, len(fp32))
		assert.NotEqual(t, fp32, bf16, "bf16 ran (its drift is measured in package vggish)")
	} else {
		code, stderr = embed("bf16", "--overwrite")
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stderr, "warning: precision bf16 needs AVX-512")
		assert.Equal(t, "fp32", recorded(), "what ran")
		bf16, _, err := npyfile.Read(npy)
		require.NoError(t, err)
		assert.Equal(t, fp32, bf16)
	}

	code, stderr = embed("fp16")
	assert.Equal(t, 2, code, "a wrong command line")
	assert.Contains(t, stderr, "fp16 runs on CUDA only")
	code, stderr = embed("fp8")
	assert.Equal(t, 2, code, "refused before any work")
	assert.Contains(t, stderr, `precision "fp8": want fp32, bf16, fp16, tf32`)
}

func TestInfoPrecisions(t *testing.T) {
	code, stdout, stderr := runArgs("info")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `(?m)^precision cpu: fp32(, bf16)? native \(.+\); .*fp16 is CUDA only$`, stdout)
	blas, _ := torch.BLAS()
	assert.Contains(t, stdout, "\nblas      "+blas+"\n", "the BLAS libtorch's products run on")
}
