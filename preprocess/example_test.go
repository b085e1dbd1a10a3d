package preprocess_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/preprocess"
)

// Three seconds of a tone at 44.1 kHz give three examples of 96 log-mel frames by 64 bands, one
// every 0.96 s; with Pad the last, partial 0.12 s makes a fourth.
func ExampleRead() {
	samples := make([]float32, 3*44100)
	for i := range samples {
		samples[i] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i)/44100))
	}
	for _, tail := range []preprocess.Tail{preprocess.Drop, preprocess.Pad} {
		ex, info, err := preprocess.Read(context.Background(), decode.FromFloat32(samples, 44100), preprocess.Options{Tail: tail})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tail, ex.Len(), "examples of", len(ex.Example(0)), "values, starting at", ex.Starts, "of", info.Duration, "s")
	}
	// Output:
	// drop 3 examples of 6144 values, starting at [0 0.96 1.92] of 3 s
	// pad 4 examples of 6144 values, starting at [0 0.96 1.92 2.88] of 3 s
}

// Stream hands a long input over a block of examples at a time.
func ExampleStream() {
	silence := decode.FromFloat64(make([]float64, 70*16000), 16000) // 70 s
	blocks := 0
	info, err := preprocess.Stream(context.Background(), silence, preprocess.Options{}, func(ex *preprocess.Examples) error {
		blocks++
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Examples, "examples in", blocks, "blocks")
	// Output: 72 examples in 5 blocks
}
