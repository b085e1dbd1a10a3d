package vggish_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

// These tests stand without Python: they compare vggish-go with outputs the reference computed once
// (testdata/golden, remade by testdata/make_goldens.py) from weights and inputs that internal/golden
// rebuilds bit for bit, at the tolerances of the live parity tests (TestEmbeddingsMatchReference):
// max |diff| <= 1e-4 × max |golden| (assertClose); quantised values within one level, at most 0.1%
// of them moved.

// goldenExamples are the 64 formula examples the network goldens were computed on.
func goldenExamples() *preprocess.Examples {
	ex := &preprocess.Examples{Data: golden.Examples(), Starts: make([]float64, golden.ExamplesCount)}
	for i := range ex.Starts {
		ex.Starts[i] = 0.96 * float64(i)
	}
	return ex
}

// The network, both variants, the PCA and the quantised PCA on the formula examples.
func TestNetworkMatchesGoldens(t *testing.T) {
	ex := goldenExamples()
	raw, _ := golden.Read(t, "network.embedding.npy")
	relu := make([]float32, len(raw))
	for i, v := range raw {
		relu[i] = max(v, 0) // torchvggish's final ReLU on the same network
	}
	pca, _ := golden.Read(t, "network.pca.npy")
	quantized, _ := golden.Read(t, "network.quantized.npy")
	for _, c := range []struct {
		name    string
		variant vggish.Variant
		post    vggish.Postprocess
		want    []float32
	}{
		{"towhee", vggish.Towhee, vggish.NoPostprocess, raw},
		{"torchvggish", vggish.TorchVGGish, vggish.NoPostprocess, relu},
		{"pca", vggish.Towhee, vggish.PCA, pca},
		{"pca_quantize", vggish.Towhee, vggish.PCAQuantize, quantized},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu",
				Variant: c.variant, Postprocess: c.post, PCAPath: golden.Path("pca.npz")})
			require.NoError(t, err)
			defer m.Close()
			e, err := m.EmbedExamples(context.Background(), ex)
			require.NoError(t, err)
			if c.post != vggish.PCAQuantize {
				assertClose(t, c.want, e.Data, c.name)
				return
			}
			// Quantised values are whole numbers: a float32 rounding difference before round() can move
			// a value by one level, rarely.
			differing, maxDiff := 0, 0.0
			for i, w := range c.want {
				if d := math.Abs(float64(e.Data[i]) - float64(w)); d > 0 {
					differing, maxDiff = differing+1, math.Max(maxDiff, d)
				}
			}
			t.Logf("%d of %d quantised values differ, by at most %g", differing, len(c.want), maxDiff)
			assert.LessOrEqual(t, maxDiff, 1.0)
			assert.LessOrEqual(t, float64(differing), 0.001*float64(len(c.want)))
		})
	}
}

// The committed WAV files end to end: decoding, resampling, log-mel and the network.
func TestFilesMatchGoldens(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	for _, name := range golden.Fixtures {
		t.Run(name, func(t *testing.T) {
			want, shape := golden.Read(t, name+".embedding.npy")
			e, err := m.EmbedFile(context.Background(), golden.Path(name+".wav"))
			require.NoError(t, err)
			require.Equal(t, shape[0], e.Rows())
			assertClose(t, want, e.Data, name)
		})
	}
}
