package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/go-audio/audio"
	"github.com/go-audio/riff"
)

// WAV decoding walks the RIFF chunks with go-audio/riff and decodes the fmt chunk and the samples here.
// go-audio/wav v1.1.0 is not used: it decodes integer PCM only (IEEE float data is misread as integers,
// 64-bit is refused), drops the WAVE_FORMAT_EXTENSIBLE sub-format, needs a seekable reader and loses
// samples on short reads, as from a pipe.

// WAVE format tags (Microsoft mmreg.h).
const (
	wavePCM        = 0x0001
	waveIEEEFloat  = 0x0003
	waveExtensible = 0xFFFE
)

// maxFmtSize bounds the fmt chunk read into memory (16 to 40 bytes in practice).
const maxFmtSize = 1 << 10

// Streaming writers that cannot seek back to fill in the data chunk size leave a placeholder: ffmpeg
// writes 0xFFFFFFFF, sox 0x7FFFF000. Such data runs to the end of the stream.
const (
	dataSizeUnknownFFmpeg = 0xFFFFFFFF
	dataSizeUnknownSox    = 0x7FFFF000
)

// extensibleGUIDTail is the tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs that carry a format tag in
// their first two bytes (PCM, IEEE_FLOAT, ...).
var extensibleGUIDTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// wavSource decodes the data chunk of a WAV stream as it is read.
type wavSource struct {
	rate      int
	frameSize int
	decode    func(dst []float64, src []byte)
	data      io.Reader
	declared  int64 // data bytes the header declares; -1 when unknown (read to the end)
	consumed  int64
	ended     bool // the data reader is exhausted
	raw       []byte
	samples   []float64
	mixer     mixer
	closer    io.Closer // the file, when opened by Open
	err       error
}

// NewWAV returns a Source decoding the WAV stream r: PCM of 8 (unsigned), 16, 24 or 32 bits, IEEE float
// of 32 or 64 bits, plain or WAVE_FORMAT_EXTENSIBLE, any number of channels. name (the file name) is
// used in errors. Samples are decoded as they are read; a data chunk shorter than its header declares
// is an error (checked up front, as r can seek), except for the placeholder sizes streaming writers
// leave (0xFFFFFFFF from ffmpeg, 0x7FFFF000 from sox), where the data runs to the end of r.
// Close does not close r. A compressed encoding (MP3, ADPCM...) is an [*UnsupportedError]; [Open]
// decodes those through ffmpeg.
func NewWAV(r io.ReadSeeker, name string) (Source, error) {
	if r == nil {
		return nil, failed(name, errors.New("nil reader"))
	}
	s, err := openWAV(r, name)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openWAV finds how many bytes r holds, so that a header claiming more fails before any decoding.
func openWAV(r io.ReadSeeker, name string) (*wavSource, error) {
	size := int64(-1)
	if cur, err := r.Seek(0, io.SeekCurrent); err == nil {
		end, err := r.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = r.Seek(cur, io.SeekStart)
		}
		if err != nil {
			return nil, failed(name, err)
		}
		size = end - cur
	}
	return decodeWAV(r, name, size)
}

// decodeWAV reads the WAV header from r up to the data chunk. size is the number of bytes r holds, or
// -1 when unknown (a pipe).
func decodeWAV(r io.Reader, name string, size int64) (*wavSource, error) {
	cr := &countingReader{r: r}
	// A header cut short by a failing read (a cancelled stream, a network error) is that failure, not
	// a broken file.
	fail := func(format string, args ...any) error {
		if cr.err != nil {
			return readError(name, cr.err)
		}
		return formatError(name, format, args...)
	}
	p := riff.New(cr)
	if err := p.ParseHeaders(); err != nil || p.Format != riff.WavFormatID {
		return nil, fail("not a WAV file (no RIFF/WAVE header)")
	}
	var s *wavSource
	for {
		start := cr.n
		id, chunkSize, err := p.IDnSize()
		// riff.Parser.IDnSize ignores a failure to read the size: count the bytes instead.
		if err != nil || cr.n-start < 8 {
			what := "fmt"
			if s != nil {
				what = "data"
			}
			if cr.n == start {
				return nil, fail("no %s chunk", what)
			}
			return nil, fail("truncated WAV: chunk header cut short before the %s chunk", what)
		}
		switch id {
		case riff.FmtID:
			if s != nil {
				return nil, fail("second fmt chunk")
			}
			if chunkSize < 16 || chunkSize > maxFmtSize {
				return nil, fail("fmt chunk of %d bytes", chunkSize)
			}
			b := make([]byte, chunkSize+chunkSize%2) // chunks are padded to even sizes
			if _, err := io.ReadFull(cr, b); err != nil {
				return nil, fail("truncated WAV: fmt chunk cut short")
			}
			if s, err = parseFmt(b[:chunkSize], name); err != nil {
				return nil, err
			}
			s.mixer.name = name
		case riff.DataFormatID:
			if s == nil {
				return nil, fail("data chunk before the fmt chunk")
			}
			if chunkSize == dataSizeUnknownFFmpeg || chunkSize == dataSizeUnknownSox {
				s.data, s.declared = cr, -1
				return s, nil
			}
			s.declared = int64(chunkSize)
			if s.declared%int64(s.frameSize) != 0 {
				return nil, fail("data chunk of %d bytes is not a whole number of %d-byte frames", s.declared, s.frameSize)
			}
			if size >= 0 && s.declared > size-cr.n {
				return nil, fail("%s", truncated(s.declared, size-cr.n))
			}
			s.data = io.LimitReader(cr, s.declared)
			return s, nil
		default: // LIST, fact, JUNK, bext, ...
			if _, err := io.CopyN(io.Discard, cr, int64(chunkSize)+int64(chunkSize%2)); err != nil {
				return nil, fail("truncated WAV: %q chunk cut short", id[:])
			}
		}
	}
}

func truncated(declared, present int64) string {
	return fmt.Sprintf("truncated WAV: the data chunk declares %d bytes, %d are present", declared, present)
}

// parseFmt reads a fmt chunk (WAVEFORMATEX, possibly WAVEFORMATEXTENSIBLE) of the input name.
func parseFmt(b []byte, name string) (*wavSource, error) {
	le := binary.LittleEndian
	tag := le.Uint16(b[0:])
	channels := int(le.Uint16(b[2:]))
	rate := int(le.Uint32(b[4:]))
	blockAlign := int(le.Uint16(b[12:]))
	bits := int(le.Uint16(b[14:])) // the container size for WAVE_FORMAT_EXTENSIBLE
	if tag == waveExtensible {
		if len(b) < 40 || !bytes.Equal(b[26:40], extensibleGUIDTail) {
			return nil, unsupported(name, "%w: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format", errUnsupportedEncoding)
		}
		tag = le.Uint16(b[24:])
	}
	if err := checkFormat(channels, rate, name); err != nil {
		return nil, err
	}
	bytesPerSample := (bits + 7) / 8
	var decode func(dst []float64, src []byte)
	switch {
	case tag == wavePCM && bytesPerSample >= 1 && bytesPerSample <= 4:
		decode = pcmDecoder(bytesPerSample)
	case tag == waveIEEEFloat && bits == 32:
		decode = func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = float64(math.Float32frombits(le.Uint32(src[4*i:])))
			}
		}
	case tag == waveIEEEFloat && bits == 64:
		decode = func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = math.Float64frombits(le.Uint64(src[8*i:]))
			}
		}
	default:
		return nil, unsupported(name, "%w: format tag 0x%04x with %d-bit samples", errUnsupportedEncoding, tag, bits)
	}
	if blockAlign != channels*bytesPerSample {
		return nil, formatError(name, "block align %d, want %d for %d channel(s) of %d bytes", blockAlign, channels*bytesPerSample, channels, bytesPerSample)
	}
	return &wavSource{
		rate:      rate,
		frameSize: blockAlign,
		decode:    decode,
		mixer:     mixer{channels: channels},
	}, nil
}

// pcmDecoder decodes little-endian PCM samples of n bytes, scaled by their container size (samples
// narrower than the container are left-justified in it).
func pcmDecoder(n int) func(dst []float64, src []byte) {
	offset, scale := intScale(8 * n)
	le := binary.LittleEndian
	// One loop per width: a call per sample cost more than the decoding.
	switch n {
	case 1:
		return func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = (float64(src[i]) - offset) / scale
			}
		}
	case 2:
		return func(dst []float64, src []byte) {
			src = src[:2*len(dst)]
			for i := range dst {
				dst[i] = float64(int16(le.Uint16(src[2*i:]))) / scale
			}
		}
	case 3:
		return func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = float64(audio.Int24LETo32(src[3*i:])) / scale
			}
		}
	default:
		return func(dst []float64, src []byte) {
			src = src[:4*len(dst)]
			for i := range dst {
				dst[i] = float64(int32(le.Uint32(src[4*i:]))) / scale
			}
		}
	}
}

func (s *wavSource) SampleRate() int { return s.rate }

// Name is what errors call the source: the file name.
func (s *wavSource) Name() string { return s.mixer.name }

func (s *wavSource) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

func (s *wavSource) Read(p []float64) (int, error) { return readMixed(p, &s.err, &s.mixer, s.frames) }

// frames decodes up to limit (> 0) frames and returns their samples, interleaved, valid until the next
// call. The end of the stream (io.EOF) or an error comes once no samples are left: with none.
func (s *wavSource) frames(limit int) ([]float64, error) {
	if s.err != nil {
		return nil, s.err
	}
	frames := min(limit, max(1, maxChunk/s.mixer.channels))
	if need := frames * s.frameSize; cap(s.raw) < need {
		s.raw = make([]byte, need)
	}
	raw := s.raw[:frames*s.frameSize]
	got, err := io.ReadFull(s.data, raw)
	s.consumed += int64(got)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		s.ended, s.err = true, io.EOF
		if s.declared >= 0 && s.consumed < s.declared {
			s.err = formatError(s.mixer.name, "%s", truncated(s.declared, s.consumed))
		} else if got%s.frameSize != 0 {
			s.err = formatError(s.mixer.name, "truncated WAV: the data ends within a frame")
		}
	case err != nil:
		s.err = readError(s.mixer.name, err)
	}
	frames = got / s.frameSize
	s.samples = append(s.samples[:0], make([]float64, frames*s.mixer.channels)...)
	s.decode(s.samples, raw)
	if frames == 0 {
		return nil, s.err
	}
	return s.samples, nil
}

func (s *wavSource) channelCount() int { return s.mixer.channels }

// countingReader counts the bytes read through it, and keeps the first read error other than the end
// of the input (the riff parser drops some) and whether the input ended.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
	eof bool // the input ended
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.eof = c.eof || err == io.EOF
	if c.err == nil && err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		c.err = err
	}
	return n, err
}
