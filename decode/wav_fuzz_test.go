package decode

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// FuzzWAV feeds arbitrary bytes to the WAV reader, seekable and as a stream: it must not panic, and its
// errors must name the file.
func FuzzWAV(f *testing.F) {
	for _, v := range validWAVs {
		f.Add(v.file)
	}
	pcm16 := chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16))
	f.Add(riffWAVE(pcm16, sizedChunk("data", 0xFFFFFF00, make([]byte, 64))))
	f.Add(riffWAVE(chunk("fmt ", fmtBody(wavePCM, 65535, 16000, 32)), chunk("data", make([]byte, 64))))
	f.Add(riffWAVE(chunk("fmt ", fmtBody(waveIEEEFloat, 1, 16000, 32)), chunk("data", le32fs(1, float32(math.NaN())))))
	f.Add(riffWAVE(chunk("fmt ", fmtBody(0x55, 2, 44100, 0)), chunk("data", []byte{0xff, 0xfb})))
	f.Add(riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 2, 16)), chunk("data", make([]byte, 64))))
	f.Add(riffWAVE(chunk("fmt ", extensibleBody(waveIEEEFloat, 2, 800_000_000, 64)), chunk("data", make([]byte, 64))))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Add([]byte("not audio"))

	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(s Source, err error) {
			p := make([]float64, 7)
			for err == nil {
				if s.SampleRate() < MinSampleRate || s.SampleRate() > MaxSampleRate {
					t.Fatalf("sample rate %d", s.SampleRate())
				}
				_, err = s.Read(p)
			}
			if err == io.EOF {
				return
			}
			if !strings.HasPrefix(err.Error(), "decode fuzz.wav: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			var format *FormatError
			var unsupported *UnsupportedError
			if !errors.As(err, &format) && !errors.As(err, &unsupported) {
				t.Fatalf("error is neither a FormatError nor an UnsupportedError: %v", err)
			}
		}
		check(NewWAV(bytes.NewReader(data), "fuzz.wav"))
		ws, err := decodeWAV(io.MultiReader(bytes.NewReader(data)), "fuzz.wav", -1)
		if err != nil {
			check(nil, err)
		} else {
			check(ws, nil)
		}
	})
}
