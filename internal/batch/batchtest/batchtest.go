// Package batchtest builds audio corpora for the tests of package batch and of `vggish embed`.
package batchtest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vggish-go/vggish/internal/reftest"
)

// Corpus is a folder of audio files for a batch run.
type Corpus struct {
	Root    string
	Good    []string // files that embed, relative to Root (slash-separated)
	Corrupt []string // files that fail to decode
}

// Make writes a corpus of about n files under dir (at least the reference's fixtures and the others
// below): the reference's synthesised WAVs (every rate, sample format, channel count and length
// class, the ones shorter than a clip included), three of them converted by ffmpeg to FLAC, MP3 and
// Ogg Vorbis, tone WAVs of 1 to 2 s at several rates to make up the count, and three corrupt files
// (random bytes named .wav, a WAV cut inside its header, random bytes named .mp3).
func Make(tb testing.TB, dir string, n int) Corpus {
	tb.Helper()
	c := Corpus{Root: dir}
	_, fixtures := reftest.Fixtures(tb)
	for _, f := range fixtures {
		rel := "fixtures/" + filepath.Base(f.Path)
		copyFile(tb, f.Path, filepath.Join(dir, rel))
		c.Good = append(c.Good, rel)
	}
	var sources []string // long enough to give clips, short enough to be quick
	for _, f := range fixtures {
		if f.Seconds >= 1 && f.Seconds <= 3 {
			sources = append(sources, f.Path)
		}
	}
	for i, ext := range []string{"flac", "mp3", "ogg"} {
		src := sources[(5*i)%len(sources)]
		rel := fmt.Sprintf("converted/%s.%s", trimExt(filepath.Base(src)), ext)
		out := filepath.Join(dir, rel)
		mkdir(tb, out)
		if b, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, out).CombinedOutput(); err != nil {
			tb.Fatalf("ffmpeg %s -> %s: %v\n%s", src, out, err, b)
		}
		c.Good = append(c.Good, rel)
	}
	corrupt := map[string][]byte{
		"corrupt/garbage.wav":   random(4096, 1),
		"corrupt/truncated.wav": readFile(tb, fixtures[0].Path)[:30],
		"corrupt/noise.mp3":     random(8192, 2),
	}
	for rel, b := range corrupt {
		write(tb, filepath.Join(dir, rel), b)
		c.Corrupt = append(c.Corrupt, rel)
	}
	// Tones: reftest.Corpus writes them once per test binary, in sets by rate and length.
	sets := []struct {
		rate, channels int
		seconds        float64
	}{{16000, 1, 1.0}, {22050, 1, 1.5}, {44100, 2, 1.2}, {48000, 1, 2.0}, {8000, 2, 1.7}}
	missing := n - len(c.Good) - len(c.Corrupt)
	for i, s := range sets {
		k := missing / len(sets)
		if i < missing%len(sets) {
			k++
		}
		if k <= 0 {
			continue
		}
		for j, p := range reftest.Corpus(tb, k, s.rate, s.channels, s.seconds) {
			rel := fmt.Sprintf("tones/%d/%02d/tone%03d.wav", s.rate, j/10, j)
			copyFile(tb, p, filepath.Join(dir, rel))
			c.Good = append(c.Good, rel)
		}
	}
	return c
}

func trimExt(name string) string { return name[:len(name)-len(filepath.Ext(name))] }

// random is seeded bytes that no decoder takes for audio.
func random(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) * 2654435761
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func mkdir(tb testing.TB, file string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		tb.Fatal(err)
	}
}

func write(tb testing.TB, path string, b []byte) {
	tb.Helper()
	mkdir(tb, path)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	mkdir(tb, dst)
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}
