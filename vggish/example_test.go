// The examples take the weights from VGGISH_WEIGHTS, a downloaded vggish-10086976.pth; left empty,
// New downloads the published weights once. (Under go test, the test binary points VGGISH_WEIGHTS at
// seeded weights in the published layout unless it is set: the examples' outputs do not depend on
// the weights' numbers.)

package vggish_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/go-audio/audio"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/fad"
	"github.com/vggish-go/vggish/vggish"
)

func ExampleNew() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS"), Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(m.Device(), m.Options().Variant, m.Options().BatchSize)
	// Output: cpu towhee 256
}

func ExampleModel_Embed() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Three seconds of a 440 Hz tone at 16 kHz.
	samples := make([]float32, 3*16000)
	for i := range samples {
		samples[i] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	e, err := m.Embed(context.Background(), samples, 16000)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Rows(), "vectors of", len(e.Row(0)), "starting at", e.Starts)
	// Output: 3 vectors of 128 starting at [0 0.96 1.92]
}

func ExampleEmbeddings_Mean() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	e, err := m.Embed(context.Background(), make([]float32, 5*16000), 16000) // 5 s of silence
	if err != nil {
		log.Fatal(err)
	}
	// One vector for the whole input: the mean (or Max) of its rows.
	mean := e.Mean()
	fmt.Println(e.Rows(), len(mean), mean[0] == e.Row(0)[0]) // silence: every row is the same
	// Output: 5 128 true
}

// A batch job that can spare the embeddings' last digits runs the network in bfloat16. The model's
// warnings (a CPU without bfloat16 units, say) are for its user: the package prints nothing.
// Options().Precision is what runs: bf16, or fp32 on a CPU without AVX-512.
func ExampleOptions_precision() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS"), Device: "cpu", Precision: vggish.BF16})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, w := range m.Warnings() {
		log.Println("warning:", w)
	}
	e, err := m.Embed(context.Background(), make([]float32, 2*16000), 16000)
	if err != nil {
		log.Fatal(err)
	}
	log.Println("precision:", m.Options().Precision)
	fmt.Println(e.Rows(), len(e.Row(0)))
	// Output: 2 128
}

func ExampleEmbeddings_Channel() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS"), Channels: vggish.Each})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Two seconds of stereo at 16 kHz: a tone on the left, silence on the right.
	stereo := make([]float32, 2*2*16000)
	for i := 0; i < 2*16000; i++ {
		stereo[2*i] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	e, err := m.EmbedBuffer(context.Background(), &audio.Float32Buffer{Format: &audio.Format{NumChannels: 2, SampleRate: 16000}, Data: stereo})
	if err != nil {
		log.Fatal(err)
	}
	left, right := e.Channel(0), e.Channel(1)
	fmt.Println(e.Channels, "channels of", left.Rows(), "vectors;", "the same?", left.Row(0)[0] == right.Row(0)[0])
	// Output: 2 channels of 2 vectors; the same? false
}

func ExampleModel_EmbedFile() {
	ctx := context.Background()
	m, err := vggish.New(ctx, vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// 2.1 s of speech: two clips of 0.96 s (WAV natively; mp3, flac, ogg... through ffmpeg).
	e, err := m.EmbedFile(ctx, filepath.Join("..", "testdata", "golden", "speech_16k_mono_pcm16_2100ms.wav"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Rows(), "vectors at", e.Starts, "of", e.Duration, "s")
	// Output: 2 vectors at [0 0.96] of 2.1 s
}

// EmbedReader reads a stream that need not seek, such as an HTTP request's body or standard input, as
// it arrives.
func ExampleModel_EmbedReader() {
	ctx := context.Background()
	m, err := vggish.New(ctx, vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	body, err := os.Open(filepath.Join("..", "testdata", "golden", "speech_16k_mono_pcm16_2100ms.wav")) // or r.Body
	if err != nil {
		log.Fatal(err)
	}
	defer body.Close()
	e, err := m.EmbedReader(ctx, body, "upload")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Rows(), "vectors of", len(e.Row(0)), "from", e.SampleRate, "Hz audio")
	// Output: 2 vectors of 128 from 16000 Hz audio
}

// EmbedBlocks yields the embeddings of a long recording or a live stream a block at a time, as the
// network runs them, in memory that does not grow with the audio.
func ExampleModel_EmbedBlocks() {
	ctx := context.Background()
	m, err := vggish.New(ctx, vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Any decode.Source: a file, decode.OpenReader on a stream, or a program's own.
	src, err := decode.Open(filepath.Join("..", "testdata", "golden", "speech_16k_mono_pcm16_2100ms.wav"))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for block, err := range m.EmbedBlocks(ctx, src) {
		if err != nil {
			log.Fatal(err)
		}
		for i := range block.Rows() {
			fmt.Printf("%.2f s: %d values\n", block.Starts[i], len(block.Row(i)))
		}
	}
	// Output:
	// 0.00 s: 128 values
	// 0.96 s: 128 values
}

// The Fréchet Audio Distance between two sets of files: each set's embeddings gathered into package
// fad's statistics, a file at a time, then compared.
func Example_fad() {
	ctx := context.Background()
	m, err := vggish.New(ctx, vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	dir := filepath.Join("..", "testdata", "golden")
	sets := [][]string{
		{"speech_16k_mono_pcm16_2100ms.wav"},
		{"chirp_22k_stereo_pcm16_1200ms.wav", "noise_8k_mono_u8_1500ms.wav"},
	}
	var stats []*fad.Stats
	for _, files := range sets {
		s := fad.New(vggish.EmbeddingSize)
		for _, f := range files {
			e, err := m.EmbedFile(ctx, filepath.Join(dir, f))
			if err != nil {
				log.Fatal(err)
			}
			if err := s.Add(e.Data); err != nil {
				log.Fatal(err)
			}
		}
		stats = append(stats, s)
	}
	d, err := fad.Distance(stats[0], stats[1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stats[0].N(), "and", stats[1].N(), "clips; FAD > 0:", d > 0)
	// Output: 2 and 2 clips; FAD > 0: true
}

// OnBatch observes the inference loop's forward passes, here a 10 s call run in passes of at most 4
// clips. The function runs on the loop's goroutine and must not block: this one drops a report
// rather than wait for room.
func ExampleOptions_onBatch() {
	passes := make(chan vggish.BatchStats, 64)
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: os.Getenv("VGGISH_WEIGHTS"), Device: "cpu", BatchSize: 4,
		OnBatch: func(s vggish.BatchStats) {
			select {
			case passes <- s:
			default:
			}
		}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Embed(context.Background(), make([]float32, 10*16000), 16000); err != nil {
		log.Fatal(err)
	}
	// A call's passes are reported before it returns.
	for len(passes) > 0 {
		s := <-passes
		fmt.Println(s.Clips, "clips from", s.Requests, "run, error:", s.Err)
	}
	// Output:
	// 4 clips from 1 run, error: <nil>
	// 4 clips from 1 run, error: <nil>
	// 2 clips from 1 run, error: <nil>
}
