package pipewav_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
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

func TestOgg(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		ogg           bool
	}{
		{"ogg", "OggS\x00\x02", true},
		{"just the capture pattern", "OggS", true},
		{"short", "Ogg", false},
		{"empty", "", false},
		{"wav", "RIFF\x24\x00\x00\x00WAVE", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.ogg, pipewav.OggPage([]byte(c.content)))
			path := filepath.Join(dir, c.name)
			require.NoError(t, os.WriteFile(path, []byte(c.content), 0o644))
			assert.Equal(t, c.ogg, pipewav.OggFile(path))
		})
	}
	assert.False(t, pipewav.OggFile(filepath.Join(dir, "missing")))
	assert.False(t, pipewav.OggFile(dir), "a folder")
}
