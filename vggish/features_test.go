package vggish_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
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
	"github.com/vggish-go/vggish/vggish"
)

// writePCM16 writes channels (each in [-1, 1], all the same length) as a 16-bit WAV file and returns
// the integer samples, interleaved.
func writePCM16(t *testing.T, path string, rate int, channels ...[]float64) []int {
	t.Helper()
	c := len(channels)
	buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: c, SampleRate: rate}, SourceBitDepth: 16, Data: make([]int, c*len(channels[0]))}
	for k, x := range channels {
		for i, v := range x {
			buf.Data[i*c+k] = int(math.Round(math.Max(-1, math.Min(1, v)) * 32767))
		}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	enc := wav.NewEncoder(f, rate, 16, c, 1)
	require.NoError(t, enc.Write(buf))
	require.NoError(t, enc.Close())
	return buf.Data
}

// testSignal is seconds of a tone at freq with a little seeded noise.
func testSignal(rate int, seconds, freq float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float64, int(seconds*float64(rate)))
	for i := range x {
		x[i] = 0.4*math.Sin(2*math.Pi*freq*float64(i)/float64(rate)) + 0.05*(2*rng.Float64()-1)
	}
	return x
}

// referenceEmbed has the reference embed one file with extra arguments and returns its (N, 128) rows.
func referenceEmbed(t *testing.T, weights, path string, args ...string) ([]float32, int) {
	t.Helper()
	out := t.TempDir()
	reftest.Run(t, "reference.py", append([]string{"embed", "--weights", weights, "--out", out, path}, args...)...)
	want, shape, err := npyfile.Read(filepath.Join(out, trimExt(filepath.Base(path))+".npy"))
	require.NoError(t, err)
	return want, shape[0]
}

func trimExt(s string) string { return s[:len(s)-len(filepath.Ext(s))] }

// assertClose checks max |got - want| <= 1e-4 × max |want|, the embeddings' parity tolerance.
func assertClose(t *testing.T, want, got []float32, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	var maxDiff, maxRef float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	t.Logf("%s: max |go - reference| = %.3g, max |reference| = %.3g (tolerance 1e-4 × max |reference|)", msg, maxDiff, maxRef)
	assert.LessOrEqual(t, maxDiff, 1e-4*maxRef, msg)
}

// With Channels Each, a 4-channel file gives four streams, each the reference's embedding of that
// channel alone (reference.py --channel K): at 44.1 kHz (each channel resampled on its own) and, with
// the repeat tail, for a 0.4 s sound at 16 kHz.
func TestEachChannelMatchesReference(t *testing.T) {
	w := reftest.Weights(t, "zip")
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		rate    int
		seconds float64
		tail    preprocess.Tail
	}{
		{"44k_2.5s", 44100, 2.5, preprocess.Drop},
		{"16k_0.4s_repeat", 16000, 0.4, preprocess.Repeat},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".wav")
			var chans [][]float64
			for k := range 4 {
				chans = append(chans, testSignal(c.rate, c.seconds, 220*float64(k+1), uint64(k)))
			}
			writePCM16(t, path, c.rate, chans...)
			m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu", BatchSize: 3,
				Channels: vggish.Each, Preprocess: preprocess.Options{Tail: c.tail}})
			require.NoError(t, err)
			defer m.Close()
			got, err := m.EmbedFile(context.Background(), path)
			require.NoError(t, err)
			require.Equal(t, 4, got.Channels)
			for k := range 4 {
				want, rows := referenceEmbed(t, w, path, "--channel", fmt.Sprint(k), "--tail", c.tail.String())
				require.Positive(t, rows)
				ch := got.Channel(k)
				require.Equal(t, rows, ch.Rows(), "channel %d", k)
				assertClose(t, want, ch.Data, fmt.Sprintf("channel %d", k))
				assert.Equal(t, got.Channel(0).Starts, ch.Starts)
			}
		})
	}
}

// A mono input in Each mode is one channel whose stream is the mix's; a buffer's channels are split
// as a file's are.
func TestEachChannelMonoAndBuffer(t *testing.T) {
	w := reftest.Weights(t, "zip")
	mix, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu"})
	require.NoError(t, err)
	defer mix.Close()
	each, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu", Channels: vggish.Each})
	require.NoError(t, err)
	defer each.Close()
	x := testSignal(16000, 2, 440, 1)
	mono := make([]float32, len(x))
	for i, v := range x {
		mono[i] = float32(v)
	}
	a, err := mix.Embed(context.Background(), mono, 16000)
	require.NoError(t, err)
	b, err := each.Embed(context.Background(), mono, 16000)
	require.NoError(t, err)
	assert.Equal(t, 0, a.Channels)
	assert.Equal(t, 1, b.Channels)
	assert.Equal(t, a.Data, b.Channel(0).Data)
	assert.Equal(t, "shape=(1, 2, 128)", b.String()[len(b.String())-17:])

	// Stereo: channel 1 is the mono signal, channel 0 silence.
	stereo := make([]float32, 2*len(mono))
	for i, v := range mono {
		stereo[2*i+1] = v
	}
	e, err := each.EmbedBuffer(context.Background(), &audio.Float32Buffer{Format: &audio.Format{NumChannels: 2, SampleRate: 16000}, Data: stereo})
	require.NoError(t, err)
	require.Equal(t, 2, e.Channels)
	assert.Equal(t, a.Data, e.Channel(1).Data)
	assert.NotEqual(t, a.Data, e.Channel(0).Data)

	// More channels than are preprocessed at once are refused, as audio not embedded here (a small
	// WAV declaring 65535 ran the process out of memory and threads), whole or block by block.
	wide := &audio.Float32Buffer{Format: &audio.Format{NumChannels: 65, SampleRate: 16000}, Data: make([]float32, 65*16000)}
	_, err = each.EmbedBuffer(context.Background(), wide)
	var unsupported *decode.UnsupportedError
	require.ErrorAs(t, err, &unsupported)
	assert.ErrorContains(t, err, "65 channels: at most 64 are embedded each on its own")
	src, err := decode.FromBuffer(wide)
	require.NoError(t, err)
	for _, err := range each.EmbedBlocks(context.Background(), src) {
		require.ErrorAs(t, err, &unsupported)
	}
}

// The three tail policies on a 0.4 s sound and on 2.3 s of audio (a partial last clip), against the
// reference's embeddings of the audio padded or looped by hand (then embedded as it is, drop) and
// of reference.py --tail.
func TestTailPoliciesMatchReference(t *testing.T) {
	w := reftest.Weights(t, "zip")
	dir := t.TempDir()
	for _, seconds := range []float64{0.4, 2.3} {
		x := testSignal(16000, seconds, 330, 9)
		path := filepath.Join(dir, fmt.Sprintf("sound_%gs.wav", seconds))
		ints := writePCM16(t, path, 16000, x)
		// What the policies make of it: N clips covering every sample, the last one's samples from
		// (N-1)*15360 filled to 15600 with zeros or by looping them.
		const stride, span = 15360, preprocess.ExampleSamples
		n := 1
		if len(ints) > span {
			n = 1 + (len(ints)-span+stride-1)/stride
		}
		start, length := (n-1)*stride, (n-1)*stride+span
		padded, looped := make([]float64, length), make([]float64, length)
		for i := range length {
			if i < len(ints) {
				padded[i] = float64(ints[i]) / 32767
			}
			looped[i] = float64(ints[i%len(ints)]) / 32767
			if i >= len(ints) {
				looped[i] = float64(ints[start+(i-start)%(len(ints)-start)]) / 32767
			}
		}
		byHand := map[preprocess.Tail]string{
			preprocess.Pad:    filepath.Join(dir, fmt.Sprintf("padded_%gs.wav", seconds)),
			preprocess.Repeat: filepath.Join(dir, fmt.Sprintf("looped_%gs.wav", seconds)),
		}
		writePCM16(t, byHand[preprocess.Pad], 16000, padded)
		writePCM16(t, byHand[preprocess.Repeat], 16000, looped)
		for _, tail := range []preprocess.Tail{preprocess.Drop, preprocess.Pad, preprocess.Repeat} {
			t.Run(fmt.Sprintf("%gs_%v", seconds, tail), func(t *testing.T) {
				m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu", Preprocess: preprocess.Options{Tail: tail}})
				require.NoError(t, err)
				defer m.Close()
				got, err := m.EmbedFile(context.Background(), path)
				require.NoError(t, err)
				want, rows := referenceEmbed(t, w, path, "--tail", tail.String())
				require.Equal(t, rows, got.Rows())
				if tail == preprocess.Drop {
					assert.Equal(t, n-1, rows, "the partial clip is dropped")
				} else {
					assert.Equal(t, n, rows)
				}
				if rows > 0 {
					assertClose(t, want, got.Data, "reference.py --tail "+tail.String())
				}
				if hand, ok := byHand[tail]; ok {
					want, rows := referenceEmbed(t, w, hand)
					require.Equal(t, n, rows)
					assertClose(t, want, got.Data, "the reference on the "+filepath.Base(hand))
				}
			})
		}
	}
}
