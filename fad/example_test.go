package fad_test

import (
	"fmt"
	"log"

	"github.com/vggish-go/vggish/fad"
)

func ExampleDistance() {
	background, eval := fad.New(2), fad.New(2)
	// Rows of two values each: in use, each file's (clips, 128) VGGish embeddings (Embeddings.Data).
	if err := background.Add([]float32{0, 0, 2, 0, 0, 2, 2, 2}); err != nil {
		log.Fatal(err)
	}
	if err := eval.Add([]float32{1, 1, 3, 1, 1, 3, 3, 3}); err != nil {
		log.Fatal(err)
	}
	d, err := fad.Distance(background, eval)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.6f\n", d) // the same spread, the means 1 apart in each dimension
	// Output: 2.000000
}
