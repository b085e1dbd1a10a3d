package vggish_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// TestPrecisionDrift embeds the fixtures at each precision this machine runs (on the CPU fp32 and
// bf16, on CUDA also tf32 and fp16) and compares them with the reference's float32 embeddings: every
// clip keeps a cosine of at least 0.9999 to the reference's. It logs the figures of the README's
// precision table (`make test` runs it verbosely).
func TestPrecisionDrift(t *testing.T) {
	type run struct {
		device    string
		precision vggish.Precision
	}
	runs := []run{{"cpu", vggish.FP32}, {"cpu", vggish.BF16}}
	if torch.CUDAAvailable() {
		for _, p := range []vggish.Precision{vggish.FP32, vggish.TF32, vggish.BF16, vggish.FP16} {
			runs = append(runs, run{"cuda", p})
		}
	}
	for _, r := range runs {
		for _, c := range []refCase{
			{format: "zip", variant: vggish.Towhee},
			{format: "legacy", variant: vggish.Towhee, post: vggish.PCA, pca: "pth", refArgs: []string{"--no-quantize"}},
			{format: "zip", variant: vggish.Towhee, post: vggish.PCAQuantize, pca: "npz"},
		} {
			t.Run(fmt.Sprintf("%s_%s_%s", r.device, r.precision, c.name()), func(t *testing.T) {
				device, err := torch.ParseDevice(r.device)
				require.NoError(t, err)
				if runs, _, _ := r.precision.Resolve(device); runs != r.precision {
					t.Skipf("%s runs %s as %s (TestPrecisionOnCPU)", r.device, r.precision, runs)
				}
				got, want := c.embedFixtures(t, c.options(t, r.device, r.precision))
				d := measureDrift(got, want)
				if c.post == vggish.PCAQuantize {
					t.Logf("%s %s, PCA + quantise: %d of %d quantised values (%.2f%%) moved, by at most %g", r.device, r.precision,
						d.differing, len(want), 100*float64(d.differing)/float64(len(want)), d.maxDiff)
					return
				}
				t.Logf("%s %s, %s: %d clips: min cosine %.7f, max |diff| %.3g (max |reference| %.3g)", r.device, r.precision,
					map[vggish.Postprocess]string{vggish.NoPostprocess: "embeddings", vggish.PCA: "PCA"}[c.post], len(want)/vggish.EmbeddingSize, d.minCosine, d.maxDiff, d.maxRef)
				assert.GreaterOrEqual(t, d.minCosine, 0.9999, "the least per-clip cosine to the float32 reference")
			})
		}
	}
}

type drift struct {
	minCosine       float64 // the least per-clip cosine
	maxDiff, maxRef float64 // max |got - want|, max |want|
	differing       int     // values that differ at all
}

// measureDrift compares embeddings got with want, clip by clip.
func measureDrift(got, want []float32) drift {
	d := drift{minCosine: 1}
	for r := 0; r < len(want); r += vggish.EmbeddingSize {
		var dot, gg, ww float64
		for i := r; i < r+vggish.EmbeddingSize; i++ {
			g, w := float64(got[i]), float64(want[i])
			dot, gg, ww = dot+g*w, gg+g*g, ww+w*w
			d.maxDiff, d.maxRef = math.Max(d.maxDiff, math.Abs(g-w)), math.Max(d.maxRef, math.Abs(w))
			if g != w {
				d.differing++
			}
		}
		cos := 1.0 // two zero vectors agree
		if gg > 0 || ww > 0 {
			cos = dot / math.Sqrt(gg*ww) // NaN for one zero vector: fails the test
		}
		if !(cos >= d.minCosine) {
			d.minCosine = cos
		}
	}
	return d
}

// On the CPU tf32 is fp32, with a warning saying so, and fp16 is refused.
func TestPrecisionOnCPU(t *testing.T) {
	weights := golden.Weights(t)
	fp32, err := vggish.New(context.Background(), vggish.Options{WeightsPath: weights, Device: "cpu"})
	require.NoError(t, err)
	defer fp32.Close()
	assert.Equal(t, vggish.FP32, fp32.Options().Precision, "the default")
	assert.Empty(t, fp32.Warnings())

	tf32, err := vggish.New(context.Background(), vggish.Options{WeightsPath: weights, Device: "cpu", Precision: vggish.TF32})
	require.NoError(t, err)
	defer tf32.Close()
	assert.Equal(t, vggish.FP32, tf32.Options().Precision)
	require.Len(t, tf32.Warnings(), 1)
	assert.Contains(t, tf32.Warnings()[0], "tf32 applies to CUDA only")
	ex := testExamples(8)
	want, err := fp32.EmbedExamples(context.Background(), ex)
	require.NoError(t, err)
	got, err := tf32.EmbedExamples(context.Background(), ex)
	require.NoError(t, err)
	assert.Equal(t, want.Data, got.Data, "tf32 on the CPU is fp32, to the bit")

	native, _, err := vggish.NativePrecisions(torch.CPU)
	require.NoError(t, err)
	bf16, err := vggish.New(context.Background(), vggish.Options{WeightsPath: weights, Device: "cpu", Precision: vggish.BF16})
	require.NoError(t, err)
	defer bf16.Close()
	switch {
	case !tensor.MKLDNNRuns(gotch.BFloat16): // the rule Resolve applies, asked of its source
		assert.Equal(t, vggish.FP32, bf16.Options().Precision)
		require.Len(t, bf16.Warnings(), 1)
		assert.Contains(t, bf16.Warnings()[0], "needs AVX-512 (BW, VL and DQ) for libtorch's bfloat16 kernels: on this CPU the network runs in fp32")
		got, err := bf16.EmbedExamples(context.Background(), ex)
		require.NoError(t, err)
		assert.Equal(t, want.Data, got.Data, "bf16 on this CPU is fp32, to the bit")
	case len(native) == 1:
		assert.Len(t, bf16.Warnings(), 1, "a CPU without bfloat16 units warns")
	default:
		assert.Empty(t, bf16.Warnings())
	}
}
