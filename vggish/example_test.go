package vggish_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/vggish-go/vggish/vggish"
)

// exampleWeights is set by TestMain: seeded random weights in the published layout. Real code leaves
// WeightsPath empty for the published weights, or names a downloaded vggish-10086976.pth.
var exampleWeights string

func ExampleNew() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: exampleWeights, Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(m.Device(), m.Options().Variant, m.Options().BatchSize)
	// Output: cpu towhee 64
}

func ExampleModel_Embed() {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: exampleWeights})
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
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: exampleWeights})
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
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: exampleWeights, Device: "cpu", Precision: vggish.BF16})
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
