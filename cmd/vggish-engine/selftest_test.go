package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
)

// selftest with the seeded weights reports its four figures beside the published ones and exits 1
// (they are not the published weights); its input is numpy's, its embeddings the reference's on that
// input, its PCA numpy's, its quantisation TensorFlow's, and its figures numpy's mean and std of them.
func TestSelftest(t *testing.T) {
	w := reftest.Weights(t, "zip")
	pca := reftest.PCAParams(t, "pth")
	dir := t.TempDir()
	saved := filepath.Join(dir, "smoke.npz")
	code, stdout, stderr := runArgs("selftest", "--weights", w, "--pca", pca, "--json", "--save", saved)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "the figures are not TensorFlow's")
	var r selftestReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &r))
	assert.False(t, r.Pass)
	require.Len(t, r.Figures, 4)
	for i, f := range r.Figures {
		assert.Equal(t, smokeFigures[i].name, f.Name)
		assert.Equal(t, smokeFigures[i].published, f.Published)
		assert.Equal(t, math.Abs(f.Value-f.Published)/f.Published <= 0.1, f.Pass, f.Name)
	}
	t.Logf("seeded weights: %+v", r.Figures)

	wav := filepath.Join(dir, "smoke.wav")
	out, err := exec.Command(reftest.Interpreter(), "-c", `import sys, json, numpy as np, soundfile as sf
sys.path.insert(0, sys.argv[4])
from torchload import load
z = np.load(sys.argv[1])
t = np.arange(0, 3, 1 / 16000)
x = np.sin(2 * np.pi * 1000 * t)  # vggish_smoke_test.py's input
sf.write(sys.argv[3], z["input"], 16000, subtype="DOUBLE")
emb, pca, post = z["embedding"], z["pca"], z["postprocessed"]
params = load(sys.argv[2])
mine = np.dot(np.asarray(params["pca_eigen_vectors"], np.float64), emb.T.astype(np.float64) - np.asarray(params["pca_means"], np.float64).reshape(-1, 1)).T
# TensorFlow's Postprocessor after the PCA: clip, scale, cast to uint8.
quant = ((np.clip(pca, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.uint8)
print(json.dumps({
  "input": float(np.abs(z["input"] - x).max()), "samples": len(x),
  "pca": float(np.abs(pca - mine).max() / np.abs(mine).max()),
  "quantized_equal": bool((quant == post).all()), "post_dtype": str(post.dtype),
  "figures": [float(np.mean(emb, dtype=np.float64)), float(np.std(emb, dtype=np.float64)), float(np.mean(post)), float(np.std(post))],
  "figures_float32": [float(np.mean(emb)), float(np.std(emb))]}))`, saved, pca, wav, filepath.Dir(reftest.Script("torchload.py"))).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var np struct {
		Input          float64
		Samples        int
		PCA            float64
		QuantizedEqual bool   `json:"quantized_equal"`
		PostDtype      string `json:"post_dtype"`
		Figures        []float64
		Figures32      []float64 `json:"figures_float32"`
	}
	require.NoError(t, json.Unmarshal(out, &np))
	assert.Equal(t, 48000, np.Samples)
	assert.LessOrEqual(t, np.Input, 1e-15, "the input is numpy's (sin may differ in its last bit)")
	assert.Less(t, np.PCA, 1e-5, "the PCA is numpy's in float64, to float32 rounding")
	assert.True(t, np.QuantizedEqual)
	assert.Equal(t, "uint8", np.PostDtype)
	for i, f := range r.Figures {
		assert.InDelta(t, np.Figures[i], f.Value, 1e-12*math.Abs(np.Figures[i]), f.Name)
	}
	t.Logf("numpy in float32, as the smoke test computes them: embedding mean %.9g, std %.9g (vggish-go in float64: %.9g, %.9g)",
		np.Figures32[0], np.Figures32[1], r.Figures[0].Value, r.Figures[1].Value)

	// The reference's embeddings of the same samples.
	ref := filepath.Join(dir, "ref")
	reftest.Run(t, "reference.py", "embed", "--weights", w, "--out", ref, wav)
	want, shape, err := npyfile.Read(filepath.Join(ref, "smoke.npy"))
	require.NoError(t, err)
	got, gotShape, err := readNPZArray(saved, "embedding")
	require.NoError(t, err)
	assert.Equal(t, []int{3, 128}, shape)
	assert.Equal(t, shape, gotShape)
	var maxDiff, maxRef float64
	for i := range want {
		maxDiff, maxRef = math.Max(maxDiff, math.Abs(float64(got[i]-want[i]))), math.Max(maxRef, math.Abs(float64(want[i])))
	}
	assert.LessOrEqual(t, maxDiff, 1e-4*maxRef)

	// The table a user reads.
	code, stdout, _ = runArgs("selftest", "--weights", w, "--pca", pca)
	assert.Equal(t, 1, code)
	for _, s := range []string{"embedding mean", "0.000657", "0.343", "126", "89.3", "OFF", "FAIL"} {
		assert.Contains(t, stdout, s)
	}
}

// readNPZArray reads a float32 array from an .npz archive.
func readNPZArray(path, name string) ([]float32, []int, error) {
	r, err := npz.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []float32
	if err := r.Read(name+".npy", &out); err != nil {
		return nil, nil, err
	}
	return out, r.Header(name + ".npy").Descr.Shape, nil
}
