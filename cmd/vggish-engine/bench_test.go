package main

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// process is what a finished command cost.
type process struct {
	wall, sys time.Duration
	rssMB     float64 // peak
}

// runProcess runs a command to completion and returns its wall time, system CPU time and peak RSS.
func runProcess(tb testing.TB, name string, args ...string) process {
	tb.Helper()
	cmd := exec.Command(name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	require.NoError(tb, err, "%s %v: %s", name, args, out)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return process{wall: wall, sys: time.Duration(ru.Stime.Nano()), rssMB: float64(ru.Maxrss) / 1024}
}

// BenchmarkColdStart is what a user waits for: `vggish embed --weights W --output o.npy` on a 10 s file,
// from process start to exit, beside the reference doing the same from a fresh interpreter. It also
// reports both processes' peak RSS.
func BenchmarkColdStart(b *testing.B) {
	bin := buildBinary(b)
	weights := reftest.Weights(b, "legacy") // the published file's format
	wav := reftest.Corpus(b, 1, 44100, 2, 10)[0]
	dir := b.TempDir()
	// Warm the page cache for both, as for any program run twice.
	runProcess(b, bin, "embed", "--weights", weights, "--output", filepath.Join(dir, "o.npy"), wav)
	var refWall time.Duration
	var goRSS, refRSS float64
	b.ResetTimer()
	for range b.N {
		p := runProcess(b, bin, "embed", "--weights", weights, "--output", filepath.Join(dir, "o.npy"), wav)
		goRSS = max(goRSS, p.rssMB)
		b.StopTimer()
		p = runProcess(b, reftest.Interpreter(), reftest.Script("reference.py"), "embed", "--weights", weights, "--out", dir, wav)
		refWall, refRSS = refWall+p.wall, max(refRSS, p.rssMB)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(goRSS, "peak-RSS-MB")
	b.ReportMetric(refRSS, "ref-peak-RSS-MB")
	reftest.ReportVsReference(b, refWall.Seconds()/float64(b.N))
}

// A process that loads the weights and embeds one file stays under 800 MB.
func TestColdStartPeakMemory(t *testing.T) {
	bin := buildBinary(t)
	weights := reftest.Weights(t, "legacy")
	wav := reftest.Corpus(t, 1, 44100, 2, 10)[0]
	out := filepath.Join(t.TempDir(), "o.npy")
	p := runProcess(t, bin, "embed", "--weights", weights, "--output", out, wav)
	t.Logf("vggish embed of 10 s (44.1 kHz stereo): %v, peak RSS %.0f MB", p.wall.Round(time.Millisecond), p.rssMB)
	assert.Less(t, p.rssMB, 800.0)
	assert.FileExists(t, out)
	_, err := os.Stat(out)
	require.NoError(t, err)
}

// BenchmarkCorpus is the batch job as users run it, from process start to exit: `vggish embed
// --out-dir` at its defaults (no flag) over a corpus, beside the reference embedding the same files
// (torchvggish with the model loaded once, reference.py embed) at one thread per core. It reports the
// clips per second, the share of wall time spent in the kernel (page faults, mostly) and peak RSS.
// Compressed corpora are the WAV ones encoded by ffmpeg: short clips are where a decoder's start-up
// per file would show.
func BenchmarkCorpus(b *testing.B) {
	bin := buildBinary(b)
	weights := reftest.Weights(b, "legacy")
	for _, c := range []struct {
		name           string
		files          int
		rate, channels int
		seconds        float64
		codec, ext     string // ffmpeg's encoder and the files' extension; none: WAV
	}{
		{"8x30s_16kHz_mono", 8, 16000, 1, 30, "", ""},
		{"8x30s_44.1kHz_stereo", 8, 44100, 2, 30, "", ""},
		{"240x1s_16kHz_mono", 240, 16000, 1, 1, "", ""},
		{"240x1s_16kHz_mono_FLAC", 240, 16000, 1, 1, "flac", ".flac"},
		{"60x1s_16kHz_mono_MP3", 60, 16000, 1, 1, "libmp3lame", ".mp3"},
		{"60x1s_16kHz_mono_Vorbis", 60, 16000, 1, 1, "libvorbis", ".ogg"},
	} {
		b.Run(c.name, func(b *testing.B) {
			files := reftest.Corpus(b, c.files, c.rate, c.channels, c.seconds)
			if c.codec != "" {
				files = encoded(b, files, c.codec, c.ext)
			}
			dir := b.TempDir()
			embed := append([]string{"embed", "--weights", weights, "--overwrite", "--out-dir", filepath.Join(dir, "go")}, files...)
			reference := append([]string{reftest.Script("reference.py"), "embed", "--threads", strconv.Itoa(runtime.NumCPU()),
				"--weights", weights, "--out", filepath.Join(dir, "ref")}, files...)
			runProcess(b, bin, embed...) // warm the page cache, as for any program run twice
			var sys, refWall time.Duration
			var rss float64
			b.ResetTimer()
			for range b.N {
				p := runProcess(b, bin, embed...)
				sys, rss = sys+p.sys, max(rss, p.rssMB)
				b.StopTimer()
				refWall += runProcess(b, reftest.Interpreter(), reference...).wall
				b.StartTimer()
			}
			b.StopTimer()
			clips := float64(c.files) * math.Floor((c.seconds*16000-preprocess.ExampleSamples)/(preprocess.FrameHop*preprocess.ExampleFrames)+1)
			b.ReportMetric(clips*float64(b.N)/b.Elapsed().Seconds(), "clips/s")
			b.ReportMetric(100*sys.Seconds()/b.Elapsed().Seconds(), "sys-%")
			b.ReportMetric(rss, "peak-RSS-MB")
			reftest.ReportVsReference(b, refWall.Seconds()/float64(b.N))
		})
	}
}

// encoded is files encoded by ffmpeg's codec into files named ext beside them, made once.
func encoded(b *testing.B, files []string, codec, ext string) []string {
	b.Helper()
	var out []string
	for _, f := range files {
		path := strings.TrimSuffix(f, ".wav") + ext
		out = append(out, path)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		part := strings.TrimSuffix(f, ".wav") + ".part" + ext // ffmpeg takes the format from the name
		msg, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", f, "-c:a", codec, part).CombinedOutput()
		require.NoError(b, err, "%s", msg)
		require.NoError(b, os.Rename(part, path))
	}
	return out
}

// BenchmarkPipeline is how close the pipeline keeps to the network, at each precision the CPU runs
// natively: the network alone on batches of 256 (in this process), `vggish embed` in its loop (the
// clips/s of its summary line: decoding to the last output) and from process start to exit, on 8 files
// of 30 s at 16 kHz mono and at 44.1 kHz stereo, beside the float32 reference's start to exit.
//
// It also reports the loop's ceiling on this machine. The loop needs the network's CPU time per clip
// and preprocessing's, and has the usable CPUs: it can run at most usable / (network + preprocessing)
// clips a second, against the network alone's cores it keeps busy / network. Where the network alone
// keeps every usable CPU busy (2 cores here: 1.8–2.0), each CPU second of preprocessing is taken from
// it. CPU times are getrusage's; preprocessing's is measured on one thread, in this process.
func BenchmarkPipeline(b *testing.B) {
	bin := buildBinary(b)
	weights := reftest.Weights(b, "legacy")
	summary := regexp.MustCompile(`\(\d+ clips, ([0-9.]+) clips/s\)`)
	for _, p := range []vggish.Precision{vggish.FP32, vggish.BF16} {
		network := networkAlone(b, weights, p, 256)
		for _, c := range []struct{ rate, channels int }{{16000, 1}, {44100, 2}} {
			b.Run(fmt.Sprintf("precision=%s/%dHz_%dch", p, c.rate, c.channels), func(b *testing.B) {
				if !network.native {
					b.Skipf("this CPU does not run %s natively", p)
				}
				files := reftest.Corpus(b, 8, c.rate, c.channels, 30)
				pre := preprocessingCPU(b, files)
				usable, _ := torch.UsableCPUs()
				ceiling := min(1, float64(usable)*network.cpuPerClip/(network.cores*(network.cpuPerClip+pre)))
				dir := b.TempDir()
				embed := append([]string{"embed", "--precision", string(p), "--weights", weights, "--overwrite", "--out-dir", dir}, files...)
				ref := append([]string{reftest.Script("reference.py"), "embed", "--threads", strconv.Itoa(runtime.NumCPU()),
					"--weights", weights, "--out", filepath.Join(dir, "ref")}, files...)
				runProcess(b, bin, embed...) // warm the page cache, as for any program run twice
				var loop, refWall float64
				b.ResetTimer()
				for range b.N {
					out, err := exec.Command(bin, embed...).CombinedOutput()
					require.NoError(b, err, "%s", out)
					m := summary.FindSubmatch(out)
					require.NotNil(b, m, "no summary line in %s", out)
					rate, err := strconv.ParseFloat(string(m[1]), 64)
					require.NoError(b, err)
					loop += rate
					b.StopTimer()
					refWall += runProcess(b, reftest.Interpreter(), ref...).wall.Seconds()
					b.StartTimer()
				}
				b.StopTimer()
				loop /= float64(b.N)
				b.ReportMetric(network.clipsPerSecond, "network-clips/s")
				b.ReportMetric(loop, "loop-clips/s")
				b.ReportMetric(100*loop/network.clipsPerSecond, "loop-%-of-network")
				b.ReportMetric(100*ceiling, "ceiling-%-of-network")
				b.ReportMetric(1000*network.cpuPerClip, "network-cpu-ms/clip")
				b.ReportMetric(network.cores, "network-cores")
				b.ReportMetric(1000*pre, "preprocessing-cpu-ms/clip")
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "start-to-exit-s")
				reftest.ReportVsReference(b, refWall/float64(b.N))
			})
		}
	}
}

// alone is the network's speed on batches of random examples, from the best of three passes after a
// warm-up, and its CPU time per clip and the cores it keeps busy over those three.
type alone struct {
	clipsPerSecond float64
	cpuPerClip     float64 // seconds
	cores          float64
	native         bool // whether the CPU runs the precision natively; the rest is zero if not
}

func networkAlone(b *testing.B, weights string, p vggish.Precision, batch int) alone {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: weights, Device: "cpu", Precision: p, BatchSize: batch})
	require.NoError(b, err)
	defer m.Close()
	if len(m.Warnings()) > 0 {
		return alone{}
	}
	ex := &preprocess.Examples{Data: make([]float32, batch*preprocess.ExampleFrames*preprocess.MelBins), Starts: make([]float64, batch)}
	rng := rand.New(rand.NewSource(1))
	for i := range ex.Data {
		ex.Data[i] = float32(max(-4, min(4, rng.NormFloat64()))) // within the range of log-mel values
	}
	embed := func() time.Duration {
		start := time.Now()
		_, err := m.EmbedExamples(context.Background(), ex)
		require.NoError(b, err)
		return time.Since(start)
	}
	embed() // the first pass, cold
	best, wall, cpu := time.Duration(math.MaxInt64), time.Duration(0), cpuTime(b)
	for range 3 {
		d := embed()
		best, wall = min(best, d), wall+d
	}
	cpu = cpuTime(b) - cpu
	return alone{float64(batch) / best.Seconds(), cpu.Seconds() / float64(3*batch), cpu.Seconds() / wall.Seconds(), true}
}

// preprocessingCPU is the CPU time per clip that decoding and preprocessing files takes on one of
// libtorch's threads (more would count the time their pool spins): the least of three rounds, after a
// warm-up on the first file.
func preprocessingCPU(b *testing.B, files []string) float64 {
	before := torch.Threads()
	require.NoError(b, torch.SetThreads(1))
	defer func() { require.NoError(b, torch.SetThreads(before)) }()
	read := func(path string) int {
		ex, _, err := preprocess.File(context.Background(), path, preprocess.Options{})
		require.NoError(b, err)
		return len(ex.Starts)
	}
	read(files[0])
	least := time.Duration(math.MaxInt64)
	clips := 0
	for range 3 {
		clips = 0
		cpu := cpuTime(b)
		for _, f := range files {
			clips += read(f)
		}
		least = min(least, cpuTime(b)-cpu)
	}
	return least.Seconds() / float64(clips)
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
