package decode

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/vggish-go/vggish/internal/regfile"
)

// A Decoder decodes the files that [Open] does not decode natively, in place of the ffmpeg command:
// see [SetDecoder]. Package libav (decode/libav) provides one: ffmpeg's libraries, with no process
// per file.
type Decoder interface {
	// Decode starts decoding the first audio stream of the regular file at path and returns it as a
	// WAV stream of 64-bit IEEE float samples, at the audio's own rate and channel count, whose data
	// runs to the end of the stream (as `ffmpeg -c:a pcm_f64le -f wav` writes it to a pipe). A file
	// that cannot be decoded is a *FormatError or *UnsupportedError naming path, from Decode or from a
	// Read of the stream, which returns io.EOF once the audio has ended well. Cancelling ctx stops the
	// decoding, as does closing the stream.
	Decode(ctx context.Context, path string) (io.ReadCloser, error)
}

var fileDecoder atomic.Pointer[Decoder]

// SetDecoder makes d decode the files that Open and OpenContext hand to the ffmpeg command; nil gives
// them back to the command. Streams ([OpenReader]) are still decoded by the command.
func SetDecoder(d Decoder) {
	if d == nil {
		fileDecoder.Store(nil)
		return
	}
	fileDecoder.Store(&d)
}

// openCompressed decodes the file at path, which is not a WAV file this package decodes, with the
// Decoder set, or else the ffmpeg command.
func openCompressed(ctx context.Context, path string) (Source, error) {
	d := fileDecoder.Load()
	if d == nil {
		return NewFFmpeg(ctx, path)
	}
	if err := regfile.Require(path); err != nil {
		return nil, fileError(path, err)
	}
	r, err := (*d).Decode(ctx, path)
	if err != nil {
		return nil, err
	}
	s, err := decodeWAV(r, path, -1)
	if err != nil {
		r.Close()
		return nil, err
	}
	s.closer = r
	return s, nil
}
