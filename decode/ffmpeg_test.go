package decode

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeAudio has ffmpeg write a file named name in a temporary directory.
func makeAudio(t *testing.T, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), path)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return path
}

// Lossy codecs decode to float: check the decoded sine, and that Open sends MP3-in-WAV (format tag 0x55)
// to ffmpeg.
func TestFFmpegLossy(t *testing.T) {
	sine := []string{"-f", "lavfi", "-i", "sine=frequency=441:duration=1:sample_rate=22050", "-af", "pan=stereo|c0=c0|c1=c0"}
	for _, f := range []struct{ name, codec string }{
		{"sine.mp3", "libmp3lame"}, {"sine.ogg", "libvorbis"}, {"mp3-in.wav", "libmp3lame"},
	} {
		t.Run(f.name, func(t *testing.T) {
			path := makeAudio(t, f.name, append(sine, "-c:a", f.codec)...)
			if filepath.Ext(path) == ".wav" {
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				require.Equal(t, uint16(0x55), binary.LittleEndian.Uint16(b[20:]), "format tag")
			}
			s, err := Open(path)
			require.NoError(t, err)
			_, native := s.(*wavSource)
			assert.False(t, native, "decoded by ffmpeg")
			assert.Equal(t, 22050, s.SampleRate())
			got, err := readAll(t, s, 4096, 1)
			require.NoError(t, err)
			assert.InDelta(t, 22050, len(got), 2500, "about one second (codecs pad)")
			peak := 0.0
			for _, v := range got {
				peak = math.Max(peak, math.Abs(v))
			}
			assert.InDelta(t, 0.125, peak, 0.01, "ffmpeg's sine has amplitude 1/8")
		})
	}
}

func TestFFmpegErrors(t *testing.T) {
	image := makeAudio(t, "image.png", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1")
	_, err := NewFFmpeg(t.Context(), image)
	assert.ErrorContains(t, err, "preprocess "+image+": ffmpeg failed (exit status 1): ")
	assert.ErrorContains(t, err, "matches no streams")

	missing := filepath.Join(t.TempDir(), "missing.mp3")
	_, err = NewFFmpeg(t.Context(), missing)
	assert.ErrorContains(t, err, "preprocess "+missing+": ffmpeg failed (exit status 1): ")
	assert.ErrorContains(t, err, "No such file or directory")

	t.Setenv("PATH", t.TempDir())
	_, err = NewFFmpeg(t.Context(), image)
	assert.ErrorContains(t, err, "preprocess "+image+": decoding this file needs ffmpeg, which is not in PATH: install ffmpeg")
	assert.ErrorIs(t, err, exec.ErrNotFound)
}

// An input that never arrives (a FIFO nobody writes) must not hang NewFFmpeg past cancellation.
func TestFFmpegCancelWhileStarting(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "stalled.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewFFmpeg(ctx, fifo)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "preprocess "+fifo+": ffmpeg stopped")
	t.Logf("NewFFmpeg returned %v after the deadline", time.Since(start)-300*time.Millisecond)
}

func TestFFmpegCancelAndCloseWhileReading(t *testing.T) {
	long := makeAudio(t, "long.flac", "-f", "lavfi", "-i", "sine=duration=120:sample_rate=8000")

	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewFFmpeg(ctx, long)
	require.NoError(t, err)
	p := make([]float64, 1000)
	_, err = s.Read(p)
	require.NoError(t, err)
	cancel()
	for err == nil {
		_, err = s.Read(p)
	}
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())

	s, err = NewFFmpeg(t.Context(), long)
	require.NoError(t, err)
	_, err = s.Read(p)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.NotNil(t, s.(*ffmpegSource).cmd.ProcessState, "ffmpeg has exited")
	_, err = os.Stat(long)
	require.NoError(t, err)
}
