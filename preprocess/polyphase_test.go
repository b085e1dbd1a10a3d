package preprocess

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess/resample"
)

// bankRates are the rates that must resample in torch: every common rate.
var bankRates = []int{8000, 11025, 22050, 24000, 32000, 44100, 48000, 88200, 96000}

// resampleAll runs x through a new resampler from rate in chunks of the given sizes (cycled), the
// whole signal at once when sizes is empty.
func resampleAll(t *testing.T, x []float64, rate int, sizes ...int) []float64 {
	t.Helper()
	r, err := newResampler(rate, gotch.CPU)
	require.NoError(t, err)
	defer r.Close()
	var out []float64
	for i := 0; len(x) > 0; i++ {
		c := len(x)
		if len(sizes) > 0 {
			c = min(c, sizes[i%len(sizes)])
		}
		out, err = r.Write(x[:c], out)
		require.NoError(t, err)
		x = x[c:]
	}
	out, err = r.Flush(out)
	require.NoError(t, err)
	return out
}

func TestPolyphaseMatchesResampy(t *testing.T) {
	var signals []reftest.Signal
	var got [][]float64
	for _, rate := range bankRates {
		b, _, err := bankFor(rate, gotch.CPU)
		require.NoError(t, err)
		require.NotNil(t, b, "%d Hz resamples in torch", rate)
		// Lengths around a group's and a row's size, so that every way of ending is tried.
		for _, n := range []int{1, 2, 3, 7, 100, 999, 4801, 3*rate + 17, b.group*b.step*2 + 5} {
			x := reftest.Sweep(n, uint64(rate+n))
			signals, got = append(signals, reftest.Signal{X: x, Rate: rate}), append(got, resampleAll(t, x, rate))
		}
	}
	want := reftest.Resampy(t, SampleRate, signals)
	worst := map[int]float64{}
	for i, s := range signals {
		if want[i] == nil {
			assert.Empty(t, got[i], "%d Hz, %d samples: resampy gives no output", s.Rate, len(s.X))
			continue
		}
		require.Len(t, got[i], len(want[i]), "%d Hz, %d samples", s.Rate, len(s.X))
		d := 0.0
		for j := range want[i] {
			d = math.Max(d, math.Abs(want[i][j]-got[i][j]))
		}
		assert.LessOrEqual(t, d, 1e-9, "%d Hz, %d samples", s.Rate, len(s.X))
		worst[s.Rate] = math.Max(worst[s.Rate], d)
	}
	for _, rate := range bankRates {
		b, _, _ := bankFor(rate, gotch.CPU)
		t.Logf("%5d -> 16000 Hz: %4d phases x %4d weights: max |torch - resampy| = %.3g", rate, b.outs, b.width, worst[rate])
	}
}

func TestPolyphaseChunkingIsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, rate := range []int{44100, 48000, 8000} {
		x := reftest.Sweep(7*rate+333, uint64(rate))
		whole := resampleAll(t, x, rate)
		for _, sizes := range [][]int{{1, 7, 4096}, {rng.IntN(300) + 1}, {65536, 333}} {
			assert.Equal(t, whole, resampleAll(t, x, rate, sizes...), "%d Hz in chunks of %v", rate, sizes)
		}
	}
}

func TestResamplerChoice(t *testing.T) {
	for _, c := range []struct {
		rate int
		want string
	}{{16000, "preprocess.identity"}, {44100, "*preprocess.polyphase"}, {44056, "preprocess.goResampler"}} {
		r, err := newResampler(c.rate, gotch.CPU)
		require.NoError(t, err)
		assert.Equal(t, c.want, typeName(r), "%d Hz", c.rate)
	}
	// The Go fallback and the bank agree: both are resampy.
	x := reftest.Sweep(44056, 3)
	want, err := resample.Resample(x, 44056, SampleRate)
	require.NoError(t, err)
	assert.Equal(t, want, resampleAll(t, x, 44056))
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

// Inputs of a new rate that start together wait for one bank, rather than each building it.
func TestBankIsBuiltOncePerRate(t *testing.T) {
	banksMu.Lock()
	saved := banks
	banks = map[bankKey]*bank{}
	banksMu.Unlock()
	var builds atomic.Int32
	buildBank = func(rate int, device gotch.Device) (*bank, error) {
		builds.Add(1)
		return newBank(rate, device)
	}
	t.Cleanup(func() {
		buildBank = newBank
		banksMu.Lock()
		defer banksMu.Unlock()
		for _, b := range banks {
			b.free()
		}
		banks = saved
	})
	got := make([]*bank, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			b, owned, err := bankFor(44100, gotch.CPU)
			assert.NoError(t, err)
			assert.False(t, owned, "a cached bank")
			got[i] = b
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, builds.Load())
	require.NotNil(t, got[0])
	for _, b := range got {
		assert.Same(t, got[0], b)
	}
}

// Banks are kept for a few rates; a stream of files with many rates does not grow the process.
func TestBankCacheIsBounded(t *testing.T) {
	before := len(ts.ExistingTensors)
	for k := 1; k <= 3*maxCachedBanks; k++ {
		rate := 1000 * k
		x := reftest.Sweep(rate/10, uint64(k))
		if k != 16 {
			assert.NotEmpty(t, resampleAll(t, x, rate), "%d Hz", rate)
		}
	}
	banksMu.Lock()
	cached, held := len(banks), 0
	for _, b := range banks {
		if b != nil {
			held += len(b.weights)
		}
	}
	banksMu.Unlock()
	assert.LessOrEqual(t, cached, maxCachedBanks)
	assert.LessOrEqual(t, len(ts.ExistingTensors)-before, held, "banks past the cache are freed")
}
