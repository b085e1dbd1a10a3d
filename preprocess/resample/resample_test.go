package resample

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
)

func float64sFromLE(b []byte) []float64 {
	x := make([]float64, len(b)/8)
	for i := range x {
		x[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return x
}

func maxAbsDiff(t *testing.T, want, got []float64) float64 {
	t.Helper()
	require.Len(t, got, len(want))
	d := 0.0
	for i := range want {
		d = math.Max(d, math.Abs(want[i]-got[i]))
	}
	return d
}

func TestFilterMatchesResampyTable(t *testing.T) {
	want := float64sFromLE(reftest.Run(t, "resample_ref.py", "filter"))
	got := kaiserBest()
	d := maxAbsDiff(t, want, got)
	t.Logf("kaiser_best table: %d taps, max |computed - resampy's npz| = %.3g", len(got), d)
	assert.LessOrEqual(t, d, 1e-15)
}

func TestParityWithResampy(t *testing.T) {
	var signals []reftest.Signal
	var got [][]float64
	for _, inRate := range rates {
		for _, n := range []int{1, 2, 3, 7, 100, 999, 4801, 3*inRate + 17} {
			x := reftest.Sweep(n, uint64(inRate+n))
			y, err := Resample(x, inRate, 16000)
			require.NoError(t, err)
			signals, got = append(signals, reftest.Signal{X: x, Rate: inRate}), append(got, y)
		}
	}
	want := reftest.Resampy(t, 16000, signals)
	worst := map[int]float64{}
	for i, s := range signals {
		if want[i] == nil {
			// resampy refuses an input too short for one output; Resample returns no samples.
			assert.Empty(t, got[i], "%d Hz, %d samples", s.Rate, len(s.X))
			continue
		}
		d := maxAbsDiff(t, want[i], got[i])
		assert.LessOrEqual(t, d, 1e-9, "%d Hz, %d samples", s.Rate, len(s.X))
		worst[s.Rate] = math.Max(worst[s.Rate], d)
	}
	for _, inRate := range rates {
		t.Logf("%5d -> 16000 Hz: max |Go - resampy| = %.3g", inRate, worst[inRate])
	}
}

// rates are the rates tested against resampy.
var rates = []int{8000, 11025, 22050, 44100, 48000}

func TestStreamingIsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, inRate := range []int{8000, 11025, 22050, 44100, 48000, 16000} {
		x := reftest.Sweep(2*inRate+333, uint64(inRate))
		want, err := Resample(x, inRate, 16000)
		require.NoError(t, err)
		r, err := New(inRate, 16000)
		require.NoError(t, err)
		for trial := range 3 {
			var got []float64
			for rest := x; len(rest) > 0; {
				c := min(len(rest), rng.IntN([]int{3, 300, 20000}[trial])+1)
				got = r.Write(rest[:c], got)
				rest = rest[c:]
			}
			got = r.Flush(got) // also resets r for the next trial
			require.Equal(t, want, got, "%d Hz, trial %d", inRate, trial)
		}
	}
}

func TestIdentityAndErrors(t *testing.T) {
	x := reftest.Sweep(100, 1)
	y, err := Resample(x, 16000, 16000)
	require.NoError(t, err)
	assert.Equal(t, x, y)
	y[0] = 42
	assert.NotEqual(t, x[0], y[0], "Resample must return a copy")

	for _, rates := range [][2]int{{0, 16000}, {16000, 0}, {-1, 16000}} {
		_, err := New(rates[0], rates[1])
		assert.ErrorContains(t, err, "invalid sample rates", "%v", rates)
	}
}

// No pair of rates panics: rates too far apart for the filter table (or that would multiply the input
// thousands of times) are an error, from the first pair on.
func TestRateBounds(t *testing.T) {
	tests := []struct {
		in, out int
		ok      bool
	}{
		{16000 * MaxRatio, 16000, true},      // one table step between taps
		{16000*MaxRatio + 1, 16000, false},   // none: resampy divides by zero
		{1_000_000_000, 16000, false},        // the GHz header
		{math.MaxInt32, 16000, false},        //
		{math.MaxInt, 1, false},              //
		{16000, 16000 * MaxRatio, true},      //
		{16000, 16000*MaxRatio + 1, false},   //
		{1, math.MaxInt, false},              //
		{math.MaxInt, math.MaxInt - 1, true}, // rates near the top of int, close together
		{math.MaxInt, math.MaxInt, true},     //
	}
	for _, tt := range tests {
		r, err := New(tt.in, tt.out)
		if !tt.ok {
			assert.ErrorContains(t, err, fmt.Sprintf("sample rates %d -> %d Hz are more than 8192 times apart", tt.in, tt.out))
			continue
		}
		require.NoError(t, err, "%d -> %d", tt.in, tt.out)
		out := r.Flush(r.Write(reftest.Sweep(100, 1), nil))
		assert.Len(t, out, int(100*float64(tt.out)/float64(tt.in)), "%d -> %d", tt.in, tt.out)
	}
}

// FuzzNew resamples a short input between any two rates: New either refuses them or the output has
// resampy's length, without a panic.
func FuzzNew(f *testing.F) {
	f.Add(44100, 16000, uint8(100))
	f.Add(1_000_000_000, 16000, uint8(10))
	f.Add(16000*MaxRatio, 16000, uint8(3))
	f.Add(1, 8000, uint8(2))
	f.Fuzz(func(t *testing.T, in, out int, n uint8) {
		r, err := New(in, out)
		if err != nil {
			return
		}
		got := r.Flush(r.Write(reftest.Sweep(int(n), 2), nil))
		if want := int(float64(n) * float64(out) / float64(in)); len(got) != want {
			t.Fatalf("%d -> %d Hz: %d samples, want %d", in, out, len(got), want)
		}
	})
}

func TestBufferStaysBounded(t *testing.T) {
	r, err := New(44100, 16000)
	require.NoError(t, err)
	chunk := reftest.Sweep(1000, 3)
	for range 500 {
		r.Write(chunk, nil)
	}
	assert.Less(t, cap(r.buf), 4*(len(chunk)+2*r.wing), "buffer grew with the input length")
}

func benchmarkResample(b *testing.B, inRate int) {
	x := reftest.Sweep(10*inRate, 1)
	r, err := New(inRate, 16000)
	require.NoError(b, err)
	out := make([]float64, 0, 160001)
	b.SetBytes(int64(8 * len(x)))
	b.ResetTimer()
	for range b.N {
		out = out[:0]
		for rest := x; len(rest) > 0; rest = rest[min(len(rest), 4096):] {
			out = r.Write(rest[:min(len(rest), 4096)], out)
		}
		out = r.Flush(out)
	}
}

// 10 s of audio per iteration, streamed in chunks of 4096 samples.
func BenchmarkResample44100(b *testing.B) { benchmarkResample(b, 44100) }
func BenchmarkResample48000(b *testing.B) { benchmarkResample(b, 48000) }

func BenchmarkNew(b *testing.B) {
	kaiserBest()
	for range b.N {
		_, _ = New(44100, 16000)
	}
}
