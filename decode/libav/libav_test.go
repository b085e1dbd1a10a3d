package libav

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
)

// The test binary is the workers' program: files named crash* make a worker crash, hang* make it hang.
func TestMain(m *testing.M) {
	testHookFile = func(path string) {
		switch base := filepath.Base(path); {
		case strings.HasPrefix(base, "crash"):
			panic("crashing on " + base)
		case strings.HasPrefix(base, "hang"):
			time.Sleep(time.Hour)
		}
	}
	WorkerMain()
	os.Exit(m.Run())
}

// makeAudio has ffmpeg write a file named name in dir from a 1.5 s stereo test signal (two tones and
// noise, so that no codec sees silence), with args as output options.
func makeAudio(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	return ffmpeg(t, filepath.Join(dir, name), append([]string{
		"-f", "lavfi", "-i", "sine=frequency=441:duration=1.5:sample_rate=44100",
		"-f", "lavfi", "-i", "anoisesrc=duration=1.5:sample_rate=44100:amplitude=0.2:seed=7",
		"-filter_complex", "[0][1]amerge=inputs=2"}, args...)...)
}

// ffmpeg runs the ffmpeg command with args to write path.
func ffmpeg(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), path)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return path
}

// ffmpegWAV is what the ffmpeg command decode.NewFFmpeg runs writes for path.
func ffmpegWAV(t *testing.T, path string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", "file:"+path,
		"-map", "0:a:0", "-c:a", "pcm_f64le", "-f", "wav", "pipe:1")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s", stderr.String())
	return out
}

// wavFields are the channel count, the rate and the data of a float64 WAV stream whose data runs to
// its end.
func wavFields(t *testing.T, b []byte) (channels, rate int, data []byte) {
	t.Helper()
	le := binary.LittleEndian
	require.Equal(t, "WAVE", string(b[8:12]))
	for b = b[12:]; len(b) >= 8; {
		id, size := string(b[:4]), int(le.Uint32(b[4:]))
		switch id {
		case "fmt ":
			channels, rate = int(le.Uint16(b[10:])), int(le.Uint32(b[12:]))
			assert.Equal(t, 64, int(le.Uint16(b[22:])), "bits")
		case "data":
			return channels, rate, b[8:]
		}
		b = b[8+size+size%2:]
	}
	t.Fatal("no data chunk")
	return
}

func newPool(t *testing.T) *Pool {
	t.Helper()
	p, err := NewPool(Options{})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func decodeAll(t *testing.T, p *Pool, ctx context.Context, path string) ([]byte, error) {
	t.Helper()
	r, err := p.Decode(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Every format gives the ffmpeg command's samples, bit for bit, on every channel, at its rate and
// channel count: each of the decoders' native sample formats is converted as ffmpeg converts it.
func TestSamplesMatchFFmpeg(t *testing.T) {
	dir := t.TempDir()
	junk := makeAudio(t, dir, "junk-src.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
	b, err := os.ReadFile(junk)
	require.NoError(t, err)
	junkFirst := filepath.Join(dir, "junk-first.mp3") // a frame's worth of garbage before the audio
	require.NoError(t, os.WriteFile(junkFirst, append(bytes.Repeat([]byte{0xff, 0xfb, 0x12, 0x34}, 100), b...), 0o644))
	p := newPool(t)
	for _, c := range []struct {
		name string
		path string
	}{
		{"FLAC 16-bit (s16)", makeAudio(t, dir, "16.flac", "-c:a", "flac", "-sample_fmt", "s16")},
		{"FLAC 24-bit (s32)", makeAudio(t, dir, "24.flac", "-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24")},
		{"FLAC 8 kHz mono", makeAudio(t, dir, "mono.flac", "-ac", "1", "-ar", "8000", "-c:a", "flac")},
		{"MP3 CBR, ID3v2 (fltp)", makeAudio(t, dir, "cbr.mp3", "-c:a", "libmp3lame", "-b:a", "128k", "-metadata", "title=t")},
		{"MP3 VBR, ID3v2 and v1", makeAudio(t, dir, "vbr.mp3", "-c:a", "libmp3lame", "-q:a", "4", "-metadata", "title=t", "-write_id3v1", "1")},
		{"MP3 after a junk frame", junkFirst},
		{"Ogg Vorbis (fltp)", makeAudio(t, dir, "a.ogg", "-c:a", "libvorbis")},
		{"Ogg Opus (flt)", makeAudio(t, dir, "a.opus", "-c:a", "libopus", "-ar", "48000")},
		{"AAC in M4A (fltp)", makeAudio(t, dir, "a.m4a", "-c:a", "aac")},
		{"WAV u8", makeAudio(t, dir, "u8.wav", "-c:a", "pcm_u8")},
		{"WAV s16", makeAudio(t, dir, "s16.wav", "-c:a", "pcm_s16le")},
		{"WAV s24 (s32)", makeAudio(t, dir, "s24.wav", "-c:a", "pcm_s24le")},
		{"WAV s32", makeAudio(t, dir, "s32.wav", "-c:a", "pcm_s32le")},
		{"WAV s64", makeAudio(t, dir, "s64.wav", "-c:a", "pcm_s64le")},
		{"WAV f32 (flt)", makeAudio(t, dir, "f32.wav", "-c:a", "pcm_f32le")},
		{"WAV f64 (dbl)", makeAudio(t, dir, "f64.wav", "-c:a", "pcm_f64le")},
		{"WAV 6 channels (extensible)", makeAudio(t, dir, "6ch.wav", "-ac", "6", "-c:a", "pcm_s16le")},
		{"WAV ADPCM MS", makeAudio(t, dir, "adpcm.wav", "-c:a", "adpcm_ms")},
		{"WAV mu-law", makeAudio(t, dir, "mulaw.wav", "-c:a", "pcm_mulaw")},
		{"WAV A-law", makeAudio(t, dir, "alaw.wav", "-c:a", "pcm_alaw")},
		{"MP3 in WAV", makeAudio(t, dir, "mp3.wav", "-c:a", "libmp3lame")},
		{"AIFF s16 big-endian", makeAudio(t, dir, "a.aiff", "-c:a", "pcm_s16be")},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantChannels, wantRate, want := wavFields(t, ffmpegWAV(t, c.path))
			got, err := decodeAll(t, p, t.Context(), c.path)
			require.NoError(t, err)
			channels, rate, data := wavFields(t, got)
			assert.Equal(t, wantChannels, channels, "channels")
			assert.Equal(t, wantRate, rate, "rate")
			require.Greater(t, len(want), 8*1000, "the command decodes audio")
			require.Equal(t, len(want), len(data), "bytes of samples")
			assert.True(t, bytes.Equal(want, data), "samples differ")
		})
	}
}

// A worker that crashes or hangs fails its file alone, with an error naming the file; the next file gets
// a new worker. No worker outlives the pool.
func TestCrashOrHangFailsThatFileAlone(t *testing.T) {
	dir := t.TempDir()
	good := makeAudio(t, dir, "good.flac", "-c:a", "flac")
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	crash, hang := filepath.Join(dir, "crash.flac"), filepath.Join(dir, "hang.flac")
	require.NoError(t, os.WriteFile(crash, b, 0o644))
	require.NoError(t, os.WriteFile(hang, b, 0o644))

	p := newPool(t)
	want, err := decodeAll(t, p, t.Context(), good)
	require.NoError(t, err)
	again := func() {
		t.Helper()
		got, err := decodeAll(t, p, t.Context(), good)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}

	_, err = decodeAll(t, p, t.Context(), crash)
	var format *decode.FormatError
	require.ErrorAs(t, err, &format)
	assert.Equal(t, crash, format.Name)
	assert.EqualError(t, err, "decode "+crash+": the decoder crashed on it (exit status 2): panic: crashing on crash.flac")
	again()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = decodeAll(t, p, ctx, hang)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualError(t, err, "decode "+hang+": decoding stopped: context deadline exceeded")
	assert.Less(t, time.Since(start), 5*time.Second)
	again()

	p.mu.Lock()
	require.Len(t, p.idle, 1, "one worker serves one file at a time")
	pid := p.idle[0].cmd.Process.Pid
	p.mu.Unlock()
	require.NoError(t, p.Close())
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the worker has exited and been waited for")
}

// A worker that sends nothing for stallLimit while its output is awaited, before its header or
// mid-stream, is killed and fails its file alone, saying so; one whose output is not read for longer
// is not.
func TestStall(t *testing.T) {
	defer func(limit time.Duration) { stallLimit = limit }(stallLimit)
	stallLimit = 500 * time.Millisecond
	dir := t.TempDir()
	long := ffmpeg(t, filepath.Join(dir, "long.flac"), "-f", "lavfi", "-i", "sine=duration=60:sample_rate=8000")
	b, err := os.ReadFile(long)
	require.NoError(t, err)
	hang := filepath.Join(dir, "hang.flac")
	require.NoError(t, os.WriteFile(hang, b, 0o644))
	p := newPool(t)
	want, err := decodeAll(t, p, t.Context(), long)
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		path  string
		then  func(*stream) // once the stream's header has come
		stall bool
	}{
		{"hangs before its header", hang, nil, true},
		{"stops mid-stream", long, func(s *stream) { require.NoError(t, s.w.cmd.Process.Signal(syscall.SIGSTOP)) }, true},
		{"not read for longer than the limit", long, func(*stream) { time.Sleep(3 * stallLimit) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // not forever, before the fix
			defer cancel()
			start := time.Now()
			got, err := func() ([]byte, error) {
				r, err := p.Decode(ctx, c.path)
				if err != nil {
					return nil, err
				}
				defer r.Close()
				c.then(r.(*stream))
				return io.ReadAll(r)
			}()
			if !c.stall {
				require.NoError(t, err)
				assert.Equal(t, want, got)
				return
			}
			var format *decode.FormatError
			require.ErrorAs(t, err, &format)
			assert.EqualError(t, err, "decode "+c.path+": the decoder produced nothing for 500ms: killed")
			assert.Less(t, time.Since(start), 5*time.Second)
			got, err = decodeAll(t, p, t.Context(), long)
			require.NoError(t, err, "the next file")
			assert.Equal(t, want, got)
		})
	}
}

// What the libraries cannot decode is a *decode.FormatError naming the file and saying why.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.mp3")
	require.NoError(t, os.WriteFile(text, []byte("this is not audio\n"), 0o644))
	image := ffmpeg(t, filepath.Join(dir, "image.png"), "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1")
	p := newPool(t)
	for _, c := range []struct{ path, err string }{
		{text, "ffmpeg could not decode it: opening it: "}, // then what libavformat says
		{image, "ffmpeg could not decode it: no audio stream"},
		{filepath.Join(dir, "missing.mp3"), "ffmpeg could not decode it: opening it: No such file or directory"},
	} {
		_, err := decodeAll(t, p, t.Context(), c.path)
		var format *decode.FormatError
		require.ErrorAs(t, err, &format, c.path)
		assert.Equal(t, c.path, format.Name)
		assert.True(t, strings.HasPrefix(err.Error(), "decode "+c.path+": "+c.err), err.Error())
	}
	p.mu.Lock()
	assert.Len(t, p.idle, 1, "a file that fails leaves its worker serving")
	p.mu.Unlock()
}

// A file of zero samples is no audio, as through the ffmpeg command (decode's TestFFmpegZeroSamples),
// Ogg and Opus ones included, which libavformat refuses to open; a file named .ogg that is not one, or
// an Ogg file cut short before its audio, still fails.
func TestZeroSamples(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t)
	silence := []string{"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0"}
	opus, err := os.ReadFile(ffmpeg(t, filepath.Join(dir, "src.opus"), append(silence, "-c:a", "libopus")...))
	require.NoError(t, err)
	ogg, err := os.ReadFile(makeAudio(t, dir, "a.ogg", "-c:a", "libvorbis"))
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		data  []byte // nil: the file ffmpeg writes from silence with codec
		codec string
		err   string
	}{
		{name: "empty.ogg", codec: "libvorbis"},
		{name: "empty.opus", codec: "libopus"},
		{name: "empty.flac", codec: "flac"},
		{name: "fake.ogg", data: []byte("this is not an ogg file at all"), err: "ffmpeg could not decode it"},
		{name: "capture-pattern.ogg", data: []byte("OggS"), err: "ffmpeg could not decode it: opening it: End of file"},
		{name: "first-200-bytes.ogg", data: ogg[:200], err: "ffmpeg could not decode it: opening it: End of file"},
		// Its first page, the ID header alone: a page header of 27 bytes, 1 segment, 19 bytes.
		{name: "id-header.opus", data: opus[:27+1+19], err: "ffmpeg could not decode it: opening it: End of file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if c.data == nil {
				ffmpeg(t, path, append(silence, "-c:a", c.codec)...)
			} else {
				require.NoError(t, os.WriteFile(path, c.data, 0o644))
			}
			b, err := decodeAll(t, p, t.Context(), path)
			if c.err != "" {
				assert.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			_, _, data := wavFields(t, b)
			assert.Empty(t, data)
		})
	}
}

// Through decode.Open, the libraries' samples are the ffmpeg command's; Split and Limit work on them;
// closing a source before its end, or cancelling its context, stops its worker, and the next file
// decodes.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	mp3 := makeAudio(t, dir, "a.mp3", "-c:a", "libmp3lame")
	long := ffmpeg(t, filepath.Join(dir, "long.flac"), "-f", "lavfi", "-i", "sine=duration=60:sample_rate=8000")
	p := newPool(t)
	read := func(t *testing.T, s decode.Source) ([]float64, error) {
		var all []float64
		buf := make([]float64, 4096)
		for {
			n, err := s.Read(buf)
			all = append(all, buf[:n]...)
			if err == io.EOF {
				return all, nil
			}
			if err != nil {
				return all, err
			}
		}
	}
	command, err := decode.Open(mp3)
	require.NoError(t, err)
	want, err := read(t, command)
	require.NoError(t, err)
	command.Close()

	decode.SetDecoder(p)
	t.Cleanup(func() { decode.SetDecoder(nil) })
	s, err := decode.Open(mp3)
	require.NoError(t, err)
	got, err := read(t, s)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, want, got)

	s, err = decode.Open(mp3)
	require.NoError(t, err)
	channels, err := decode.Split(s)
	require.NoError(t, err)
	assert.Len(t, channels, 2)
	for _, c := range channels {
		require.NoError(t, c.Close())
	}
	require.NoError(t, s.Close())

	s, err = decode.Open(long)
	require.NoError(t, err)
	_, err = read(t, decode.Limit(s, 10))
	assert.ErrorIs(t, err, decode.ErrTooLong)
	require.NoError(t, s.Close())

	ctx, cancel := context.WithCancel(t.Context())
	s, err = decode.OpenContext(ctx, long)
	require.NoError(t, err)
	buf := make([]float64, 1000)
	_, err = s.Read(buf)
	require.NoError(t, err)
	cancel()
	_, err = read(t, s)
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())

	s, err = decode.Open(mp3)
	require.NoError(t, err)
	got, err = read(t, s)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, s.Close())
}

// The cost of a short file through a worker, start to end of its samples: the per-file overhead the
// pool adds to the decoding itself (a worker is started once, before the timing). For comparison,
// BenchmarkFFmpegCommand runs the ffmpeg command per file, as decode.NewFFmpeg does.
func BenchmarkPool(b *testing.B) {
	path := benchFile(b)
	p, err := NewPool(Options{})
	require.NoError(b, err)
	defer p.Close()
	for b.Loop() {
		r, err := p.Decode(b.Context(), path)
		require.NoError(b, err)
		_, err = io.Copy(io.Discard, r)
		require.NoError(b, err)
		r.Close()
	}
}

func BenchmarkFFmpegCommand(b *testing.B) {
	path := benchFile(b)
	for b.Loop() {
		s, err := decode.NewFFmpeg(b.Context(), path)
		require.NoError(b, err)
		buf := make([]float64, 4096)
		for err == nil {
			_, err = s.Read(buf)
		}
		require.ErrorIs(b, err, io.EOF)
		s.Close()
	}
}

// benchFile is 1 s of 16 kHz mono FLAC, as short clips of a corpus are.
func benchFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "1s.flac")
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=duration=1:sample_rate=16000:amplitude=0.3", path).CombinedOutput()
	require.NoError(b, err, "%s", out)
	return path
}

// A worker program of another protocol (a stale vggish-decoder) refuses to serve, saying why.
func TestWorkerOfAnotherProtocol(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), workerEnv+"=0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), `asked for decoding protocol "0", this program speaks "1": rebuild it`)
}

// Files decoded at once take a worker each, and get their own samples; the workers are kept for later.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		makeAudio(t, dir, "a.flac", "-c:a", "flac"),
		makeAudio(t, dir, "b.mp3", "-c:a", "libmp3lame"),
		makeAudio(t, dir, "c.ogg", "-c:a", "libvorbis"),
	}
	p := newPool(t)
	want := map[string][]byte{}
	for _, f := range files {
		b, err := decodeAll(t, p, t.Context(), f)
		require.NoError(t, err)
		want[f] = b
	}
	const goroutines = 4
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			for i := range 3 * len(files) {
				f := files[(g+i)%len(files)]
				r, err := p.Decode(t.Context(), f)
				if err == nil {
					var got []byte
					got, err = io.ReadAll(r)
					r.Close()
					if err == nil && !bytes.Equal(got, want[f]) {
						err = fmt.Errorf("%s: other samples", f)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range goroutines {
		require.NoError(t, <-errs)
	}
	p.mu.Lock()
	assert.LessOrEqual(t, len(p.idle), goroutines)
	assert.Positive(t, len(p.idle))
	p.mu.Unlock()
}
