package tensor_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/tensor"
)

// smallNet is a VGG-style stack with VGGish's structure at a small size: two 3×3 convolutions with
// ReLU and max-pool, then two linear layers. The convolutions have 16 and 32 channels, multiples of
// 16 as VGGish's are: Debian 13's libtorch 2.6 computes bfloat16 convolutions of 4 or 8 output
// channels wrongly on a Zen 4 CPU (0.4 to 0.99 of max |x| off float32, from Python too), which VGGish
// never runs.
func smallNet(t *testing.T, s *tensor.Scope) []tensor.Layer {
	rng := rand.New(rand.NewPCG(1, 2))
	param := func(shape ...int64) *ts.Tensor {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.3)
		}
		x, err := s.Own(tensor.FromSlice(v, shape...))
		require.NoError(t, err)
		return x
	}
	return []tensor.Layer{
		{Conv: true, ReLU: true, Pool: true, Weight: param(16, 1, 3, 3), Bias: param(16)},
		{Conv: true, ReLU: true, Pool: true, Weight: param(32, 16, 3, 3), Bias: param(32)},
		{ReLU: true, Weight: param(16, 32*4*2), Bias: param(16)},
		{Weight: param(5, 16), Bias: param(5)},
	}
}

// Every layout computes the same network; Plain, the CUDA path, runs here on the CPU too. In bfloat16,
// oneDNN's layout needs AVX-512: elsewhere NewNet fails, saying so.
func TestNetLayouts(t *testing.T) {
	var s tensor.Scope
	defer s.Close()
	in := make([]float32, 3*16*8)
	for i := range in {
		in[i] = float32(math.Sin(float64(i) * 0.7))
	}
	x, err := s.Own(tensor.FromSlice(in, 3, 1, 16, 8))
	require.NoError(t, err)
	forward := func(layout tensor.Layout, dtype gotch.DType) []float32 {
		net, err := tensor.NewNet(smallNet(t, &s), layout, dtype) // NewNet takes the layers over
		if err != nil && layout == tensor.MKLDNN && !tensor.MKLDNNRuns(dtype) {
			return nil // libtorch refuses it, and says why
		}
		require.NoError(t, err)
		defer net.Close()
		y, err := s.Own(net.Forward(context.Background(), x))
		require.NoError(t, err)
		shape, err := y.Size()
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 5}, shape)
		out, err := tensor.ToSlice[float32](y)
		require.NoError(t, err)
		return out
	}
	plain := forward(tensor.Plain, gotch.Float)
	for _, c := range []struct {
		name   string
		layout tensor.Layout
		dtype  gotch.DType
		tol    float64 // relative to max |plain|
	}{
		{"mkldnn", tensor.MKLDNN, gotch.Float, 1e-6},
		{"channels last", tensor.ChannelsLast, gotch.Float, 1e-6},
		{"mkldnn bf16", tensor.MKLDNN, gotch.BFloat16, 2e-2},
	} {
		got := forward(c.layout, c.dtype)
		if got == nil {
			t.Logf("%s: refused on this CPU, which lacks AVX-512", c.name)
			continue
		}
		scale, d := 0.0, 0.0
		for i := range plain {
			scale = math.Max(scale, math.Abs(float64(plain[i])))
			d = math.Max(d, math.Abs(float64(got[i]-plain[i])))
		}
		t.Logf("%s: max |diff| / max |plain| = %.3g", c.name, d/scale)
		assert.LessOrEqual(t, d/scale, c.tol, c.name)
	}
}

func TestNetErrors(t *testing.T) {
	var s tensor.Scope
	defer s.Close()
	net, err := tensor.NewNet(smallNet(t, &s), tensor.MKLDNN, gotch.Float)
	require.NoError(t, err)
	defer net.Close()
	bad, err := s.Own(tensor.FromSlice(make([]float32, 2*3*16*8), 2, 3, 16, 8)) // 3 channels, the net takes 1
	require.NoError(t, err)
	_, err = net.Forward(context.Background(), bad)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n", "the C++ backtrace is cut")
	net.Close()
	net.Close() // idempotent
}

// A done context stops the forward pass before its next chunk of clips, with the context's error.
func TestNetForwardStops(t *testing.T) {
	var s tensor.Scope
	defer s.Close()
	net, err := tensor.NewNet(smallNet(t, &s), tensor.MKLDNN, gotch.Float)
	require.NoError(t, err)
	defer net.Close()
	x, err := s.Own(tensor.FromSlice(make([]float32, 64*16*8), 64, 1, 16, 8))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = net.Forward(ctx, x)
	require.ErrorIs(t, err, context.Canceled)
	y, err := s.Own(net.Forward(context.Background(), x))
	require.NoError(t, err, "a stopped forward leaves the net usable")
	shape, err := y.Size()
	require.NoError(t, err)
	assert.Equal(t, []int64{64, 5}, shape)
}
