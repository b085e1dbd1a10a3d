package demuxers

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWhitelist(t *testing.T) {
	assert.Equal(t, "aac,mov,mp4,m4a,3gp,3g2,mj2,wav",
		Whitelist([]string{"aac", "concat", "mov,mp4,m4a,3gp,3g2,mj2", "hls", "dash", "imf", "image2", "wav"}))
	assert.Equal(t, "image2pipe", Whitelist([]string{"image2pipe"}), "a name is refused whole, not by its prefix")
}

func TestExplain(t *testing.T) {
	assert.Equal(t, "file:x.mp3: "+Reason+" | Invalid argument",
		Explain("file:x.mp3: Format not on whitelist 'aa,aac,mov,mp4' | Invalid argument"))
	assert.Equal(t, "opening it: Invalid argument ("+Reason+")", Explain("opening it: Invalid argument (Format not on whitelist 'aa,aac,ac3)"),
		"the list cut short")
	assert.Equal(t, "Invalid data found", Explain("Invalid data found"))
}

// ffmpeg's `-demuxers` (5.1 to 7.1 print it alike), and this machine's.
func TestParseList(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      []string
	}{
		{"ffmpeg", "File formats:\n D. = Demuxing supported\n .E = Muxing supported\n --\n D  3dostr          3DO STR\n DE wav             WAV / WAVE (Waveform Audio)\n  E mp3             MP3 (MPEG audio layer 3)\n D  mov,mp4,m4a,3gp,3g2,mj2 QuickTime / MOV\n",
			[]string{"3dostr", "wav", "mov,mp4,m4a,3gp,3g2,mj2"}},
		{"no list", "ffmpeg: unrecognized option\n", nil},
	} {
		assert.Equal(t, c.want, ParseList(c.out), c.name)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-demuxers").Output()
	if err != nil {
		t.Skipf("no ffmpeg command: %v", err)
	}
	names := ParseList(string(out))
	require.Contains(t, names, "concat")
	assert.Contains(t, names, "wav")
	assert.NotContains(t, Whitelist(names), "concat")
}
