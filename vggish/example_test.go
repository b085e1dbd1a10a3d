package vggish_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/go-audio/audio"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/vggish"
)

// seededWeights are the tests' weights in the published layout (internal/golden: numbers from a
// formula, written to a temporary file once), which mean nothing. Real code leaves WeightsPath empty
// for the published weights, or names a downloaded vggish-10086976.pth.
func seededWeights() string {
	p, err := golden.WeightsPath()
	if err != nil {
		log.Fatal(err)
	}
	return p
}

func ExampleNew() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: seededWeights(), Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(m.Device(), m.Options().Variant, m.Options().BatchSize)
	// Output: cpu towhee 256
}

func ExampleModel_Embed() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: seededWeights()})
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
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: seededWeights()})
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
func ExampleOptions_precision() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: seededWeights(), Device: "cpu", Precision: vggish.BF16})
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
	fmt.Println(m.Options().Precision, e.Rows(), len(e.Row(0)))
	// Output: bf16 2 128
}

func ExampleEmbeddings_Channel() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: seededWeights(), Channels: vggish.Each})
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
