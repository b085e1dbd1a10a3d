package pipewav_test

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode/internal/pipewav"
)

func TestHeader(t *testing.T) {
	h := pipewav.Header(44100, 2)
	require.Len(t, h, 44)
	le := binary.LittleEndian
	assert.Equal(t, "RIFF", string(h[:4]))
	assert.Equal(t, "WAVEfmt ", string(h[8:16]))
	assert.Equal(t, uint16(3), le.Uint16(h[20:]), "IEEE float")
	assert.Equal(t, uint16(2), le.Uint16(h[22:]), "channels")
	assert.Equal(t, uint32(44100), le.Uint32(h[24:]), "rate")
	assert.Equal(t, uint32(44100*2*8), le.Uint32(h[28:]), "bytes per second")
	assert.Equal(t, uint16(16), le.Uint16(h[32:]), "block")
	assert.Equal(t, uint16(64), le.Uint16(h[34:]), "bits")
	assert.Equal(t, "data\xff\xff\xff\xff", string(h[36:]), "data to the end of the stream")
}

func TestOggPage(t *testing.T) {
	for _, c := range []struct {
		name, head string
		ogg        bool
	}{
		{"ogg", "OggS\x00\x02", true},
		{"just the capture pattern", "OggS", true},
		{"short", "Ogg", false},
		{"empty", "", false},
		{"wav", "RIFF\x24\x00\x00\x00WAVE", false},
	} {
		assert.Equal(t, c.ogg, pipewav.OggPage([]byte(c.head)), c.name)
	}
}

// Only a whole Ogg stream, its last page ending it, is an Ogg file: one of zero samples is, one cut
// short anywhere is not.
func TestOggFile(t *testing.T) {
	dir := t.TempDir()
	silence := []string{"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0"}
	emptyVorbis := ffmpeg(t, dir, "empty.ogg", append(silence, "-c:a", "libvorbis")...)
	emptyOpus := ffmpeg(t, dir, "empty.opus", append(silence, "-c:a", "libopus")...)
	emptyFLAC := ffmpeg(t, dir, "empty.oga", append(silence, "-c:a", "flac", "-f", "ogg")...)
	// A comment header of 100 KB spans many pages.
	bigComment := ffmpeg(t, dir, "comment.ogg", append(silence, "-c:a", "libvorbis", "-metadata", "comment="+strings.Repeat("x", 100_000))...)
	audio := ffmpeg(t, dir, "audio.ogg", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "libvorbis")
	opus, flac := read(t, emptyOpus), read(t, emptyFLAC)
	// pages is the first n pages of b, some left.
	pages := func(b []byte, n int) []byte {
		end := 0
		for range n {
			nseg := int(b[end+26])
			end += 27 + nseg
			for _, l := range b[end-nseg : end] {
				end += int(l)
			}
		}
		require.Equal(t, "OggS", string(b[end:end+4]), "the next page")
		return b[:end]
	}
	version1 := read(t, emptyVorbis)
	version1[4] = 1
	for _, c := range []struct {
		name    string
		content []byte
		ogg     bool
	}{
		{"Vorbis of zero samples", read(t, emptyVorbis), true},
		{"Opus of zero samples", opus, true},
		{"Vorbis of zero samples, a comment of 100 KB", read(t, bigComment), true},
		{"Ogg FLAC of zero samples", flac, true},
		{"Vorbis of 1 s", read(t, audio), true},
		{"just the capture pattern", []byte("OggS"), false},
		{"the first 200 bytes", read(t, audio)[:200], false},
		{"Opus's ID header alone", pages(opus, 1), false},
		{"Ogg FLAC's first page alone", pages(flac, 1), false},
		{"the comment of 100 KB cut at 60 KB", read(t, bigComment)[:60_000], false},
		{"the comment of 100 KB cut at a page's end", pages(read(t, bigComment), 2), false},
		{"Vorbis's headers less the last page", pages(read(t, emptyVorbis), 1), false},
		{"a byte short", opus[:len(opus)-1], false},
		{"a byte after the end", append(read(t, emptyOpus), 0), false},
		{"version 1", version1, false},
		{"empty", nil, false},
		{"wav", []byte("RIFF\x24\x00\x00\x00WAVE"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "case")
			require.NoError(t, os.WriteFile(path, c.content, 0o644))
			assert.Equal(t, c.ogg, pipewav.OggFile(path))
		})
	}
	assert.False(t, pipewav.OggFile(filepath.Join(dir, "missing")))
	assert.False(t, pipewav.OggFile(dir), "a folder")
}

// ffmpeg runs the ffmpeg command with args to write the file name in dir.
func ffmpeg(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), path)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return path
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
