package tensor_test

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/tensor"
)

func randomSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// Polyphase is, block by block, the products of x's strided windows with the block's weights.
func TestPolyphase(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, step = 6, 5
	blocks := []struct {
		offset, width, outs int
	}{{0, 4, 2}, {3, 5, 3}}
	var s tensor.Scope
	defer s.Close()
	xs := randomSlice(rng, 3+(rows-1)*step+5)
	x, err := s.Own(tensor.FromSlice(xs, int64(len(xs))))
	require.NoError(t, err)
	var weights []*ts.Tensor
	var ws [][]float64
	var offsets []int64
	for _, b := range blocks {
		w := randomSlice(rng, b.width*b.outs)
		wt, err := s.Own(tensor.FromSlice(w, int64(b.width), int64(b.outs)))
		require.NoError(t, err)
		weights, ws, offsets = append(weights, wt), append(ws, w), append(offsets, int64(b.offset))
	}
	y, err := s.Own(tensor.Polyphase(x, weights, offsets, rows, step))
	require.NoError(t, err)
	got, err := tensor.ToSlice[float64](y)
	require.NoError(t, err)
	require.Len(t, got, rows*5)
	for r := range rows {
		col := 0
		for j, b := range blocks {
			for c := range b.outs {
				want := 0.0
				for i := range b.width {
					want += xs[b.offset+r*step+i] * ws[j][i*b.outs+c]
				}
				assert.InDelta(t, want, got[r*5+col+c], 1e-12, "row %d, block %d, output %d", r, j, c)
			}
			col += b.outs
		}
	}

	// A window past x, or offsets that do not match the weights, are errors.
	_, err = tensor.Polyphase(x, weights, offsets, rows+1, step)
	assert.Error(t, err)
	_, err = tensor.Polyphase(x, weights, offsets[:1], rows, step)
	assert.Error(t, err)
}

// LogMel is log(|rfft(frames × window)| mel + offset), over frames enough for several chunks.
func TestLogMel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const frames, length, fft, bands = 300, 12, 16, 3
	var s tensor.Scope
	defer s.Close()
	fs, w, m := randomSlice(rng, frames*length), randomSlice(rng, length), randomSlice(rng, (fft/2+1)*bands)
	for i := range m {
		m[i] = math.Abs(m[i])
	}
	ft, err := s.Own(tensor.FromSlice(fs, frames, length))
	require.NoError(t, err)
	wt, err := s.Own(tensor.FromSlice(w, length))
	require.NoError(t, err)
	mt, err := s.Own(tensor.FromSlice(m, fft/2+1, bands))
	require.NoError(t, err)
	y, err := s.Own(tensor.LogMel(ft, wt, mt, 0.01, fft))
	require.NoError(t, err)
	got, err := tensor.ToSlice[float64](y)
	require.NoError(t, err)
	require.Len(t, got, frames*bands)
	for f := range frames {
		spectrum := make([]float64, fft/2+1)
		for k := range spectrum {
			var sum complex128
			for i := range length {
				sum += complex(fs[f*length+i]*w[i], 0) * cmplx.Rect(1, -2*math.Pi*float64(k*i)/fft)
			}
			spectrum[k] = cmplx.Abs(sum)
		}
		for b := range bands {
			want := 0.01
			for k, v := range spectrum {
				want += v * m[k*bands+b]
			}
			assert.InDelta(t, math.Log(want), got[f*bands+b], 1e-10, "frame %d, band %d", f, b)
		}
	}
}
