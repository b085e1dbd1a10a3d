// Package pipewav holds what the two decoders outside package decode's own readers share: the WAV
// stream they hand back (ffmpeg's command writes one; decode/libav's workers write the same), and the
// test for an Ogg file of no audio, which ffmpeg refuses to open where it decodes a WAV or FLAC file
// of zero samples to nothing.
package pipewav

import (
	"encoding/binary"
	"io"

	"github.com/vggish-go/vggish/internal/regfile"
)

// Header starts a WAV stream of 64-bit float samples, channels interleaved, whose data runs to the end
// of the stream (its sizes unknown, as ffmpeg writes one to a pipe).
func Header(rate, channels int) []byte {
	le := binary.LittleEndian
	b := []byte("RIFF\xff\xff\xff\xffWAVEfmt ")
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 3) // WAVE_FORMAT_IEEE_FLOAT
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*8))
	b = le.AppendUint16(b, uint16(channels*8))
	b = le.AppendUint16(b, 64)
	return append(b, "data\xff\xff\xff\xff"...)
}

// EmptyRate is the rate of a stream of no samples whose input says none: an Ogg file of headers only.
const EmptyRate = 16000

// OggFile reports whether the file at path starts with an Ogg page.
func OggFile(path string) bool {
	f, err := regfile.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	_, err = io.ReadFull(f, head)
	return err == nil && OggPage(head)
}

// OggPage reports whether head, a stream's first bytes, starts an Ogg page.
func OggPage(head []byte) bool { return len(head) >= 4 && string(head[:4]) == "OggS" }
