package libav

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
)

// A file that would make libavformat open others (a concat script or a playlist under an audio name)
// fails alone, at once: it never reads another file's audio as its own, and never blocks on a named
// pipe it lists.
func TestNestedInputsAreRefused(t *testing.T) {
	dir := t.TempDir()
	makeAudio(t, dir, "real.wav", "-c:a", "pcm_s16le")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.raw"), 0o600))
	for name, script := range map[string]string{
		"another.mp3":   "ffconcat version 1.0\nfile real.wav\n",
		"pipe.mp3":      "ffconcat version 1.0\nfile pipe.raw\n",
		"playlist.m3u8": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.5,\nreal.wav\n#EXT-X-ENDLIST\n",
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(script), 0o644))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, err := decodeAll(t, newPool(t), ctx, path)
		cancel()
		var format *decode.FormatError
		require.ErrorAs(t, err, &format, name)
		assert.ErrorContains(t, err, "decode "+path+": ffmpeg could not decode it: ", name)
		assert.NotErrorIs(t, err, context.DeadlineExceeded, name)
		assert.ErrorContains(t, err, "it names other files to read", name)
	}
}

// A demuxer let through that opens other inputs through its context (HLS, were it not refused by
// name) is stopped at its first such open.
func TestNestedOpensAreRefused(t *testing.T) {
	dir := t.TempDir()
	makeAudio(t, dir, "real.wav", "-c:a", "pcm_s16le")
	path := filepath.Join(dir, "playlist.m3u8")
	require.NoError(t, os.WriteFile(path, []byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.5,\nreal.wav\n#EXT-X-ENDLIST\n"), 0o644))
	all := formats
	t.Cleanup(func() { formats = all })
	formats = func() string { return all() + ",hls" }
	err := decodeFile(path, func(int, int) error { return nil }, func([]float64) error { return nil })
	assert.ErrorContains(t, err, "it opens another input, file:")
}
