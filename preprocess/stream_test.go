package preprocess_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
)

// virtualWAV is a 16-bit PCM WAV file whose samples are computed from their position, so that an hour
// of audio can be read through the real decoder without a file on disk or in memory.
type virtualWAV struct {
	rate, channels int
	frames         int64
	pos            int64
}

const wavHeader = 44

func (v *virtualWAV) size() int64 { return wavHeader + v.frames*int64(v.channels)*2 }

func (v *virtualWAV) header() []byte {
	h := make([]byte, wavHeader)
	data := uint32(v.frames * int64(v.channels) * 2)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], uint16(v.channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(v.rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(v.rate*v.channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(v.channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}

// sample is a slow chirp on channel 0 and a tone on channel 1.
func (v *virtualWAV) sample(i int64) int16 {
	frame, ch := i/int64(v.channels), i%int64(v.channels)
	t := float64(frame) / float64(v.rate)
	f := 200 + 100*float64(ch) + 50*math.Sin(t/60)
	return int16(12000 * math.Sin(2*math.Pi*f*t))
}

func (v *virtualWAV) Read(p []byte) (int, error) {
	if v.pos >= v.size() {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && v.pos < v.size() {
		if v.pos < wavHeader {
			c := copy(p[n:], v.header()[v.pos:])
			n += c
			v.pos += int64(c)
			continue
		}
		off := v.pos - wavHeader
		s := uint16(v.sample(off / 2))
		p[n] = byte(s >> (8 * (off % 2)))
		n++
		v.pos++
	}
	return n, nil
}

func (v *virtualWAV) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += v.pos
	case io.SeekEnd:
		offset += v.size()
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	v.pos = offset
	return offset, nil
}

// An hour of 48 kHz stereo streams through decode, resampling and log-mel with flat memory.
func TestHourLongInputStreamsInFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("an hour of audio: skipped with -short")
	}
	wav := &virtualWAV{rate: 48000, channels: 2, frames: 3600 * 48000}
	src, err := decode.NewWAV(wav, "hour.wav")
	require.NoError(t, err)
	defer src.Close()
	before := reftest.RSSMB(t)
	peak, warm := before, 0.0 // warm: RSS once the first minute is through (the caches and pools built)
	examples := 0
	info, err := preprocess.Stream(context.Background(), src, preprocess.Options{}, func(e *preprocess.Examples) error {
		examples += e.Len()
		rss := reftest.RSSMB(t)
		if warm == 0 && examples >= 63 {
			warm = rss
		}
		peak = math.Max(peak, rss)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1+(3600*16000-preprocess.ExampleSamples)/15360, examples, "whole examples in an hour")
	assert.Equal(t, 3600.0, info.Duration)
	t.Logf("1 h of 48 kHz stereo (%d MB of PCM): %d examples, RSS %.0f MB before, %.0f MB after the first minute, peak %.0f MB (growth %.0f MB from the start, %.0f MB after the first minute)",
		wav.size()>>20, examples, before, warm, peak, peak-before, peak-warm)
	assert.Less(t, peak-before, 200.0, "RSS growth from the start")
	assert.Less(t, peak-warm, 100.0, "RSS growth over the hour, after the first minute")
}

func TestFileErrorsNameTheFileOnce(t *testing.T) {
	dir := t.TempDir()
	wav := &virtualWAV{rate: 16000, channels: 1, frames: 16000}
	whole, err := io.ReadAll(wav)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		data []byte
		opts preprocess.Options
		want string
	}{
		{"truncated.wav", whole[:len(whole)/2], preprocess.Options{}, "truncated"},
		{"hop.wav", whole, preprocess.Options{Hop: -1}, "example hop"},
	} {
		path := dir + "/" + c.name
		require.NoError(t, os.WriteFile(path, c.data, 0o644))
		_, _, err := preprocess.File(context.Background(), path, c.opts)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
		assert.Equal(t, 1, strings.Count(err.Error(), path), "%s: %v", c.name, err)
	}
}
