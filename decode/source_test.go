package decode

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-audio/audio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
)

// readAll reads s to the end with reads of random sizes (1 to maxRead samples), and closes it.
func readAll(t *testing.T, s Source, maxRead int, seed uint64) ([]float64, error) {
	t.Helper()
	defer func() { assert.NoError(t, s.Close()) }()
	rng := rand.New(rand.NewPCG(seed, 3))
	var out []float64
	for {
		p := make([]float64, 1+rng.IntN(maxRead))
		n, err := s.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		require.Positive(t, n, "Read returned 0 samples and no error")
	}
}

type refCase struct {
	File         string
	Expected     string
	ChannelFiles []string `json:"channel_files"`
	Rate         int
	Channels     int
}

// referenceFiles has the Python reference write audio files and the samples it decodes from them.
func referenceFiles(t *testing.T) []refCase {
	dir := t.TempDir()
	var cases []refCase
	require.NoError(t, json.Unmarshal(reftest.Run(t, "decode_ref.py", "make", dir), &cases))
	require.NotEmpty(t, cases)
	return cases
}

func readFloat64s(t *testing.T, path string) []float64 {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	x := make([]float64, len(b)/8)
	for i := range x {
		x[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return x
}

// TestDecodeMatchesReference decodes PCM 8/16/24/32-bit and float 32/64-bit WAV (plain and
// WAVE_FORMAT_EXTENSIBLE) and 16/24-bit FLAC, 1 to 9 channels, natively (Open) and through ffmpeg
// (NewFFmpeg), and requires exactly the samples the Python reference computes.
func TestDecodeMatchesReference(t *testing.T) {
	for i, c := range referenceFiles(t) {
		t.Run(filepath.Base(c.File), func(t *testing.T) {
			want := readFloat64s(t, c.Expected)
			s, err := Open(c.File)
			require.NoError(t, err)
			assert.Equal(t, c.Rate, s.SampleRate())
			got, err := readAll(t, s, 5000, uint64(i))
			require.NoError(t, err)
			require.Equal(t, want, got, "Open")
			if filepath.Ext(c.File) == ".wav" {
				s, err := NewFFmpeg(t.Context(), c.File)
				require.NoError(t, err)
				assert.Equal(t, c.Rate, s.SampleRate())
				got, err := readAll(t, s, 5000, uint64(i))
				require.NoError(t, err)
				require.Equal(t, want, got, "NewFFmpeg")
			}
		})
	}
}

func TestPairwiseSumMatchesNumpyOrder(t *testing.T) {
	// Terms of half an ulp of 1 vanish or add up depending on the grouping. (The reference test above
	// checks the real thing against np.mean with 3 and 9 channels.)
	big, small := 1.0, math.Ldexp(1, -53)
	assert.Equal(t, big+small+small, pairwiseSum([]float64{big, small, small}), "sequential below 8")
	a := make([]float64, 9)
	a[0] = big
	for i := 1; i < 9; i++ {
		a[i] = small
	}
	// numpy: ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) then + a[8]: the small terms pair up and survive.
	want := ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + a[8]
	assert.Equal(t, want, pairwiseSum(a))
	assert.NotEqual(t, want, func() float64 {
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	}(), "the test must tell the orders apart")
}

func TestFromBuffer(t *testing.T) {
	stereo := &audio.Format{NumChannels: 2, SampleRate: 8000}
	mono := &audio.Format{NumChannels: 1, SampleRate: 8000}
	tests := []struct {
		name string
		buf  audio.Buffer
		want []float64
		err  string
	}{
		{"int8 unsigned", &audio.IntBuffer{Format: mono, SourceBitDepth: 8, Data: []int{0, 128, 255}},
			[]float64{-1, 0, 127.0 / 128}, ""},
		{"int16 stereo", &audio.IntBuffer{Format: stereo, SourceBitDepth: 16, Data: []int{-32768, 32767, 16384, 16384}},
			[]float64{(-1 + 32767.0/32768) / 2, 0.5}, ""},
		{"int24", &audio.IntBuffer{Format: mono, SourceBitDepth: 24, Data: []int{-1 << 23, 1 << 22}},
			[]float64{-1, 0.5}, ""},
		{"int32", &audio.IntBuffer{Format: mono, SourceBitDepth: 32, Data: []int{math.MinInt32, 1 << 30}},
			[]float64{-1, 0.5}, ""},
		{"float32 stereo", &audio.Float32Buffer{Format: stereo, Data: []float32{0.1, 0.3}},
			[]float64{(float64(float32(0.1)) + float64(float32(0.3))) / 2}, ""},
		{"float64", &audio.FloatBuffer{Format: mono, Data: []float64{0.1, -2}}, []float64{0.1, -2}, ""},
		{"no bit depth", &audio.IntBuffer{Format: mono, Data: []int{1}}, nil, "SourceBitDepth 0"},
		{"zero channels", &audio.FloatBuffer{Format: &audio.Format{SampleRate: 8000}}, nil, "invalid channel count 0"},
		{"zero rate", &audio.FloatBuffer{Format: &audio.Format{NumChannels: 1}}, nil, "sample rate 0 Hz is out of range"},
		{"rate 5 Hz", &audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: 5}, SourceBitDepth: 16}, nil,
			"decode *audio.IntBuffer: sample rate 5 Hz is out of range"},
		{"rate 2 GHz", &audio.Float32Buffer{Format: &audio.Format{NumChannels: 2, SampleRate: 2e9}}, nil, "sample rate 2000000000 Hz is out of range"},
		{"no format", &audio.FloatBuffer{}, nil, "no format"},
		{"partial frame", &audio.FloatBuffer{Format: stereo, Data: []float64{1, 2, 3}}, nil, "whole frames"},
		{"unsupported type", &audio.PCMBuffer{Format: mono}, nil, "decode *audio.PCMBuffer: unsupported audio buffer type"},
		{"nil", nil, nil, "nil audio buffer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromBuffer(tt.buf)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 8000, s.SampleRate())
			got, err := readAll(t, s, 3, 1)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFromFloat(t *testing.T) {
	x := []float32{0.25, -1, 3e-39}
	got, err := readAll(t, FromFloat32(x, 22050), 2, 1)
	require.NoError(t, err)
	assert.Equal(t, []float64{0.25, -1, float64(float32(3e-39))}, got)

	s := FromFloat64([]float64{1, 2, math.NaN(), 4}, 16000)
	assert.Equal(t, 16000, s.SampleRate())
	got, err = readAll(t, s, 10, 1)
	assert.Equal(t, []float64{1, 2}, got, "samples before the NaN")
	assert.ErrorContains(t, err, "decode float64 samples: sample 2 is NaN")

	_, err = readAll(t, FromFloat32([]float32{float32(math.Inf(-1))}, 16000), 10, 1)
	assert.ErrorContains(t, err, "sample 0 is -Inf")

	n, err := FromFloat64(nil, 16000).Read(make([]float64, 4))
	assert.Zero(t, n)
	assert.True(t, errors.Is(err, io.EOF))

	// A rate out of range fails the first Read.
	for _, s := range []Source{FromFloat32(x, 2), FromFloat64(nil, -1), FromFloat64([]float64{0}, MaxSampleRate+1)} {
		n, err := s.Read(make([]float64, 4))
		assert.Zero(t, n)
		assert.ErrorContains(t, err, fmt.Sprintf("samples: sample rate %d Hz is out of range", s.SampleRate()))
	}
	for _, rate := range []int{MinSampleRate, MaxSampleRate} {
		got, err := readAll(t, FromFloat32(x, rate), 2, 1)
		require.NoError(t, err, rate)
		assert.Len(t, got, len(x))
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.wav")
	_, err := Open(missing)
	assert.ErrorContains(t, err, missing)
	assert.ErrorIs(t, err, os.ErrNotExist)

	empty := filepath.Join(dir, "empty.wav")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = Open(empty)
	assert.EqualError(t, err, "decode "+empty+": empty file")
	var format *FormatError
	assert.ErrorAs(t, err, &format)
}

// Nil input is an error, never a panic: from the call, or from Read where the call has no error to
// return.
func TestNilInputFails(t *testing.T) {
	// read uses the Source as a caller would.
	read := func(s Source) error {
		s.SampleRate()
		defer s.Close()
		_, err := s.Read(make([]float64, 10))
		return err
	}
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"NewWAV", func() error { _, err := NewWAV(nil, "x.wav"); return err }, "decode x.wav: nil reader"},
		{"OpenReader", func() error { _, err := OpenReader(t.Context(), nil, "-"); return err }, "decode -: nil reader"},
		{"FromBuffer", func() error { _, err := FromBuffer(nil); return err }, "decode: nil audio buffer"},
		{"Split", func() error { _, err := Split(nil); return err }, "decode: <nil> cannot be split into channels"},
		{"Limit", func() error { return read(Limit(nil, 1)) }, "decode: nil Source"},
		{"Watch", func() error { return read(Watch(nil, 1, func(int64, int) {})) }, "decode: nil Source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.call() })
			assert.EqualError(t, err, c.want)
		})
	}
}
