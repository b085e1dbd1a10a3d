package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vggish-go/vggish/decode/internal/demuxers"
	"github.com/vggish-go/vggish/decode/internal/pipewav"
	"github.com/vggish-go/vggish/internal/child"
	"github.com/vggish-go/vggish/internal/regfile"
)

// ffmpegSource reads the WAV stream an ffmpeg process writes to a pipe.
type ffmpegSource struct {
	*wavSource
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	cmd    *exec.Cmd
	stdout *os.File
	stderr *tailBuffer
	input  *countingReader // ffmpeg's stdin, for a stream: nil for a file
	first  firstBytes      // the stream's first bytes
	exited chan error      // ffmpeg's exit, from the goroutine that started it

	waitOnce sync.Once
	waitErr  error
}

// NewFFmpeg returns a Source decoding the first audio stream of the file at path with ffmpeg, at the
// stream's own sample rate and channel count. path must be a regular file: anything else is an
// [*UnsupportedError], refused before ffmpeg opens it.
//
// ffmpeg converts the decoder's samples to float64 (pcm_f64le in a WAV stream on a pipe). That keeps the
// reference's numbers exactly: the reference (PyAV) takes the decoder's native format, and ffmpeg maps
// u8, s16 and s32 to float64 as (x - offset) / 2^(b-1), the same exact formula, and widens float32.
//
// Cancelling ctx, or Close, kills ffmpeg; on Linux so does the end of this process, however it ends
// (ffmpeg is started with a parent-death signal). ffmpeg failing is a [*FormatError] that names the
// file and quotes the first line ffmpeg printed and its last ones; a missing ffmpeg binary is an
// [*UnsupportedError].
func NewFFmpeg(ctx context.Context, path string) (Source, error) {
	if err := regfile.Require(path); err != nil {
		return nil, fileError(path, err)
	}
	return startFFmpeg(ctx, "file:"+path, nil, path)
}

// startFFmpeg runs ffmpeg on input (a "file:" URL, or "pipe:0" fed from stdin).
func startFFmpeg(ctx context.Context, input string, stdin io.Reader, name string) (*ffmpegSource, error) {
	var whitelist string
	if strings.HasPrefix(input, "file:") {
		var err error
		// ffmpeg missing is said as ffmpeg's start fails, below
		if whitelist, err = ffmpegFormats(); err != nil && !errors.Is(err, exec.ErrNotFound) {
			return nil, failed(name, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, "ffmpeg", ffmpegArgs(input, whitelist)...)
	cmd.WaitDelay = time.Second // don't wait on pipes held by stray children once ffmpeg is gone
	s := &ffmpegSource{name: name, ctx: ctx, cancel: cancel, cmd: cmd, stderr: &tailBuffer{}, exited: make(chan error, 1)}
	if stdin != nil {
		// Kept to tell a stream that could not be read from audio ffmpeg could not decode, and a
		// whole Ogg stream of headers alone from one cut short.
		s.input = &countingReader{r: io.TeeReader(stdin, &s.first)}
		cmd.Stdin = s.input
	}
	cmd.Stderr = s.stderr
	// Our own pipe rather than cmd.StdoutPipe: ffmpeg is waited for by another goroutine (below), and
	// Wait closes the pipes it made, which would lose what ffmpeg wrote before exiting.
	r, w, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, failed(name, err)
	}
	cmd.Stdout = w
	err = child.Start(cmd, func(err error) {
		if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
			err = nil // ffmpeg is done; only the copying of a stalled stdin to it was cut short
		}
		s.exited <- err
	})
	w.Close()
	if err != nil {
		r.Close()
		cancel()
		if errors.Is(err, exec.ErrNotFound) {
			return nil, unsupported(name, "decoding this file needs ffmpeg, which is not in PATH: install ffmpeg (apt-get install ffmpeg): %w", err)
		}
		return nil, failed(name, fmt.Errorf("starting ffmpeg: %w", err))
	}
	s.stdout = r
	if s.wavSource, err = decodeWAV(r, name, -1); err != nil {
		// ffmpeg failing explains a missing or broken stream better than the WAV reader, but not a
		// stream refused here (ffmpeg then fails only because its output is no longer read).
		var refused *UnsupportedError
		if errors.As(err, &refused) {
			s.cancel()
		}
		ferr := s.stop()
		var broken *FormatError // ffmpeg's own failure: not a stream that could not be read, nor stopped
		if errors.As(ferr, &broken) && openedAtEOF(s.stderr.summary()) && s.zeroSampleOgg(input) {
			// An Ogg stream that ends before its first audio packet: an Ogg or Opus file of zero
			// samples (its headers only), which ffmpeg refuses to open where it decodes a WAV or
			// FLAC one to nothing. It holds no audio, as those do.
			s.waitErr = nil
			return s, s.empty()
		}
		if ferr != nil && refused == nil {
			err = ferr
		}
		return nil, err
	}
	return s, nil
}

// openedAtEOF reports whether ffmpeg's failure, as summarised, is that its input ended as it opened
// it: "file:PATH: End of file" (ffmpeg 5), "[in#0] Error opening input: End of file | …" (ffmpeg 7).
func openedAtEOF(summary string) bool {
	first, _, _ := strings.Cut(summary, " | ")
	return strings.HasSuffix(first, ": End of file")
}

// zeroSampleOgg reports whether ffmpeg's input, which it could not open, is a whole Ogg stream of
// headers alone (see pipewav.OggFile): a file, or a stream that ended within its first bytes kept.
func (s *ffmpegSource) zeroSampleOgg(input string) bool {
	if path, ok := strings.CutPrefix(input, "file:"); ok {
		return pipewav.OggFile(path)
	}
	return s.input.eof && s.input.n == int64(len(s.first.b)) && pipewav.OggBytes(s.first.b)
}

// firstBytes keeps the first maxOggHeaders bytes written to it: an Ogg stream of headers alone is
// smaller (a Vorbis comment header holds the tags, cover art included, and is rarely beyond 1 MB).
type firstBytes struct{ b []byte }

const maxOggHeaders = 1 << 20

func (f *firstBytes) Write(p []byte) (int, error) {
	if room := maxOggHeaders - len(f.b); room > 0 {
		f.b = append(f.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// empty makes s a source of no samples (nothing says the input's own rate).
func (s *ffmpegSource) empty() error {
	var err error
	s.wavSource, err = decodeWAV(bytes.NewReader(pipewav.Header(pipewav.EmptyRate, 1)), s.name, -1)
	return err
}

// ffmpegArgs has ffmpeg write the first audio stream of input as float64 WAV to stdout, and print
// errors only. input is "file:PATH" ("file:" keeps ffmpeg from reading a name starting with '-' as an
// option or "x:y" as a protocol) or "pipe:0". The input's own protocol is the only one ffmpeg may open,
// so a playlist or a reference in the audio cannot make it reach the network, which matters when the
// bytes come from a stranger (vggish serve); formats, when not empty, is the format whitelist that
// keeps a file from naming other files to read (see package demuxers: a pipe's whitelist already does).
func ffmpegArgs(input, formats string) []string {
	protocol, _, _ := strings.Cut(input, ":")
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", protocol}
	if formats != "" {
		args = append(args, "-format_whitelist", formats)
	}
	return append(args, "-i", input, "-map", "0:a:0", "-c:a", "pcm_f64le", "-f", "wav", "pipe:1")
}

// ffmpegFormats returns the format whitelist for files given to the ffmpeg command: its demuxers (from
// `ffmpeg -demuxers`, 0.1 s once per process) but those that read other files than their input. A
// failure is not kept: ffmpeg may be installed later.
func ffmpegFormats() (string, error) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	if formats != "" {
		return formats, nil
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-demuxers").Output()
	if err != nil {
		return "", fmt.Errorf("listing ffmpeg's demuxers: %w", err)
	}
	names := demuxers.ParseList(string(out))
	if len(names) == 0 {
		return "", errors.New("listing ffmpeg's demuxers: `ffmpeg -demuxers` listed none")
	}
	formats = demuxers.Whitelist(names)
	return formats, nil
}

var (
	formatsMu sync.Mutex
	formats   string // ffmpegFormats' list, once made
)

func (s *ffmpegSource) Read(p []float64) (int, error) {
	n, err := s.wavSource.Read(p)
	return n, s.check(err)
}

func (s *ffmpegSource) frames(limit int) ([]float64, error) {
	samples, err := s.wavSource.frames(limit)
	return samples, s.check(err)
}

// check replaces the end of the WAV stream by ffmpeg's failure, if it failed.
func (s *ffmpegSource) check(err error) error {
	if err == nil {
		return nil
	}
	if !s.ended {
		s.cancel() // a decoding error: the rest of ffmpeg's output is not needed
	}
	// When the stream has ended, ffmpeg's exit status says whether it ended early, and why.
	if ferr := s.stop(); ferr != nil && s.ended {
		s.wavSource.err = ferr
		return ferr
	}
	return err
}

// Close stops ffmpeg if it is still running.
func (s *ffmpegSource) Close() error {
	s.cancel()
	s.stop()
	return nil
}

// stop closes the pipe (so that ffmpeg can't block writing to it), waits for ffmpeg to exit, and returns
// an error saying why it failed, if it did.
func (s *ffmpegSource) stop() error {
	s.waitOnce.Do(func() {
		s.stdout.Close()
		err := <-s.exited
		stopped := s.ctx.Err() != nil
		s.cancel()
		switch {
		case err == nil:
		case stopped:
			s.waitErr = failed(s.name, fmt.Errorf("ffmpeg stopped: %w", context.Cause(s.ctx)))
		case s.input != nil && s.input.err != nil: // Wait has waited for the copying to stdin
			s.waitErr = readError(s.name, s.input.err)
		default:
			s.waitErr = formatError(s.name, "ffmpeg could not decode it (%v): %s", err, demuxers.Explain(s.stderr.summary()))
		}
	})
	return s.waitErr
}

// tailBuffer keeps the first and the last bytes written to it: ffmpeg's stderr is drained whatever its
// length; its first line states the cause of a failure (ffmpeg 7 follows it with the consequences, such
// as "Error opening output files") and its last lines the error it stopped on.
type tailBuffer struct {
	mu    sync.Mutex
	head  []byte // the first headSize bytes
	tail  []byte // the last tailSize bytes
	total int
}

const (
	headSize = 1 << 10
	tailSize = 4 << 10
)

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += len(p)
	if n := headSize - len(t.head); n > 0 {
		t.head = append(t.head, p[:min(n, len(p))]...)
	}
	t.tail = append(t.tail, p...)
	if len(t.tail) > tailSize {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailSize:]...)
	}
	return len(p), nil
}

// logContextRE matches the address in the "[decoder @ 0x55d0c4a0b2c0] " prefix of ffmpeg's log lines:
// it differs from run to run and means nothing to a user.
var logContextRE = regexp.MustCompile(` @ 0x[0-9a-fA-F]+\]`)

// summary is the first non-empty line and the last two after it, joined, with "…" where lines are left
// out.
func (t *tailBuffer) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := nonEmptyLines(t.tail)
	if t.total > len(t.tail) {
		// The tail's first line may be cut: the first line comes from the head instead.
		first := nonEmptyLines(t.head)
		lines = append(first[:min(1, len(first))], lines[min(1, len(lines)):]...)
	}
	// ffmpeg's advice on its own command line is not the user's to follow: the map is ours.
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, "add a trailing '?' to the map") })
	for i, l := range lines {
		if strings.Contains(l, "matches no streams") {
			lines[i] = "no audio stream (" + l + ")"
		}
	}
	if len(lines) == 0 {
		return "no message"
	}
	if len(lines) > 3 {
		lines = append([]string{lines[0], "…"}, lines[len(lines)-2:]...)
	}
	for i, l := range lines {
		lines[i] = logContextRE.ReplaceAllString(l, "]")
	}
	return strings.Join(lines, " | ")
}

func nonEmptyLines(b []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
