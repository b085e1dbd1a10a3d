package vggish_test

import (
	"context"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

// EmbedSource and EmbedBlocks give EmbedFile's numbers to the bit, mixed or channel by channel.
func TestStreamingEqualsEmbedFile(t *testing.T) {
	wav := reftest.Corpus(t, 1, 44100, 2, 40.5)[0] // 42 clips: three blocks, the last partial
	for _, channels := range []vggish.Channels{vggish.Mix, vggish.Each} {
		t.Run(channels.String(), func(t *testing.T) {
			// A batch per block for Each, whose channels' blocks would otherwise be packed together in
			// an order that varies from run to run: a clip's embedding still moves in its last bits
			// with the batch it runs in (EmbedFile against itself, Each, batch 24: 4714 of 32256
			// values differed over 3 runs), which the inference loop's determinism work addresses.
			batch := 24
			if channels == vggish.Each {
				batch = preprocess.BlockExamples
			}
			m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Channels: channels, BatchSize: batch})
			require.NoError(t, err)
			defer m.Close()
			ctx := context.Background()
			want, err := m.EmbedFile(ctx, wav)
			require.NoError(t, err)
			require.Equal(t, 42*max(1, want.Channels), want.Rows())

			src, err := decode.Open(wav)
			require.NoError(t, err)
			got, err := m.EmbedSource(ctx, src)
			require.NoError(t, err)
			require.NoError(t, src.Close())
			assert.Equal(t, want, got)

			src, err = decode.Open(wav)
			require.NoError(t, err)
			defer src.Close()
			streams := make([]*vggish.Embeddings, max(1, want.Channels))
			for i := range streams {
				streams[i] = &vggish.Embeddings{}
			}
			blocks := 0
			for b, err := range m.EmbedBlocks(ctx, src) {
				require.NoError(t, err)
				assert.Equal(t, want.Channels, b.Channels)
				assert.Equal(t, 44100, b.SampleRate)
				for c, s := range streams {
					part := b
					if b.Channels > 0 {
						part = b.Channel(c)
					}
					s.Data, s.Starts = append(s.Data, part.Data...), append(s.Starts, part.Starts...)
				}
				blocks++
			}
			assert.Equal(t, 3, blocks, "blocks of preprocess.BlockExamples clips")
			for c, s := range streams {
				w := want
				if want.Channels > 0 {
					w = want.Channel(c)
				}
				assert.Equal(t, w.Data, s.Data, "channel %d", c)
				assert.Equal(t, w.Starts, s.Starts, "channel %d", c)
			}
		})
	}
}

// Breaking out of EmbedBlocks stops the reading: the source is read no further, and the model serves
// the next call.
func TestEmbedBlocksBreak(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	src := &toneSource{rate: 16000, samples: 3600 * 16000}
	for b, err := range m.EmbedBlocks(context.Background(), src) {
		require.NoError(t, err)
		assert.Equal(t, preprocess.BlockExamples, b.Rows())
		break
	}
	read := src.pos
	// What is read ahead is bounded by the blocks queued for the consumer and the model's queue.
	assert.Less(t, read, int64(16000*120), "samples read before the break was seen: a few blocks, not the hour")
	e, err := m.Embed(context.Background(), make([]float32, 16000), 16000)
	require.NoError(t, err)
	assert.Equal(t, 1, e.Rows())
	assert.Equal(t, read, src.pos, "nothing reads the source after the loop")
}

// An hour of audio from a program's own Source streams through EmbedBlocks in flat memory. With a
// 10 s hop (360 clips) to keep the test short: the whole hour is still read, resampled-free (16 kHz)
// and framed, and every block goes through the network and back.
func TestEmbedBlocksHourInFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("an hour of audio: skipped with -short")
	}
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Preprocess: preprocess.Options{Hop: 10}})
	require.NoError(t, err)
	defer m.Close()
	src := &toneSource{rate: 16000, samples: 3600 * 16000}
	before := reftest.RSSMB(t)
	peak, warm, rows := before, 0.0, 0
	for b, err := range m.EmbedBlocks(context.Background(), src) {
		require.NoError(t, err)
		rows += b.Rows()
		rss := reftest.RSSMB(t)
		if warm == 0 && rows >= 6 { // the first minute
			warm = rss
		}
		peak = math.Max(peak, rss)
	}
	assert.Equal(t, 360, rows)
	t.Logf("1 h through EmbedBlocks: RSS %.0f MB before, %.0f MB after the first minute, peak %.0f MB", before, warm, peak)
	assert.Less(t, peak-warm, 50.0, "RSS growth over the hour, after the first minute")
}

// toneSource is a program's own decode.Source: samples of a tone computed from their position.
type toneSource struct {
	rate         int
	samples, pos int64
}

func (s *toneSource) SampleRate() int { return s.rate }
func (s *toneSource) Close() error    { return nil }
func (s *toneSource) Read(p []float64) (int, error) {
	n := int(min(int64(len(p)), s.samples-s.pos))
	if n == 0 {
		return 0, io.EOF
	}
	for i := range n {
		p[i] = 0.5 * math.Sin(2*math.Pi*440*float64(s.pos+int64(i))/float64(s.rate))
	}
	s.pos += int64(n)
	return n, nil
}
