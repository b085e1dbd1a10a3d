package preprocess_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
)

func TestMain(m *testing.M) { reftest.Main(m) }

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestLogMelMatchesReference compares every synthesised fixture's examples with the Python reference,
// at the tolerances: 1e-4 for 16 kHz input, 5e-4 when resampled.
func TestLogMelMatchesReference(t *testing.T) {
	manifest, fx := reftest.Fixtures(t)
	for _, variant := range []struct {
		name string
		args []string
		opts preprocess.Options
	}{
		{"default", nil, preprocess.Options{}},
		{"hop0.5", []string{"--hop", "0.5"}, preprocess.Options{Hop: 0.5}},
		{"padtail", []string{"--pad-tail"}, preprocess.Options{Tail: preprocess.Pad}},
		{"repeat", []string{"--tail", "repeat"}, preprocess.Options{Tail: preprocess.Repeat}},
		{"repeat_hop0.5", []string{"--tail", "repeat", "--hop", "0.5"}, preprocess.Options{Tail: preprocess.Repeat, Hop: 0.5}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			out := filepath.Join(reftest.WorkDir(t), "logmel-"+variant.name)
			args := append([]string{"logmel", "--out", out, "--manifest", manifest}, variant.args...)
			reftest.Run(t, "reference.py", args...)
			worst := map[bool]float64{}
			for _, f := range fx {
				want, shape, err := npyfile.Read(filepath.Join(out, f.Stem()+".npy"))
				require.NoError(t, err, f.Name)
				got, info, err := preprocess.File(context.Background(), f.Path, variant.opts)
				require.NoError(t, err, f.Name)
				require.Equal(t, shape[0], got.Len(), "%s: example count", f.Name)
				require.Len(t, got.Data, len(want), f.Name)
				assert.Equal(t, f.Rate, info.SampleRate, f.Name)
				assert.InDelta(t, f.Seconds, info.Duration, 1e-9, f.Name)
				d := maxAbsDiff(got.Data, want)
				resampled := f.Rate != preprocess.SampleRate
				tol := map[bool]float64{false: 1e-4, true: 5e-4}[resampled]
				assert.LessOrEqual(t, d, tol, "%s (%d Hz %s %dch): max |diff|", f.Name, f.Rate, f.Subtype, f.Channels)
				worst[resampled] = math.Max(worst[resampled], d)
			}
			t.Logf("%d fixtures: max |go - reference| = %.3g at 16 kHz (tolerance 1e-4), %.3g resampled (5e-4)",
				len(fx), worst[false], worst[true])
		})
	}
}

// chunky delivers a source's samples in awkward, varying chunk sizes.
type chunky struct {
	decode.Source
	sizes []int
	i     int
}

func (c *chunky) Read(p []float64) (int, error) {
	n := min(len(p), c.sizes[c.i%len(c.sizes)])
	c.i++
	return c.Source.Read(p[:n])
}

func tone(n, rate int) []float64 {
	x := make([]float64, n)
	for i := range x {
		t := float64(i) / float64(rate)
		x[i] = 0.5*math.Sin(2*math.Pi*440*t) + 0.3*math.Sin(2*math.Pi*(100+300*t)*t)
	}
	return x
}

// TestChunkedEqualsWhole: the examples do not depend on how the source delivers its samples.
func TestChunkedEqualsWhole(t *testing.T) {
	for _, c := range []struct {
		rate    int
		seconds float64
		opts    preprocess.Options
	}{
		{16000, 70, preprocess.Options{}},
		{44100, 75, preprocess.Options{Hop: 0.5, Tail: preprocess.Pad}},
		{48000, 3, preprocess.Options{Tail: preprocess.Pad}},
		{22050, 0.4, preprocess.Options{Tail: preprocess.Repeat}},
		{16000, 150.3, preprocess.Options{Hop: 2, Tail: preprocess.Repeat}},
	} {
		t.Run(fmt.Sprintf("%dHz_%gs", c.rate, c.seconds), func(t *testing.T) {
			x := tone(int(c.seconds*float64(c.rate)), c.rate)
			whole, _, err := preprocess.Read(context.Background(), decode.FromFloat64(x, c.rate), c.opts)
			require.NoError(t, err)
			src := &chunky{Source: decode.FromFloat64(x, c.rate), sizes: []int{1, 7, 4096, 333, 65536, 160, 12345}}
			chunked, _, err := preprocess.Read(context.Background(), src, c.opts)
			require.NoError(t, err)
			require.Equal(t, whole.Len(), chunked.Len())
			assert.Equal(t, whole.Starts, chunked.Starts)
			assert.True(t, equalBits(whole.Data, chunked.Data), "chunked result differs from the whole-input result")
		})
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestShortInputGivesNoExamples(t *testing.T) {
	for _, n := range []int{0, 1, 239, 399, 400, 15599} {
		ex, info, err := preprocess.Read(context.Background(), decode.FromFloat64(tone(n, 16000), 16000), preprocess.Options{})
		require.NoError(t, err, n)
		assert.Equal(t, 0, ex.Len(), n)
		assert.Equal(t, 0, info.Examples, n)
	}
	ex, _, err := preprocess.Read(context.Background(), decode.FromFloat64(tone(15600, 16000), 16000), preprocess.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, ex.Len(), "15600 samples make one example")
	for _, tail := range []preprocess.Tail{preprocess.Pad, preprocess.Repeat} {
		ex, _, err = preprocess.Read(context.Background(), decode.FromFloat64(tone(100, 16000), 16000), preprocess.Options{Tail: tail})
		require.NoError(t, err)
		assert.Equal(t, 1, ex.Len(), tail)
	}
}

func TestHopOption(t *testing.T) {
	x := tone(16000*5, 16000)
	for _, c := range []struct {
		hop     float64
		want    int
		wantErr bool
	}{{0, 5, false}, {0.96, 5, false}, {0.5, 9, false}, {0.25, 17, false}, {0.001, 0, true}, {-1, 0, true}} {
		ex, _, err := preprocess.Read(context.Background(), decode.FromFloat64(x, 16000), preprocess.Options{Hop: c.hop})
		if c.wantErr {
			assert.ErrorContains(t, err, "example hop", c.hop)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.want, ex.Len(), "hop %g", c.hop)
		if ex.Len() > 1 {
			assert.InDelta(t, math.Max(c.hop, 0.96*map[bool]float64{true: 1, false: 0}[c.hop == 0]), ex.Starts[1], 1e-12)
		}
	}
}

// Hops longer than an example (0.975 s) leave samples between examples that no example covers; over
// more than a block of examples, and with each tail policy, the examples still match the reference.
func TestLongHopMatchesReference(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "long.wav")
	x := tone(int(150.3*16000), 16000)
	writeWAV16(t, path, x, 16000)
	for _, c := range []struct {
		hop  float64
		tail preprocess.Tail
	}{{2, preprocess.Drop}, {2, preprocess.Pad}, {1.5, preprocess.Repeat}, {0.98, preprocess.Repeat}} {
		name := fmt.Sprintf("hop%g_%v", c.hop, c.tail)
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name)
			reftest.Run(t, "reference.py", "logmel", "--out", out, "--hop", fmt.Sprint(c.hop), "--tail", c.tail.String(), path)
			want, shape, err := npyfile.Read(filepath.Join(out, "long.npy"))
			require.NoError(t, err)
			got, _, err := preprocess.File(context.Background(), path, preprocess.Options{Hop: c.hop, Tail: c.tail})
			require.NoError(t, err)
			require.Greater(t, shape[0], preprocess.BlockExamples)
			require.Equal(t, shape[0], got.Len())
			assert.LessOrEqual(t, maxAbsDiff(got.Data, want), 1e-4)
		})
	}
}

// writeWAV16 writes mono samples in [-1, 1] as a 16-bit WAV file.
func writeWAV16(t *testing.T, path string, x []float64, rate int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: rate}, SourceBitDepth: 16, Data: make([]int, len(x))}
	for i, v := range x {
		buf.Data[i] = int(math.Round(v * 32767))
	}
	enc := wav.NewEncoder(f, rate, 16, 1, 1)
	require.NoError(t, enc.Write(buf))
	require.NoError(t, enc.Close())
}
