package resample_test

import (
	"fmt"
	"math"

	"github.com/vggish-go/vggish/preprocess/resample"
)

// Resample a stream chunk by chunk: the result does not depend on the chunk sizes.
func ExampleResampler() {
	r, err := resample.New(48000, 16000)
	if err != nil {
		panic(err)
	}
	chunk := make([]float64, 4800) // 0.1 s of a 1 kHz tone
	var out []float64
	for i := range 10 {
		for j := range chunk {
			chunk[j] = math.Sin(2 * math.Pi * 1000 * float64(i*len(chunk)+j) / 48000)
		}
		out = r.Write(chunk, out)
	}
	out = r.Flush(out)
	fmt.Printf("%d samples, sample 8004 = %.3f (sin(pi/2) = 1)\n", len(out), out[8004])
	// Output: 16000 samples, sample 8004 = 1.000 (sin(pi/2) = 1)
}
