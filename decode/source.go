package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"reflect"

	"github.com/go-audio/audio"

	"github.com/vggish-go/vggish/internal/regfile"
)

// Source yields mono float64 samples at the source's rate.
//
// Samples follow the reference (Towhee's vggish operator feeding torchvggish): integer PCM x of b bits
// becomes (x - offset) / 2^(b-1), offset 128 for unsigned 8-bit and 0 otherwise; float samples are
// taken as they are; channels are averaged as np.mean(frames, axis=1) does, bit for bit. A NaN or
// infinite sample is an error.
type Source interface {
	// SampleRate is the rate of the samples Read yields, in Hz.
	SampleRate() int
	// Read fills p with up to len(p) samples and returns how many. At the end of the stream it returns
	// 0, io.EOF; any other error names the source and the problem.
	Read(p []float64) (int, error)
	// Close releases the source (the file, the ffmpeg process).
	Close() error
}

// maxChunk bounds the samples (all channels) a source decodes per Read, whatever len(p) is.
const maxChunk = 1 << 15

// Open opens an audio file. WAV files (recognised by their RIFF/WAVE header, not their name) in PCM or
// IEEE float encoding are decoded natively; anything else, including WAV files with compressed
// encodings such as MP3 or ADPCM, is decoded by ffmpeg (see NewFFmpeg), or by the [Decoder] set with
// [SetDecoder]. path must be a regular file: a
// named pipe, a device or a socket is refused before it is opened for reading, an [*UnsupportedError].
func Open(path string) (Source, error) { return OpenContext(context.Background(), path) }

// OpenContext is Open with a context: cancelling it stops ffmpeg.
func OpenContext(ctx context.Context, path string) (Source, error) {
	f, err := regfile.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	var head [12]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		f.Close()
		return nil, failed(path, err)
	}
	if n == 0 {
		f.Close()
		return nil, formatError(path, "empty file")
	}
	if !isWAV(head[:n]) {
		f.Close()
		return openCompressed(ctx, path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, failed(path, err)
	}
	s, err := openWAV(f, path)
	if err != nil {
		f.Close()
		if errors.Is(err, errUnsupportedEncoding) { // ffmpeg decodes it
			return openCompressed(ctx, path)
		}
		return nil, err
	}
	s.closer = f
	return s, nil
}

// fileError is why the file at path cannot be read: anything but a regular file (a named pipe, a
// device) is not decoded here, an *UnsupportedError; other errors (a missing file) come wrapped.
func fileError(path string, err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err // path is named once
	}
	if errors.Is(err, regfile.ErrNotRegular) {
		return &UnsupportedError{Name: path, Err: err}
	}
	return failed(path, err)
}

// isWAV reports whether a stream starting with head is RIFF/WAVE.
func isWAV(head []byte) bool {
	return len(head) >= 12 && bytes.Equal(head[0:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WAVE"))
}

// OpenReader decodes an audio stream that need not seek, such as standard input: a WAV stream (by its
// header) natively, as it arrives, its data running to the end of the stream when the header does not
// say how long it is; anything else through ffmpeg, which reads it from a pipe. Memory does not grow
// with the length of the stream. name is used in errors.
//
// r is read by a goroutine of its own, so that cancelling ctx, or Close, ends a Read waiting on r at
// once. If r never returns, that goroutine waits on it until the program ends.
func OpenReader(ctx context.Context, r io.Reader, name string) (Source, error) {
	if r == nil { // else the copying goroutine's panic, which no caller could recover
		return nil, failed(name, errors.New("nil reader"))
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err) // nil: io.EOF for the reader
	}()
	// Reads of pr then fail with the cause, and the copying goroutine's next write fails: it ends.
	stopAfter := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	stop := func() {
		stopAfter()
		pr.Close()
	}
	src, err := openStream(ctx, &replay{r: pr, keep: true}, name)
	if err != nil {
		stop()
		return nil, err
	}
	return &streamSource{interleaved: src, stop: stop}, nil
}

// openStream sniffs the stream's first bytes and decodes it natively or through ffmpeg.
func openStream(ctx context.Context, r *replay, name string) (interleaved, error) {
	var head [12]byte
	n, err := io.ReadFull(r, head[:])
	switch {
	case n == 0 && err == io.EOF:
		return nil, formatError(name, "empty stream")
	case err != nil && err != io.ErrUnexpectedEOF:
		return nil, failed(name, err)
	}
	if isWAV(head[:n]) {
		s, err := decodeWAV(io.MultiReader(bytes.NewReader(head[:n]), r), name, -1)
		if err == nil {
			r.keep, r.kept = false, nil
			return s, nil
		}
		if !errors.Is(err, errUnsupportedEncoding) {
			return nil, err
		}
	}
	if r.kept == nil {
		return nil, unsupported(name, "a WAV header longer than %d bytes, in an encoding only ffmpeg decodes: give it as a file", maxReplay)
	}
	return startFFmpeg(ctx, "pipe:0", io.MultiReader(bytes.NewReader(r.kept), r.r), name)
}

// maxReplay bounds the bytes of a stream kept while its format is found out.
const maxReplay = 1 << 20

// replay keeps what is read through it (while keep is set, up to maxReplay bytes; beyond, kept is
// dropped and nil), so that ffmpeg can be handed a stream whose start was read to sniff its format.
type replay struct {
	r    io.Reader
	keep bool
	kept []byte
}

func (p *replay) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.keep {
		if p.kept = append(p.kept, b[:n]...); len(p.kept) > maxReplay {
			p.keep, p.kept = false, nil
		}
	}
	return n, err
}

// streamSource is a Source over a stream read by OpenReader's goroutine (Split takes it too).
type streamSource struct {
	interleaved
	stop func()
}

// Close ends the reading of the stream first: ffmpeg, if it reads it, then sees its end.
func (s *streamSource) Close() error {
	s.stop()
	return s.interleaved.Close()
}

// FromFloat64 returns a Source reading mono samples at rate Hz from memory. A rate out of range (see
// CheckSampleRate) is an error from Read.
func FromFloat64(samples []float64, rate int) Source {
	return newMemSource(samples, 1, rate, "float64 samples", func(v float64) float64 { return v })
}

// FromFloat32 returns a Source reading mono samples at rate Hz from memory, widened to float64. A rate
// out of range (see CheckSampleRate) is an error from Read.
func FromFloat32(samples []float32, rate int) Source {
	return newMemSource(samples, 1, rate, "float32 samples", func(v float32) float64 { return float64(v) })
}

// FromBuffer returns a Source reading a go-audio buffer: an [*audio.IntBuffer] (scaled by its
// SourceBitDepth of 8, 16, 24 or 32 bits; 8-bit samples are unsigned, as go-audio/wav decodes them),
// [*audio.Float32Buffer] or [*audio.FloatBuffer], with its channels interleaved. Another type, or
// another bit depth, is an [*UnsupportedError].
func FromBuffer(buf audio.Buffer) (Source, error) {
	if v := reflect.ValueOf(buf); buf == nil || v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, formatError("", "nil audio buffer")
	}
	name := fmt.Sprintf("%T", buf)
	f := buf.PCMFormat()
	if f == nil {
		return nil, formatError(name, "no format")
	}
	if err := checkFormat(f.NumChannels, f.SampleRate, name); err != nil {
		return nil, err
	}
	var s Source
	var samples int
	switch b := buf.(type) {
	case *audio.IntBuffer:
		if b.SourceBitDepth != 8 && b.SourceBitDepth != 16 && b.SourceBitDepth != 24 && b.SourceBitDepth != 32 {
			return nil, unsupported(name, "SourceBitDepth %d, want 8, 16, 24 or 32", b.SourceBitDepth)
		}
		offset, scale := intScale(b.SourceBitDepth)
		samples = len(b.Data)
		s = newMemSource(b.Data, f.NumChannels, f.SampleRate, name, func(v int) float64 {
			return (float64(v) - offset) / scale
		})
	case *audio.Float32Buffer:
		samples = len(b.Data)
		s = newMemSource(b.Data, f.NumChannels, f.SampleRate, name, func(v float32) float64 { return float64(v) })
	case *audio.FloatBuffer:
		samples = len(b.Data)
		s = newMemSource(b.Data, f.NumChannels, f.SampleRate, name, func(v float64) float64 { return v })
	default:
		return nil, unsupported(name, "unsupported audio buffer type")
	}
	if samples%f.NumChannels != 0 {
		return nil, formatError(name, "%d samples do not make whole frames of %d channels", samples, f.NumChannels)
	}
	return s, nil
}

// The sample rates audio is decoded at. Every rate real audio uses lies well within them: 8 kHz
// telephony, AAC's lowest 7350 Hz and the 4 to 5.5 kHz of early sound cards at the bottom, 384 and
// 768 kHz studio PCM and ultrasonic (bat, hydrophone) recorders at the top. ffmpeg and libsndfile read
// any positive 32-bit rate, but a header's rate is only a number: resampling to 16 kHz multiplies the
// samples by 16000/rate, so a 64 KB file claiming 2 Hz would become nine hours of audio to preprocess,
// and a rate above 131 MHz leaves the resampling filter without a step between taps.
const (
	MinSampleRate = 1000      // Hz: resampling multiplies a source's samples at most 16 times
	MaxSampleRate = 1_000_000 // Hz
)

// CheckSampleRate returns an error for a rate outside MinSampleRate to MaxSampleRate (this package's
// decoders return it as an [*UnsupportedError] naming the input).
func CheckSampleRate(rate int) error {
	if rate < MinSampleRate || rate > MaxSampleRate {
		return rateError(rate)
	}
	return nil
}

// rateError is a sample rate out of range: a refusal of a readable header, not a broken stream.
type rateError int

func (r rateError) Error() string {
	return fmt.Sprintf("sample rate %d Hz is out of range: audio is sampled at %d Hz to %d Hz", int(r), MinSampleRate, MaxSampleRate)
}

// checkFormat rejects what no decoder can make sense of in the input name.
func checkFormat(channels, rate int, name string) error {
	if channels <= 0 {
		return formatError(name, "invalid channel count %d", channels)
	}
	if err := CheckSampleRate(rate); err != nil {
		return &UnsupportedError{Name: name, Err: err}
	}
	return nil
}

// intScale gives the reference's integer-to-float mapping for b-bit samples: (x - offset) / scale, with
// numpy's iinfo: scale = 2^(b-1), offset = iinfo.min + scale (128 for unsigned 8-bit, 0 for signed).
func intScale(bits int) (offset, scale float64) {
	scale = math.Ldexp(1, bits-1)
	if bits == 8 {
		return scale, scale
	}
	return 0, scale
}

// mixer averages interleaved frames to mono and checks the result is finite.
type mixer struct {
	name     string
	channels int
	frames   int64 // frames mixed so far, for error messages
}

// mix sets dst[i] to the mean of frame i of src (len(dst) frames). On a non-finite frame it returns
// the number of frames before it and an error.
func (m *mixer) mix(dst, src []float64) (int, error) {
	c := m.channels
	for i := range dst {
		var v float64
		switch c {
		case 1:
			v = src[i]
		case 2: // pairwiseSum's order, without the call
			v = 0
			v += src[2*i]
			v += src[2*i+1]
			v /= 2
		default:
			v = pairwiseSum(src[i*c:(i+1)*c]) / float64(c)
		}
		if v-v != 0 { // NaN or an infinity
			return i, formatError(m.name, "sample %d is %v", m.frames+int64(i), v)
		}
		dst[i] = v
	}
	m.frames += int64(len(dst))
	return len(dst), nil
}

// readMixed is the sources' Read: up to len(p) frames from frames, averaged by m. An error, the
// sources' or a mixing one (which sticks in *sticky), comes once the samples before it are read.
func readMixed(p []float64, sticky *error, m *mixer, frames func(int) ([]float64, error)) (int, error) {
	if *sticky != nil {
		return 0, *sticky
	}
	if len(p) == 0 {
		return 0, nil
	}
	samples, err := frames(len(p))
	if len(samples) == 0 {
		return 0, err
	}
	n, err := m.mix(p[:len(samples)/m.channels], samples)
	if err != nil {
		*sticky = err
	}
	if n == 0 {
		return 0, err
	}
	return n, nil
}

// pairwiseSum adds a in numpy's order (pairwise_sum in numpy/core/src/umath/loops_utils.h), so that
// channel means equal np.mean's to the bit.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a)
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}

// memSource reads interleaved samples from memory.
type memSource[T any] struct {
	data    []T
	rate    int
	toFloat func(T) float64
	mixer   mixer
	buf     []float64
	err     error
}

// newMemSource returns a source whose reads fail when rate is out of range (FromFloat64 and FromFloat32
// have no error to return).
func newMemSource[T any](data []T, channels, rate int, name string, toFloat func(T) float64) *memSource[T] {
	s := &memSource[T]{data: data, rate: rate, toFloat: toFloat, mixer: mixer{name: name, channels: channels}}
	if err := CheckSampleRate(rate); err != nil {
		s.err = &UnsupportedError{Name: name, Err: err}
	}
	return s
}

func (s *memSource[T]) SampleRate() int { return s.rate }

// Name is what errors call the source.
func (s *memSource[T]) Name() string { return s.mixer.name }

func (s *memSource[T]) Close() error { return nil }

func (s *memSource[T]) Read(p []float64) (int, error) {
	return readMixed(p, &s.err, &s.mixer, s.frames)
}

// frames takes up to limit (> 0) frames and returns their samples, interleaved, valid until the next
// call; once none are left it returns io.EOF.
func (s *memSource[T]) frames(limit int) ([]float64, error) {
	if s.err != nil {
		return nil, s.err
	}
	c := s.mixer.channels
	frames := min(limit, len(s.data)/c, max(1, maxChunk/c))
	if frames == 0 {
		return nil, io.EOF
	}
	s.buf = s.buf[:0]
	for _, v := range s.data[:frames*c] {
		s.buf = append(s.buf, s.toFloat(v))
	}
	s.data = s.data[frames*c:]
	return s.buf, nil
}

func (s *memSource[T]) channelCount() int { return s.mixer.channels }
