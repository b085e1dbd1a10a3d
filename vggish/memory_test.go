package vggish_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

// embedClips embeds n clips of one example each, the way a long job calls the model.
func embedClips(tb testing.TB, m *vggish.Model, n int) {
	ex := &preprocess.Examples{Data: make([]float32, 8*preprocess.ExampleFrames*preprocess.MelBins), Starts: make([]float64, 8)}
	for i := range ex.Data {
		ex.Data[i] = float32(i%97) * 0.01
	}
	for done := 0; done < n; done += ex.Len() {
		_, err := m.EmbedExamples(context.Background(), ex)
		require.NoError(tb, err)
	}
}

// No tensor made for a call outlives it, and the process's memory stays flat over many calls.
// BenchmarkMemory runs the 10,000 clips; this test runs fewer to keep `make test` short.
func TestMemoryIsFlat(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 8})
	require.NoError(t, err)
	defer m.Close()
	embedClips(t, m, 200) // warm-up: allocator pools, Go heap
	tensors, before := len(ts.ExistingTensors), reftest.RSSMB(t)
	embedClips(t, m, 400)
	after := reftest.RSSMB(t)
	t.Logf("400 clips after warm-up: RSS %.0f -> %.0f MB (growth %.1f MB), live tensors %d -> %d", before, after, after-before, tensors, len(ts.ExistingTensors))
	assert.Equal(t, tensors, len(ts.ExistingTensors), "tensors made per call must be freed")
	assert.Less(t, after-before, 50.0, "RSS growth")
}

func BenchmarkMemory(b *testing.B) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(b), Device: "cpu", BatchSize: 64})
	require.NoError(b, err)
	defer m.Close()
	embedClips(b, m, 500)
	before := reftest.RSSMB(b)
	b.ResetTimer()
	for range b.N {
		embedClips(b, m, 10000)
	}
	b.StopTimer()
	b.ReportMetric(reftest.RSSMB(b)-before, "MB-RSS-growth")
}
