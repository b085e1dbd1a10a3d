package decode

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-audio/audio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readChannels reads every channel of src concurrently, one goroutine each, with reads of random
// sizes, as a per-channel consumer does.
func readChannels(t *testing.T, src Source, maxRead int) ([][]float64, []error) {
	t.Helper()
	chans, err := Split(src)
	require.NoError(t, err)
	out, errs := make([][]float64, len(chans)), make([]error, len(chans))
	var wg sync.WaitGroup
	for k, c := range chans {
		wg.Go(func() { out[k], errs[k] = readAll(t, c, maxRead, uint64(k)) })
	}
	wg.Wait()
	return out, errs
}

// TestSplitMatchesReference: each channel of every reference file (WAV and FLAC, 1 to 9 channels,
// natively and through ffmpeg) is exactly the reference's samples of that channel alone.
func TestSplitMatchesReference(t *testing.T) {
	for _, c := range referenceFiles(t) {
		t.Run(filepath.Base(c.File), func(t *testing.T) {
			require.Len(t, c.ChannelFiles, c.Channels)
			open := map[string]func() (Source, error){
				"Open":   func() (Source, error) { return Open(c.File) },
				"ffmpeg": func() (Source, error) { return NewFFmpeg(t.Context(), c.File) },
			}
			for how, open := range open {
				src, err := open()
				require.NoError(t, err)
				got, errs := readChannels(t, src, 5000)
				require.NoError(t, src.Close())
				require.Len(t, got, c.Channels, how)
				for k, f := range c.ChannelFiles {
					require.NoError(t, errs[k], "%s channel %d", how, k)
					require.Equal(t, readFloat64s(t, f), got[k], "%s channel %d", how, k)
				}
			}
		})
	}
}

// Channels far longer than the queue limit come out whole however unevenly they are read, and a
// channel closed early holds none of the others back.
func TestSplitLongAndClosedChannels(t *testing.T) {
	const frames, channels = 10 * maxAhead, 4
	data := make([]float32, frames*channels)
	for i := range data {
		data[i] = float32(i%channels) + float32(i/channels%1000)/1000
	}
	buf := &audio.Float32Buffer{Format: &audio.Format{NumChannels: channels, SampleRate: 8000}, Data: data}
	for _, closeEarly := range []bool{false, true} {
		t.Run(fmt.Sprint("closeEarly=", closeEarly), func(t *testing.T) {
			src, err := FromBuffer(buf)
			require.NoError(t, err)
			chans, err := Split(src)
			require.NoError(t, err)
			require.Len(t, chans, channels)
			got := make([][]float64, channels)
			var wg sync.WaitGroup
			for k, c := range chans {
				wg.Go(func() {
					defer c.Close()
					p := make([]float64, 1+k*977) // channel 0 reads a sample at a time
					for {
						if closeEarly && k == 3 && len(got[k]) > 100 {
							return
						}
						n, err := c.Read(p)
						got[k] = append(got[k], p[:n]...)
						if err != nil {
							assert.ErrorIs(t, err, io.EOF)
							return
						}
					}
				})
			}
			wg.Wait()
			for k := range channels - map[bool]int{false: 0, true: 1}[closeEarly] {
				require.Len(t, got[k], frames, "channel %d", k)
				for i, v := range got[k] {
					if v != float64(data[i*channels+k]) {
						t.Fatalf("channel %d sample %d: %v, want %v", k, i, v, data[i*channels+k])
					}
				}
			}
			assert.Equal(t, 8000, chans[0].SampleRate())
		})
	}
}

// A NaN in one channel is an error for every channel, after the samples before it.
func TestSplitNonFinite(t *testing.T) {
	data := make([]float64, 3*100)
	data[3*40+2] = math.NaN()
	src, err := FromBuffer(&audio.FloatBuffer{Format: &audio.Format{NumChannels: 3, SampleRate: 16000}, Data: data})
	require.NoError(t, err)
	got, errs := readChannels(t, src, 7)
	for k := range 3 {
		assert.Len(t, got[k], 40, "channel %d", k)
		assert.ErrorContains(t, errs[k], "channel 2, sample 40 is NaN", "channel %d", k)
	}
}

func TestSplitMonoAndForeignSources(t *testing.T) {
	src := FromFloat64([]float64{1, 2, 3}, 16000)
	chans, err := Split(src)
	require.NoError(t, err)
	require.Len(t, chans, 1)
	got, err := readAll(t, chans[0], 2, 0)
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2, 3}, got, "a mono source is its own channel")
	_, err = Split(foreign{})
	assert.ErrorContains(t, err, "cannot be split")
}

type foreign struct{}

func (foreign) SampleRate() int             { return 16000 }
func (foreign) Read([]float64) (int, error) { return 0, errors.New("no") }
func (foreign) Close() error                { return nil }
