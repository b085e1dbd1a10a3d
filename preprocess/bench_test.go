package preprocess_test

import (
	"context"
	"testing"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
)

// BenchmarkPreprocess times file -> log-mel examples for 60 s of audio, beside the reference's
// preprocessing of the same file (soundfile, resampy, numpy) at the same thread count.
func BenchmarkPreprocess(b *testing.B) {
	for _, c := range []struct {
		name           string
		rate, channels int
	}{{"16kHz_mono", 16000, 1}, {"44.1kHz_stereo", 44100, 2}} {
		b.Run(c.name, func(b *testing.B) {
			if err := torch.SetThreads(reftest.BenchThreads()); err != nil {
				b.Fatal(err)
			}
			path := reftest.Corpus(b, 1, c.rate, c.channels, 60)[0]
			ref := reftest.Timing(b, "reference.py", "time-embed", "--weights", reftest.Weights(b, "zip"), path)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, _, err := preprocess.File(context.Background(), path, preprocess.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reftest.ReportVsReference(b, ref["preprocess_seconds"].(float64))
		})
	}
}
