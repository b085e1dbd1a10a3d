package decode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
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

// ffmpegSays is the first line ffmpeg prints when it fails to decode path as NewFFmpeg asks it to,
// without the log context's "[name @ 0xADDR] " prefix, whose address changes from run to run.
func ffmpegSays(t *testing.T, path string) string {
	t.Helper()
	var stderr strings.Builder
	formats, err := ffmpegFormats()
	require.NoError(t, err)
	cmd := exec.Command("ffmpeg", ffmpegArgs("file:"+path, formats)...)
	cmd.Stderr = &stderr
	require.Error(t, cmd.Run(), "ffmpeg decodes %s", path)
	line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
	if _, msg, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
		line = msg
	}
	require.NotEmpty(t, strings.TrimSpace(line), "ffmpeg says why it failed")
	return strings.TrimSpace(line)
}

// A failure names the file, says that ffmpeg could not decode it and quotes ffmpeg's own first line,
// whatever ffmpeg's version words it as.
// A file that would make ffmpeg read others (a concat script under an audio name) is refused at once:
// it never passes another file's audio for its own, nor blocks on a named pipe it lists.
func TestFFmpegNestedInputsAreRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Rename(makeAudio(t, "real.wav", "-f", "lavfi", "-i", "sine=duration=1"), filepath.Join(dir, "real.wav")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.raw"), 0o600))
	for _, target := range []string{"real.wav", "pipe.raw"} {
		path := filepath.Join(dir, target+".mp3")
		require.NoError(t, os.WriteFile(path, []byte("ffconcat version 1.0\nfile "+target+"\n"), 0o644))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, err := NewFFmpeg(ctx, path)
		cancel()
		var format *FormatError
		require.ErrorAs(t, err, &format, target)
		assert.ErrorContains(t, err, "it names other files to read", target)
	}
}

func TestFFmpegErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.mp3")
	require.NoError(t, os.WriteFile(text, []byte("this is not audio\n"), 0o644))
	for _, c := range []struct{ name, path string }{
		{"no audio stream", makeAudio(t, "image.png", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1")},
		{"not audio", text},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewFFmpeg(t.Context(), c.path)
			require.Error(t, err)
			assert.ErrorContains(t, err, "decode "+c.path+": ffmpeg could not decode it (exit status ")
			var format *FormatError
			assert.ErrorAs(t, err, &format)
			assert.ErrorContains(t, err, ffmpegSays(t, c.path))
			assert.NotRegexp(t, ` @ 0x[0-9a-f]+\]`, err.Error(), "no log context address")
			assert.NotContains(t, err.Error(), "trailing '?'", "ffmpeg's advice on vggish's own -map")
		})
	}

	missing := filepath.Join(dir, "missing.mp3")
	_, err := NewFFmpeg(t.Context(), missing)
	assert.EqualError(t, err, "decode "+missing+": no such file or directory", "refused before ffmpeg runs")
	assert.ErrorIs(t, err, os.ErrNotExist)

	t.Setenv("PATH", t.TempDir())
	_, err = NewFFmpeg(t.Context(), text)
	assert.ErrorContains(t, err, "decode "+text+": decoding this file needs ffmpeg, which is not in PATH: install ffmpeg")
	assert.ErrorIs(t, err, exec.ErrNotFound)
	var unsupported *UnsupportedError
	assert.ErrorAs(t, err, &unsupported)
}

func TestFFmpegErrorSummary(t *testing.T) {
	long := strings.Repeat("x", 100)
	many := "first\n"
	for i := range tailSize / len(long) * 2 {
		many += fmt.Sprintf("%d %s\n", i, long)
	}
	for _, c := range []struct{ name, stderr, want string }{
		{"nothing", "", "no message"},
		{"one line", "\n  cause\n\n", "cause"},
		{"three lines", "cause\nthen\nlast\n", "cause | then | last"},
		{"more lines", "[in#0 @ 0x55d0c4a0b2c0] cause\na\nb\nc\nlast", "[in#0] cause | … | c | last"},
		{"no audio stream: ffmpeg's hint on its own map left out",
			"[out#0/wav @ 0x5] Stream map '0:a:0' matches no streams.\nTo ignore this, add a trailing '?' to the map.\nError opening output file pipe:1.\n",
			"no audio stream ([out#0/wav] Stream map '0:a:0' matches no streams.) | Error opening output file pipe:1."},
		{"past the tail", many, fmt.Sprintf("first | … | %d %s | %d %s", tailSize/len(long)*2-2, long, tailSize/len(long)*2-1, long)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b tailBuffer
			for chunk := range slices.Chunk([]byte(c.stderr), 7) {
				_, err := b.Write(chunk)
				require.NoError(t, err)
			}
			assert.Equal(t, c.want, b.summary())
		})
	}
}

// Inputs that would block or never end are refused before ffmpeg opens them.
func TestFFmpegNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "stalled.wav")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		_, err := NewFFmpeg(t.Context(), path)
		assert.ErrorContains(t, err, "decode "+path+": not a regular file: it is a")
		var unsupported *UnsupportedError
		assert.ErrorAs(t, err, &unsupported)
	}
}

// The parent-death signal is tied to the thread that starts ffmpeg: a caller whose goroutine ends
// locked to its thread (which then ends) must not take ffmpeg with it.
func TestFFmpegOutlivesCallersThread(t *testing.T) {
	long := makeAudio(t, "long.flac", "-f", "lavfi", "-i", "sine=duration=20:sample_rate=8000")
	var s Source
	var err error
	onEndingThread(t, func() { s, err = NewFFmpeg(t.Context(), long) })
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	got, err := readAll(t, s, 1<<14, 1)
	require.NoError(t, err)
	assert.Len(t, got, 20*8000)
}

// onEndingThread runs fn on a goroutine locked to an OS thread that ends with it. The main thread is
// never ended (the runtime parks it instead), so goroutines that land on it hold it until the test ends.
func onEndingThread(t *testing.T, fn func()) {
	release := make(chan struct{})
	defer close(release)
	for {
		ran := make(chan bool)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			if syscall.Gettid() == os.Getpid() {
				ran <- false
				<-release
				return
			}
			fn()
			ran <- true
		}()
		if <-ran {
			return
		}
	}
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

// An Ogg or Opus file of zero samples (its headers only), which ffmpeg refuses to open ("End of
// file"), decodes to nothing, from a file or a stream, as a WAV or FLAC of zero samples does.
func TestFFmpegZeroSamples(t *testing.T) {
	silence := []string{"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0"}
	for _, f := range []struct{ name, codec string }{{"empty.ogg", "libvorbis"}, {"empty.opus", "libopus"}, {"empty.flac", "flac"}} {
		t.Run(f.name, func(t *testing.T) {
			path := makeAudio(t, f.name, append(silence, "-c:a", f.codec)...)
			s, err := Open(path)
			require.NoError(t, err)
			got, err := readAll(t, s, 4096, 1)
			require.NoError(t, err)
			assert.Empty(t, got)
			require.NoError(t, s.Close())

			b, err := os.ReadFile(path)
			require.NoError(t, err)
			r, err := OpenReader(context.Background(), strings.NewReader(string(b)), "-")
			require.NoError(t, err)
			got, err = readAll(t, r, 4096, 1)
			require.NoError(t, err)
			assert.Empty(t, got)
			require.NoError(t, r.Close())
		})
	}
	// Cut short, or garbage after "OggS", an Ogg stream is malformed, not empty: as a file, and read
	// from a stream (where only a stream that ended within the bytes kept can be a whole one).
	t.Run("cut short", func(t *testing.T) {
		path := makeAudio(t, "cut.ogg", append(silence, "-c:a", "libvorbis")...)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, cut := range [][]byte{[]byte("OggS"), b[:200], b[:len(b)-1]} {
			require.NoError(t, os.WriteFile(path, cut, 0o644))
			s, err := Open(path)
			if err == nil {
				_, err = readAll(t, s, 4096, 1)
				s.Close()
			}
			assert.ErrorContains(t, err, "ffmpeg could not decode it", "%d bytes, as a file", len(cut))
			r, err := OpenReader(context.Background(), bytes.NewReader(cut), "-")
			if err == nil {
				_, err = readAll(t, r, 4096, 1)
				r.Close()
			}
			assert.ErrorContains(t, err, "ffmpeg could not decode it", "%d bytes, as a stream", len(cut))
		}
	})
	t.Run("a file that is not audio still fails", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "noise.ogg")
		require.NoError(t, os.WriteFile(path, []byte("this is not an ogg file at all"), 0o644))
		_, err := Open(path)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ffmpeg could not decode it")
	})
}

// An input that ends as ffmpeg opens it reads so in ffmpeg 5's words and in ffmpeg 7's; other
// failures do not.
func TestOpenedAtEOF(t *testing.T) {
	for _, c := range []struct {
		summary string
		want    bool
	}{
		{"file:/a/empty.ogg: End of file", true},
		{"[in#0] Error opening input: End of file | Error opening input file file:/a/empty.ogg. | Error opening input files: End of file", true},
		{"file:/a/x.ogg: Invalid data found when processing input", false},
		{"[in#0] Error opening input: Invalid data found when processing input | … | Error opening input files: End of file", false},
	} {
		assert.Equal(t, c.want, openedAtEOF(c.summary), c.summary)
	}
}

// A stream ffmpeg decodes that fails to be read is that failure, wrapped, however far ffmpeg got:
// ffmpeg fails on what it was given, or decodes it and exits well.
func TestFFmpegStreamReadErrors(t *testing.T) {
	errNet := errors.New("connection reset by peer (simulated)")
	sine := []string{"-f", "lavfi", "-i", "sine=duration=10:sample_rate=22050"}
	mp3, err := os.ReadFile(makeAudio(t, "x.mp3", sine...))
	require.NoError(t, err)
	ogg, err := os.ReadFile(makeAudio(t, "x.ogg", append(sine, "-c:a", "libvorbis")...))
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"MP3 cut in its first frames", mp3[:1000]},
		{"MP3 cut halfway", mp3[:len(mp3)/2]},
		{"Ogg cut before its first audio packet", ogg[:200]}, // not an Ogg file of zero samples
		{"Ogg cut halfway", ogg[:len(ogg)/2]},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := OpenReader(t.Context(), io.MultiReader(bytes.NewReader(c.data), iotest.ErrReader(errNet)), "net.mp3")
			if err == nil {
				_, err = readAll(t, s, 4096, 1)
			}
			assert.ErrorIs(t, err, errNet)
			var format *FormatError
			assert.False(t, errors.As(err, &format), "%v is a *FormatError", err)
			assert.ErrorContains(t, err, "decode net.mp3: ")
		})
	}
}
