package decode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onlyReader hides every method but Read (Seek included), as a pipe would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// A stream gives the samples of the same file opened by name: WAV natively (sizes known or the
// placeholder streaming writers leave), FLAC and MP3-in-WAV through ffmpeg fed from a pipe.
func TestOpenReader(t *testing.T) {
	sine := []string{"-f", "lavfi", "-i", "sine=frequency=441:duration=2:sample_rate=22050", "-af", "pan=stereo|c0=c0|c1=0.5*c0"}
	files := map[string]string{
		"pcm16.wav":  makeAudio(t, "pcm16.wav", append(sine, "-c:a", "pcm_s16le")...),
		"flac":       makeAudio(t, "x.flac", sine...),
		"mp3-in.wav": makeAudio(t, "mp3-in.wav", append(sine, "-c:a", "libmp3lame")...),
	}
	// ffmpeg writing to a pipe cannot seek back to fill in the sizes.
	piped, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-i", files["pcm16.wav"], "-f", "wav", "pipe:1").Output()
	require.NoError(t, err)
	files["unsized.wav"] = filepath.Join(t.TempDir(), "unsized.wav")
	require.NoError(t, os.WriteFile(files["unsized.wav"], piped, 0o644))
	require.Equal(t, uint32(dataSizeUnknownFFmpeg), binary.LittleEndian.Uint32(piped[len(piped)-2*2*44100-4:]), "ffmpeg's placeholder data size")

	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			s, err := Open(path)
			require.NoError(t, err)
			want, err := readAll(t, s, 4096, 1)
			require.NoError(t, err)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			s, err = OpenReader(t.Context(), onlyReader{f}, "-")
			require.NoError(t, err)
			_, native := s.(*streamSource).interleaved.(*wavSource)
			assert.Equal(t, name == "pcm16.wav" || name == "unsized.wav", native, "decoded natively")
			assert.Equal(t, 22050, s.SampleRate())
			got, err := readAll(t, s, 4096, 2)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}

	// A stream splits into its channels as a file does.
	for _, name := range []string{"pcm16.wav", "flac"} {
		f, err := os.Open(files[name])
		require.NoError(t, err)
		s, err := OpenReader(t.Context(), onlyReader{f}, "-")
		require.NoError(t, err)
		channels, err := Split(s)
		require.NoError(t, err, name)
		require.Len(t, channels, 2)
		file, err := Open(files[name])
		require.NoError(t, err)
		fileChannels, err := Split(file)
		require.NoError(t, err)
		for k := range channels { // the right channel is half the left
			got, err := readAll(t, channels[k], 4096, 3)
			require.NoError(t, err)
			want, err := readAll(t, fileChannels[k], 4096, 4)
			require.NoError(t, err)
			assert.Equal(t, want, got, "%s channel %d", name, k)
		}
		require.NoError(t, s.Close())
		require.NoError(t, file.Close())
		f.Close()
	}

	_, err = OpenReader(t.Context(), bytes.NewReader(nil), "-")
	assert.EqualError(t, err, "decode -: empty stream")
	_, err = OpenReader(t.Context(), bytes.NewReader([]byte("RIFF\x00\x00\x00\x00WAVEfmt ")), "-")
	assert.ErrorContains(t, err, "decode -: truncated WAV")
}

// A stream that stalls (a pipe whose writer neither writes nor closes) never holds up cancellation:
// while the format is found out, while reading the WAV header or the samples natively, and while
// ffmpeg waits for input. The error is the cancellation, not a broken file.
func TestOpenReaderStalled(t *testing.T) {
	wav := riffWAVE(chunk("fmt ", fmtBody(wavePCM, 1, 16000, 16)), sizedChunk("data", dataSizeUnknownFFmpeg, make([]byte, 3200)))
	tests := []struct {
		name   string
		prefix []byte
		open   bool // OpenReader returns before the stall
	}{
		{"nothing", nil, false},
		{"WAV cut in the fmt chunk", wav[:30], false},
		{"WAV cut before the data chunk", wav[:36], false},
		{"WAV header and some data", wav, true},
		{"not WAV: ffmpeg probing", []byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go pw.Write(tt.prefix)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(300*time.Millisecond, cancel)
			start := time.Now()
			s, err := OpenReader(ctx, pr, "-")
			if tt.open {
				require.NoError(t, err)
				p := make([]float64, 4096)
				for err == nil {
					_, err = s.Read(p)
				}
				assert.ErrorIs(t, err, context.Canceled)
				require.NoError(t, s.Close())
			} else {
				assert.ErrorIs(t, err, context.Canceled)
				var format *FormatError
				assert.False(t, errors.As(err, &format), "%v is a *FormatError", err)
			}
			assert.Less(t, time.Since(start), 3*time.Second, "returned after cancellation")
		})
	}

	// Close alone ends a Read waiting on the stream.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(wav)
	s, err := OpenReader(t.Context(), pr, "-")
	require.NoError(t, err)
	p := make([]float64, 1600)
	_, err = s.Read(p)
	require.NoError(t, err)
	time.AfterFunc(200*time.Millisecond, func() { s.Close() })
	for err == nil {
		_, err = s.Read(p)
	}
	assert.Error(t, err)
}
