package preprocess_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/preprocess"
)

// A long hop does not hold the audio between its examples: with one example every 1000 s, the heap
// over an hour peaks where it peaks over 7.5 minutes.
func TestLongHopMemory(t *testing.T) {
	x := tone(450*16000, 16000)
	peak := func(times int) uint64 {
		runtime.GC()
		src := &looped{Source: decode.FromFloat64(x, 16000), x: x, times: times}
		n := 0
		_, err := preprocess.Stream(context.Background(), src, preprocess.Options{Hop: 1000}, func(e *preprocess.Examples) error {
			n += e.Len()
			return nil
		})
		require.NoError(t, err)
		t.Logf("%g s: %d examples, heap at most %.1f MB between reads", float64(times*len(x))/16000, n, float64(src.peak)/1e6)
		return src.peak
	}
	short, hour := peak(1), peak(8)
	assert.Less(t, hour, short+16<<20)
}

// looped replays x times times, and notes the largest heap it sees when read.
type looped struct {
	decode.Source
	x     []float64
	times int
	peak  uint64
}

func (l *looped) Read(p []float64) (int, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l.peak = max(l.peak, ms.HeapAlloc)
	n, err := l.Source.Read(p)
	if n == 0 && l.times > 1 {
		l.times--
		l.Source = decode.FromFloat64(l.x, 16000)
		return l.Source.Read(p)
	}
	return n, err
}
