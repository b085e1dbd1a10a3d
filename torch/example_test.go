package torch_test

import (
	"fmt"
	"log"

	"github.com/vggish-go/vggish/torch"
)

// ParseDevice reads the device names that vggish.Options and the command line take. ("auto", not
// shown, is the first CUDA device where libtorch has one, else the CPU.)
func ExampleParseDevice() {
	d, err := torch.ParseDevice(" CPU ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d, d.IsCUDA(), d == torch.CPU)
	_, err = torch.ParseDevice("tpu")
	fmt.Println(err)
	// Output:
	// cpu false true
	// torch: device "tpu": want auto, cpu, cuda or cuda:N
}
