package pth_test

import (
	"fmt"
	"log"

	"github.com/vggish-go/vggish/internal/pth"
)

// Open a state dict and read its tensors as float32, in the file's order.
func ExampleOpen() {
	f, err := pth.Open("vggish-10086976.pth")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close() // after the tensors' Data has been copied where it is needed
	for _, key := range f.Keys {
		t := f.Tensors[key]
		values, err := t.Float32()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(key, t.DType, t.Shape, len(values))
	}
}
