package vggish_test

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

func benchModel(b *testing.B, batch int, p vggish.Precision) *vggish.Model {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: reftest.Weights(b, "zip"), Device: "cpu", BatchSize: batch, Threads: reftest.BenchThreads(), Precision: p})
	require.NoError(b, err)
	if got := m.Options().Precision; got != p {
		m.Close()
		b.Skipf("this CPU runs %s as %s", p, got) // fp32's own benchmark times that
	}
	return m
}

// BenchmarkModel times the network alone on random examples, beside the reference's torch at the same
// thread count (reference.py time-model).
func BenchmarkModel(b *testing.B) {
	for _, batch := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchNetwork(b, batch, vggish.FP32) })
	}
}

// BenchmarkLatency is a lone caller's Embed of 1 s at 16 kHz (one clip): the latency of a request
// that has the model to itself, preprocessing included.
func BenchmarkLatency(b *testing.B) {
	m := benchModel(b, vggish.DefaultBatchSize, vggish.FP32)
	defer m.Close()
	x := make([]float32, preprocess.SampleRate)
	for i := range x {
		x[i] = float32(0.3 * math.Sin(float64(i)*0.05))
	}
	_, err := m.Embed(context.Background(), x, preprocess.SampleRate) // warm-up
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		if _, err := m.Embed(context.Background(), x, preprocess.SampleRate); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndToEnd embeds a corpus of 44.1 kHz stereo files (decode, resample, log-mel, network) with
// one worker per core feeding the batching model, beside the reference embedding the same files one
// after another as the Towhee operator does (reference.py time-embed), at the same thread count.
func BenchmarkEndToEnd(b *testing.B) {
	benchEndToEnd(b, reftest.Corpus(b, 8, 44100, 2, 10), vggish.FP32)
}

// BenchmarkPrecision times the network alone (batch 64) and end to end on 16 kHz mono files (where the
// network is nearly all the work) at each precision the CPU runs, beside the float32 reference.
func BenchmarkPrecision(b *testing.B) {
	for _, p := range []vggish.Precision{vggish.FP32, vggish.BF16} {
		b.Run(fmt.Sprintf("network/precision=%s", p), func(b *testing.B) { benchNetwork(b, 64, p) })
		b.Run(fmt.Sprintf("end-to-end/precision=%s", p), func(b *testing.B) {
			benchEndToEnd(b, reftest.Corpus(b, 8, 16000, 1, 10), p)
		})
	}
}

// benchNetwork times EmbedExamples on batch random examples beside the reference's time-model.
func benchNetwork(b *testing.B, batch int, p vggish.Precision) {
	m := benchModel(b, batch, p)
	defer m.Close()
	ex := &preprocess.Examples{Data: make([]float32, batch*preprocess.ExampleFrames*preprocess.MelBins), Starts: make([]float64, batch)}
	rng := rand.New(rand.NewSource(1))
	for i := range ex.Data {
		ex.Data[i] = float32(max(-4, min(4, rng.NormFloat64()))) // within the range of log-mel values
	}
	_, err := m.EmbedExamples(context.Background(), ex) // warm-up
	require.NoError(b, err)
	ref := reftest.Timing(b, "reference.py", "time-model", "--weights", reftest.Weights(b, "zip"),
		"--batch", fmt.Sprint(batch), "--iters", fmt.Sprint(max(3, 64/batch)))
	b.ResetTimer()
	for range b.N {
		if _, err := m.EmbedExamples(context.Background(), ex); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "clips/s")
	reftest.ReportVsReference(b, ref["seconds_per_iter"].(float64))
}

// benchEndToEnd embeds paths with one worker per core feeding the batching model, beside the
// reference's time-embed of the same files.
func benchEndToEnd(b *testing.B, paths []string, p vggish.Precision) {
	m := benchModel(b, 64, p)
	defer m.Close()
	ref := reftest.Timing(b, "reference.py", append([]string{"time-embed", "--weights", reftest.Weights(b, "zip")}, paths...)...)
	clips := 0
	b.ResetTimer()
	for range b.N {
		clips = 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		work := make(chan string)
		for range reftest.BenchThreads() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for path := range work {
					e, err := m.EmbedFile(context.Background(), path)
					if err != nil {
						b.Error(err)
						continue
					}
					mu.Lock()
					clips += e.Rows()
					mu.Unlock()
				}
			}()
		}
		for _, path := range paths {
			work <- path
		}
		close(work)
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(clips*b.N)/b.Elapsed().Seconds(), "clips/s")
	b.ReportMetric(float64(clips)/ref["total_seconds"].(float64), "ref-clips/s")
	reftest.ReportVsReference(b, ref["total_seconds"].(float64))
}

// BenchmarkNew is the cold start: loading the weights (both torch formats) into a ready model, beside
// torch.load of the same file in a fresh Python process (testdata/bench_torch_load.py).
func BenchmarkNew(b *testing.B) {
	for _, format := range []string{"zip", "legacy"} {
		b.Run(format, func(b *testing.B) {
			w := reftest.Weights(b, format)
			ref := reftest.Timing(b, "bench_torch_load.py", "--json", "--runs", "3", w)
			b.ResetTimer()
			for range b.N {
				m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu"})
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
			b.StopTimer()
			reftest.ReportVsReference(b, ref["seconds"].(float64))
		})
	}
}
