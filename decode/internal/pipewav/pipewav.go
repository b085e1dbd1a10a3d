// Package pipewav holds what the two decoders outside package decode's own readers share: the WAV
// stream they hand back (ffmpeg's command writes one; decode/libav's workers write the same), and the
// test for an Ogg file of no audio, which ffmpeg refuses to open where it decodes a WAV or FLAC file
// of zero samples to nothing, as it refuses one cut short.
package pipewav

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"strings"

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

// OggFile reports whether the file at path is a whole Ogg stream, as an encoder given no audio writes
// one: well-formed pages back to back to its end, the last one ending the stream, or, as ffmpeg writes
// no end-of-stream page after headers alone, ending right after the codec's header packets. Such a file
// that ffmpeg refuses to open is a file of zero samples; one cut short, or garbage after "OggS", is not
// one, but malformed.
func OggFile(path string) bool {
	f, err := regfile.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return wholeOgg(bufio.NewReader(f))
}

// OggBytes is OggFile for a stream's bytes.
func OggBytes(b []byte) bool { return wholeOgg(bufio.NewReader(bytes.NewReader(b))) }

func wholeOgg(r *bufio.Reader) bool {
	headers, packets, open := 0, 0, false
	for page := 0; ; page++ {
		// A page's header: "OggS", version 0, header type, granule position, serial number, sequence
		// number, checksum, the number of segments, then their lengths (RFC 3533, section 6).
		var head [27]byte
		if _, err := io.ReadFull(r, head[:]); err != nil || !OggPage(head[:]) || head[4] != 0 {
			return false
		}
		lengths := make([]byte, head[26])
		if _, err := io.ReadFull(r, lengths); err != nil {
			return false
		}
		size := 0
		for _, n := range lengths {
			size += int(n)
			open = n == 255 // a packet goes on into the next segment
			if !open {
				packets++
			}
		}
		if page == 0 {
			first, _ := r.Peek(min(size, 9))
			headers = oggHeaderPackets(first)
		}
		if _, err := r.Discard(size); err != nil {
			return false
		}
		if _, err := r.Peek(1); err == io.EOF {
			const endOfStream = 0x04
			return head[5]&endOfStream != 0 || headers > 0 && packets == headers && !open
		}
	}
}

// oggHeaderPackets is the number of header packets of a stream whose first packet starts with first,
// for the codecs ffmpeg writes to Ogg; 0 if unknown.
func oggHeaderPackets(first []byte) int {
	switch s := string(first); {
	case strings.HasPrefix(s, "OpusHead"):
		return 2 // RFC 7845: identification, comment
	case strings.HasPrefix(s, "\x01vorbis"):
		return 3 // identification, comment, setup
	case len(s) == 9 && strings.HasPrefix(s, "\x7fFLAC"):
		// The mapping's header, then as many as it says (0: it does not say).
		if n := int(binary.BigEndian.Uint16(first[7:])); n > 0 {
			return 1 + n
		}
	}
	return 0
}

// OggPage reports whether head, a stream's first bytes, starts an Ogg page.
func OggPage(head []byte) bool { return len(head) >= 4 && string(head[:4]) == "OggS" }
