package preprocess_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/preprocess"
)

// burst is seconds of a quiet tone at rate Hz with samples of magnitude peak from 2.0 s to 2.1 s.
func burst(seconds float64, rate int, peak float64) []float64 {
	x := make([]float64, int(seconds*float64(rate)))
	for i := range x {
		t := float64(i) / float64(rate)
		x[i] = 0.1 * math.Sin(2*math.Pi*440*t)
		if t >= 2 && t < 2.1 {
			x[i] = peak * math.Sin(2*math.Pi*440*t)
		}
	}
	return x
}

// Finite samples large enough to overflow the spectrum make the clip that holds them fail, naming it;
// no NaN or infinity ever reaches an example. Smaller ones, however loud, give finite examples. Where
// the overflow starts depends on libtorch (1.13's complex magnitude overflows from about 1e154, 2.x's
// does not), so the failing peaks overflow the FFT's own sums on every version.
func TestOverflowingSamplesFail(t *testing.T) {
	tests := []struct {
		rate int
		peak float64
		err  string // "" for finite examples
	}{
		{16000, 1, ""},
		{16000, 1e150, ""},
		{16000, 1e307, "preprocess float64 samples: example 2 (at 1.92 s): log-mel value NaN: the samples overflow the spectrum (largest magnitude 1e+307"},
		{16000, math.MaxFloat64, "example 2 (at 1.92 s): log-mel value NaN: the samples overflow the spectrum (largest magnitude 1.8e+308"},
		{44100, 1e307, "example 2 (at 1.92 s): log-mel value NaN: the samples overflow the spectrum"},
		{44100, math.MaxFloat64, "example 2 (at 1.92 s): log-mel value NaN: the samples overflow the spectrum (largest magnitude +Inf"}, // the resampler's sums overflow
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d Hz peak %g", tt.rate, tt.peak), func(t *testing.T) {
			ex, _, err := preprocess.Read(context.Background(), decode.FromFloat64(burst(4, tt.rate, tt.peak), tt.rate), preprocess.Options{})
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				t.Log(err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 4, ex.Len())
			for i, v := range ex.Data {
				require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "value %d is %v", i, v)
			}
		})
	}
}

// rateSource is a Source other than decode's, at any rate.
type rateSource struct{ rate int }

func (s rateSource) SampleRate() int               { return s.rate }
func (s rateSource) Read(p []float64) (int, error) { return len(p), nil }
func (s rateSource) Close() error                  { return nil }
func (s rateSource) Name() string                  { return "custom" }

// Stream refuses a rate out of range from any Source before reading it (decode's own Sources refuse
// it when opened or on their first Read).
func TestStreamRateBounds(t *testing.T) {
	for _, rate := range []int{0, 2, decode.MinSampleRate - 1, decode.MaxSampleRate + 1, 800_000_000, math.MaxInt} {
		_, err := preprocess.Stream(context.Background(), rateSource{rate}, preprocess.Options{}, func(*preprocess.Examples) error {
			t.Fatal("no examples expected")
			return nil
		})
		assert.EqualError(t, err, fmt.Sprintf("preprocess custom: sample rate %d Hz is out of range: audio is sampled at 1000 Hz to 1000000 Hz", rate))
	}
	for _, rate := range []int{decode.MinSampleRate, decode.MaxSampleRate} {
		ex, info, err := preprocess.Read(context.Background(), decode.FromFloat64(make([]float64, 2*rate), rate), preprocess.Options{})
		require.NoError(t, err, rate)
		assert.Equal(t, 2, ex.Len(), rate)
		assert.Equal(t, 2.0, info.Duration, rate)
	}
}

// Nil input is an error, never a panic.
func TestNilInputFails(t *testing.T) {
	ctx := t.Context()
	src := decode.FromFloat64(make([]float64, 16000), 16000)
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"Read, nil Source", func() error { _, _, err := preprocess.Read(ctx, nil, preprocess.Options{}); return err }, "preprocess: nil Source"},
		{"Stream, nil Source", func() error {
			_, err := preprocess.Stream(ctx, nil, preprocess.Options{}, func(*preprocess.Examples) error { return nil })
			return err
		}, "preprocess: nil Source"},
		{"Stream, nil fn", func() error { _, err := preprocess.Stream(ctx, src, preprocess.Options{}, nil); return err }, "preprocess float64 samples: nil fn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.call() })
			assert.EqualError(t, err, c.want)
		})
	}
}

// wavFile is a WAV file built from raw fmt fields, consistent or not.
func wavFile(tag, channels uint16, rate uint32, blockAlign, bits uint16, data []byte) []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(36+len(data)))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(blockAlign))
	b = le.AppendUint16(b, blockAlign)
	b = le.AppendUint16(b, bits)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// FuzzWAVHeader fuzzes the fmt chunk's fields together with the data through the decoder, the resampler
// and the log-mel: any header either fails with an error naming the file or streams examples with finite
// values at a rate in range, never a panic.
func FuzzWAVHeader(f *testing.F) {
	tone := make([]byte, 40000)
	for i := 0; i < len(tone); i += 2 {
		binary.LittleEndian.PutUint16(tone[i:], uint16(int16(8000*math.Sin(float64(i)/9))))
	}
	f.Add(uint16(1), uint16(1), uint32(16000), uint16(2), uint16(16), tone)
	f.Add(uint16(1), uint16(2), uint32(1000), uint16(4), uint16(16), tone)
	f.Add(uint16(1), uint16(1), uint32(3), uint16(2), uint16(16), tone)
	f.Add(uint16(1), uint16(1), uint32(500_000_000), uint16(2), uint16(16), tone)
	f.Add(uint16(3), uint16(1), uint32(44100), uint16(8), uint16(64), bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, 100))
	f.Add(uint16(3), uint16(1), uint32(8000), uint16(8), uint16(64), bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0x70, 0x60}, 3000))
	f.Add(uint16(1), uint16(0), uint32(16000), uint16(0), uint16(0), tone[:10])
	f.Fuzz(func(t *testing.T, tag, channels uint16, rate uint32, blockAlign, bits uint16, data []byte) {
		data = data[:min(len(data), 1<<16)] // a second or so of audio keeps each run short
		src, err := decode.NewWAV(bytes.NewReader(wavFile(tag, channels, rate, blockAlign, bits, data)), "fuzz.wav")
		if err == nil {
			if r := src.SampleRate(); r < decode.MinSampleRate || r > decode.MaxSampleRate {
				t.Fatalf("opened at %d Hz", r)
			}
			_, err = preprocess.Stream(context.Background(), src, preprocess.Options{Tail: preprocess.Pad}, func(e *preprocess.Examples) error {
				for i, v := range e.Data {
					if v-v != 0 {
						t.Fatalf("value %d is %v", i, v)
					}
				}
				return nil
			})
		}
		if err != nil && !strings.HasPrefix(err.Error(), "decode fuzz.wav: ") && !strings.HasPrefix(err.Error(), "preprocess fuzz.wav: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
