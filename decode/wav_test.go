package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunk is a RIFF chunk with the given body, padded to an even size.
func chunk(id string, body []byte) []byte {
	return sizedChunk(id, uint32(len(body)), body)
}

// sizedChunk is a RIFF chunk declaring size bytes, whatever body holds.
func sizedChunk(id string, size uint32, body []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, size)...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// fmtBody is a 16-byte WAVEFORMAT: format tag, channels, rate, bits, with a consistent block align.
func fmtBody(tag, channels uint16, rate uint32, bits uint16) []byte {
	align := channels * ((bits + 7) / 8)
	le := binary.LittleEndian
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(align))
	b = le.AppendUint16(b, align)
	return le.AppendUint16(b, bits)
}

// extensibleBody is a 40-byte WAVEFORMATEXTENSIBLE whose sub-format GUID carries subTag.
func extensibleBody(subTag, channels uint16, rate uint32, bits uint16) []byte {
	le := binary.LittleEndian
	b := fmtBody(waveExtensible, channels, rate, bits)
	b = le.AppendUint16(b, 22)   // cbSize
	b = le.AppendUint16(b, bits) // valid bits
	b = le.AppendUint32(b, 0)    // channel mask
	b = le.AppendUint16(b, subTag)
	return append(b, extensibleGUIDTail...)
}

// sunAU is a Sun .au file of mono 16-bit PCM (big-endian header), a format decoded through ffmpeg.
func sunAU(rate uint32, data []byte) []byte {
	be := binary.BigEndian
	b := []byte(".snd")
	for _, v := range []uint32{24, uint32(len(data)), 3, rate, 1} { // header size, data size, encoding, rate, channels
		b = be.AppendUint32(b, v)
	}
	return append(b, data...)
}

// riffWAVE wraps chunks in a RIFF/WAVE header.
func riffWAVE(chunks ...[]byte) []byte {
	body := append([]byte("WAVE"), bytes.Join(chunks, nil)...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

func le16s(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func le32fs(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func le64fs(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// validWAVs are well-formed files and what they decode to (also the fuzz seed corpus).
var validWAVs = []struct {
	name string
	file []byte
	want []float64
}{
	{"pcm16 mono", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16)), chunk("data", le16s(-32768, 16384, 1))),
		[]float64{-1, 0.5, 1.0 / 32768}},
	{"u8 odd length, padded, LIST after data",
		riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 8000, 8)), chunk("data", []byte{0, 128, 192}), chunk("LIST", []byte("INFOjunk"))),
		[]float64{-1, 0, 0.5}},
	{"odd chunk before fmt", riffWAVE(chunk("junk", []byte{1, 2, 3}), chunk("fmt ", fmtBody(wavePCM, 2, 8000, 16)),
		chunk("data", le16s(100, 300))), []float64{200.0 / 32768}},
	{"float32 extensible stereo", riffWAVE(chunk("fmt ", extensibleBody(waveIEEEFloat, 2, 44100, 32)),
		chunk("fact", []byte{1, 0, 0, 0}), chunk("data", le32fs(0.25, 0.75, -1, 1))), []float64{0.5, 0}},
	{"float64 unknown size (ffmpeg pipe)", riffWAVE(chunk("fmt ", extensibleBody(waveIEEEFloat, 1, 48000, 64)),
		sizedChunk("data", dataSizeUnknownFFmpeg, le64fs(0.1, -0.2))), []float64{0.1, -0.2}},
	{"pcm24 unknown size (sox pipe)", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 8000, 24)),
		sizedChunk("data", dataSizeUnknownSox, []byte{0, 0, 0x80, 0xff, 0xff, 0x7f})), []float64{-1, 8388607.0 / 8388608}},
	{"pcm32 extensible", riffWAVE(chunk("fmt ", extensibleBody(wavePCM, 1, 8000, 32)), chunk("data", []byte{0, 0, 0, 0x40})),
		[]float64{0.5}},
	{"empty data", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 8000, 16)), chunk("data", nil)), nil},
}

func TestWAVValid(t *testing.T) {
	for _, tt := range validWAVs {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewWAV(bytes.NewReader(tt.file), "x.wav")
			require.NoError(t, err)
			got, err := readAll(t, s, 2, 1)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "seekable")

			// The same from a pipe: no Seek, short reads.
			ws, err := decodeWAV(io.MultiReader(bytes.NewReader(tt.file)), "x.wav", -1)
			require.NoError(t, err)
			got, err = readAll(t, ws, 3, 2)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "stream")
		})
	}
}

func TestWAVBadInputs(t *testing.T) {
	pcm16 := chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16))
	kilobyte := make([]byte, 1000)
	badAlign := fmtBody(wavePCM, 1, 16000, 16)
	badAlign[12] = 3
	tests := []struct {
		name string
		file []byte
		err  string
	}{
		{"text file", []byte("this is not audio\n"), "ffmpeg could not decode it"},
		{"truncated data", riffWAVE(pcm16, sizedChunk("data", 2000, kilobyte)),
			"truncated WAV: the data chunk declares 2000 bytes, 1000 are present"},
		{"header claiming 4 GB", riffWAVE(pcm16, sizedChunk("data", 0xFFFFFF00, kilobyte)),
			"truncated WAV: the data chunk declares 4294967040 bytes, 1000 are present"},
		{"cut in fmt", riffWAVE(pcm16)[:24], "truncated WAV: fmt chunk cut short"},
		{"cut in chunk header", riffWAVE(pcm16, []byte("dat")), "truncated WAV: chunk header cut short before the data chunk"},
		{"no data chunk", riffWAVE(pcm16), "no data chunk"},
		{"no fmt chunk", riffWAVE(), "no fmt chunk"},
		{"data before fmt", riffWAVE(chunk("data", le16s(1)), pcm16), "data chunk before the fmt chunk"},
		{"zero channels", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 0, 16000, 16)), chunk("data", nil)), "invalid channel count 0"},
		{"sample rate 0", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 0, 16)), chunk("data", nil)), "sample rate 0 Hz is out of range"},
		// A few Hz would turn a small file into hours of audio; hundreds of MHz made the resampler divide
		// by zero.
		{"sample rate 2 Hz", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 2, 16)), chunk("data", kilobyte)),
			"sample rate 2 Hz is out of range: audio is sampled at 1000 Hz to 1000000 Hz"},
		{"sample rate 999 Hz", riffWAVE(chunk("fmt ", fmtBody(waveIEEEFloat, 2, 999, 32)), chunk("data", kilobyte[:8])),
			"sample rate 999 Hz is out of range"},
		{"sample rate 500 MHz", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 500_000_000, 16)), chunk("data", kilobyte)),
			"sample rate 500000000 Hz is out of range"},
		{"sample rate 2^32-1", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, math.MaxUint32, 16)), chunk("data", kilobyte)),
			"sample rate 4294967295 Hz is out of range"},
		{"extensible at 1000001 Hz", riffWAVE(chunk("fmt ", extensibleBody(wavePCM, 1, 1_000_001, 16)), chunk("data", kilobyte)),
			"sample rate 1000001 Hz is out of range"},
		// Through ffmpeg: its output's rate is checked, and ffmpeg, still writing megabytes to the pipe,
		// is stopped without its failure hiding the reason.
		{"AU at 7 Hz", sunAU(7, make([]byte, 1<<20)), "sample rate 7 Hz is out of range"},
		{"AU at 2 MHz", sunAU(2_000_000, make([]byte, 1<<20)), "sample rate 2000000 Hz is out of range"},
		{"short fmt", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16)[:12]), chunk("data", nil)),
			"fmt chunk of 12 bytes"},
		{"block align", riffWAVE(chunk("fmt ", badAlign), chunk("data", nil)),
			"block align 3, want 2 for 1 channel(s) of 2 bytes"},
		{"huge fmt", riffWAVE(sizedChunk("fmt ", 1<<30, fmtBody(wavePCM, 1, 16000, 16))), "fmt chunk of 1073741824 bytes"},
		{"partial frame", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 2, 16000, 16)), chunk("data", le16s(1, 2, 3))),
			"data chunk of 6 bytes is not a whole number of 4-byte frames"},
		{"stream ends within a frame", riffWAVE(chunk("fmt ", fmtBody(wavePCM, 2, 16000, 16)),
			sizedChunk("data", dataSizeUnknownFFmpeg, []byte{1, 2, 3, 4, 5})),
			"truncated WAV: the data ends within a frame"},
		{"NaN", riffWAVE(chunk("fmt ", fmtBody(waveIEEEFloat, 1, 16000, 32)), chunk("data", le32fs(0, 1, 0.5, float32(math.NaN())))),
			"sample 3 is NaN"},
		{"Inf in float64 stereo", riffWAVE(chunk("fmt ", fmtBody(waveIEEEFloat, 2, 16000, 64)), chunk("data", le64fs(0, 1, 0, math.Inf(1)))),
			"sample 1 is +Inf"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".wav")
			require.NoError(t, os.WriteFile(path, tt.file, 0o644))
			s, err := Open(path)
			if err == nil {
				_, err = readAll(t, s, 1000, 1)
			}
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), "decode "+path+": ")
			assert.Contains(t, err.Error(), tt.err)
			// A rate out of range is a readable header refused; everything else is broken data.
			var format *FormatError
			var unsupported *UnsupportedError
			if strings.Contains(tt.err, "sample rate") {
				assert.ErrorAs(t, err, &unsupported)
			} else {
				assert.ErrorAs(t, err, &format)
			}
		})
	}
}

// NewWAV itself (no ffmpeg fallback) names the encodings it leaves to ffmpeg.
func TestWAVUnsupportedEncoding(t *testing.T) {
	mp3 := riffWAVE(chunk("fmt ", fmtBody(0x55, 1, 22050, 0)), chunk("data", []byte{0xff, 0xfb, 0x90, 0x64}))
	_, err := NewWAV(bytes.NewReader(mp3), "mp3.wav")
	assert.EqualError(t, err, "decode mp3.wav: unsupported WAV encoding: format tag 0x0055 with 0-bit samples")
	assert.ErrorIs(t, err, errUnsupportedEncoding)
	var unsupported *UnsupportedError
	if assert.ErrorAs(t, err, &unsupported) {
		assert.Equal(t, "mp3.wav", unsupported.Name)
	}

	half := riffWAVE(chunk("fmt ", fmtBody(waveIEEEFloat, 1, 16000, 16)), chunk("data", nil))
	_, err = NewWAV(bytes.NewReader(half), "half.wav")
	assert.EqualError(t, err, "decode half.wav: unsupported WAV encoding: format tag 0x0003 with 16-bit samples")

	unknownGUID := extensibleBody(wavePCM, 1, 8000, 16)
	unknownGUID[30] ^= 0xff
	_, err = NewWAV(bytes.NewReader(riffWAVE(chunk("fmt ", unknownGUID), chunk("data", nil))), "guid.wav")
	assert.EqualError(t, err, "decode guid.wav: unsupported WAV encoding: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format")
}

// A header claiming 4 GB of data on a stream that can't be measured up front fails at its real end,
// without allocating for the claim.
func TestWAVHugeClaimOnStream(t *testing.T) {
	file := riffWAVE(chunk("fmt ", fmtBody(wavePCM, 2, 16000, 16)), sizedChunk("data", 0xFFFFFFF0, make([]byte, 40000)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := decodeWAV(io.MultiReader(bytes.NewReader(file)), "pipe.wav", -1)
	require.NoError(t, err)
	got, err := readAll(t, s, 1<<16, 1)
	runtime.ReadMemStats(&after)
	assert.Len(t, got, 10000)
	assert.EqualError(t, err, "decode pipe.wav: truncated WAV: the data chunk declares 4294967280 bytes, 40000 are present")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "bytes allocated")
}

func TestWAVChunkedReadsEqualWholeRead(t *testing.T) {
	var data []byte
	for i := range 50000 {
		data = append(data, le16s(int16(i*7919), int16(-i*104729))...)
	}
	file := riffWAVE(chunk("fmt ", fmtBody(wavePCM, 2, 44100, 16)), chunk("data", data))
	read := func(maxRead int) []float64 {
		s, err := NewWAV(bytes.NewReader(file), "x.wav")
		require.NoError(t, err)
		got, err := readAll(t, s, maxRead, uint64(maxRead))
		require.NoError(t, err)
		return got
	}
	whole := read(1 << 20)
	require.Len(t, whole, 50000)
	assert.Equal(t, whole, read(7))
	assert.Equal(t, whole, read(4000))
}

// A read failing within the header (a network error, a cancelled stream) is that failure, wrapped;
// the input ending there is a broken file.
func TestWAVHeaderReadErrors(t *testing.T) {
	errNet := errors.New("connection reset by peer (simulated)")
	file := riffWAVE(chunk("LIST", []byte("INFOjunk")), chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16)), chunk("data", le16s(1, 2, 3)))
	opens := []struct {
		name string
		open func(t *testing.T, r io.Reader) (Source, error)
	}{
		{"pipe", func(t *testing.T, r io.Reader) (Source, error) {
			s, err := decodeWAV(r, "net.wav", -1)
			if err != nil {
				return nil, err // not a nil *wavSource in a Source
			}
			return s, nil
		}},
		{"OpenReader", func(t *testing.T, r io.Reader) (Source, error) { return OpenReader(t.Context(), r, "net.wav") }},
	}
	for _, c := range []struct {
		name string
		cut  int
	}{
		{"in the RIFF header", 6},
		{"in a chunk header", 16},
		{"in a chunk before fmt", 24},
		{"in the fmt chunk header", 30},
		{"in the fmt chunk", 40},
		{"before the data chunk", 52},
		{"in the data chunk header", 56},
		{"in the data", 62},
	} {
		for _, o := range opens {
			t.Run(c.name+" "+o.name, func(t *testing.T) {
				read := func(r io.Reader) error {
					s, err := o.open(t, r)
					if err == nil {
						_, err = readAll(t, s, 100, 1)
					}
					return err
				}
				var format *FormatError
				err := read(io.MultiReader(bytes.NewReader(file[:c.cut]), iotest.ErrReader(errNet)))
				assert.ErrorIs(t, err, errNet)
				assert.False(t, errors.As(err, &format), "%v is a *FormatError", err)
				assert.ErrorContains(t, err, "decode net.wav: ")

				err = read(bytes.NewReader(file[:c.cut]))
				assert.ErrorAs(t, err, &format, "the input ends")
			})
		}
	}
}
