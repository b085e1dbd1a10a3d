package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/audio"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A limited source yields every sample up to its limit, and past it an error wrapping ErrTooLong
// naming the source, read mixed or by channel; within the limit it is the source itself.
func TestLimit(t *testing.T) {
	stereo := make([]float64, 2*1000) // 1 s at 1 kHz
	for i := range stereo {
		stereo[i] = float64(i%7) / 8
	}
	open := func(t *testing.T) Source {
		s, err := FromBuffer(&audio.FloatBuffer{Format: &audio.Format{NumChannels: 2, SampleRate: 1000}, Data: stereo})
		require.NoError(t, err)
		return s
	}
	for _, c := range []struct {
		name    string
		seconds float64
		tooLong bool
	}{{"within", 1, false}, {"past", 0.5, true}} {
		t.Run(c.name+" mixed", func(t *testing.T) {
			want, err := readAll(t, open(t), 300, 1)
			require.NoError(t, err)
			got, err := readAll(t, Limit(open(t), c.seconds), 300, 1)
			if c.tooLong {
				require.ErrorIs(t, err, ErrTooLong)
				assert.Contains(t, err.Error(), "limit of 0.5 s")
				assert.LessOrEqual(t, len(got), 500)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
		t.Run(c.name+" split", func(t *testing.T) {
			_, errs := readChannels(t, Limit(open(t), c.seconds), 300)
			if c.tooLong {
				require.ErrorIs(t, errs[0], ErrTooLong)
				require.ErrorIs(t, errs[1], ErrTooLong)
				return
			}
			require.NoError(t, errors.Join(errs...))
		})
	}
	// A source from elsewhere is limited too.
	_, err := readAll(t, Limit(foreignSamples{n: 2000}, 1), 300, 1)
	require.ErrorIs(t, err, ErrTooLong)
}

// Watch reports the frames yielded so far and the channels of each, whether read mixed or by channel,
// up to the last frame.
func TestWatch(t *testing.T) {
	stereo := make([]float64, 2*1000) // 1 s at 1 kHz
	for _, c := range []struct {
		name     string
		split    bool
		channels int
	}{{"mixed", false, 2}, {"split", true, 2}, {"a source from elsewhere", false, 1}} {
		t.Run(c.name, func(t *testing.T) {
			var src Source = struct{ Source }{FromFloat64(make([]float64, 1000), 1000)} // not splittable
			if c.channels == 2 {
				var err error
				src, err = FromBuffer(&audio.FloatBuffer{Format: &audio.Format{NumChannels: 2, SampleRate: 1000}, Data: stereo})
				require.NoError(t, err)
			}
			var (
				mu     sync.Mutex
				frames []int64
			)
			w := Watch(src, 10, func(n int64, channels int) {
				mu.Lock()
				defer mu.Unlock()
				assert.Equal(t, c.channels, channels)
				frames = append(frames, n)
			})
			var err error
			if c.split {
				_, errs := readChannels(t, w, 300)
				err = errors.Join(errs...)
			} else {
				_, err = readAll(t, w, 300, 1)
			}
			require.NoError(t, err)
			require.NotEmpty(t, frames)
			assert.IsIncreasing(t, frames)
			assert.Equal(t, int64(1000), frames[len(frames)-1])
		})
	}
}

type foreignSamples struct{ n int }

func (foreignSamples) SampleRate() int { return 1000 }
func (f foreignSamples) Read(p []float64) (int, error) {
	if f.n == 0 {
		return 0, io.EOF
	}
	return len(p), nil
}
func (foreignSamples) Close() error { return nil }

// ffmpeg opens no protocol but its input's: an HLS playlist on a pipe that points at a server on
// loopback fails without connecting to it.
func TestFFmpegNoNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	connected := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			connected <- struct{}{}
			c.Close()
		}
	}()
	playlist := fmt.Sprintf("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://%s/a.ts\n#EXT-X-ENDLIST\n", l.Addr())
	dir := t.TempDir()
	path := filepath.Join(dir, "list.m3u8")
	require.NoError(t, os.WriteFile(path, []byte(playlist), 0o644))
	for name, open := range map[string]func() (Source, error){
		"pipe": func() (Source, error) { return OpenReader(t.Context(), bytes.NewReader([]byte(playlist)), "upload") },
		"file": func() (Source, error) { return NewFFmpeg(t.Context(), path) },
	} {
		t.Run(name, func(t *testing.T) {
			src, err := open()
			if err == nil {
				_, err = readAll(t, src, 300, 1)
				src.Close()
			}
			require.Error(t, err)
			var fe *FormatError
			assert.ErrorAs(t, err, &fe)
		})
	}
	select {
	case <-connected:
		t.Fatal("ffmpeg connected to the playlist's server")
	case <-time.After(100 * time.Millisecond):
	}
}
