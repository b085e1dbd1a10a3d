package reftest

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
)

// Corpus writes n 16-bit WAV files of tones in noise (seeded), once per test binary, for benchmarks.
func Corpus(tb testing.TB, n, rate, channels int, seconds float64) []string {
	tb.Helper()
	dir := filepath.Join(WorkDir(tb), fmt.Sprintf("corpus-%d-%d-%d-%g", n, rate, channels, seconds))
	var paths []string
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("clip%02d.wav", i))
		paths = append(paths, path)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := writeTone(path, i, rate, channels, int(seconds*float64(rate))); err != nil {
			tb.Fatal(err)
		}
	}
	return paths
}

func writeTone(path string, seed, rate, channels, frames int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: channels, SampleRate: rate}, SourceBitDepth: 16, Data: make([]int, channels*frames)}
	rng := rand.New(rand.NewSource(int64(seed)))
	for t := range frames {
		s := 0.3*math.Sin(2*math.Pi*float64(200+50*seed)*float64(t)/float64(rate)) + 0.1*rng.NormFloat64()
		for c := range channels {
			buf.Data[channels*t+c] = int(s * float64(12000-2000*c))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := wav.NewEncoder(f, rate, 16, channels, 1)
	if err := enc.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
