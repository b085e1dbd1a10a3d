// Command vggish-decoder is the decoding worker vggish starts when it finds it beside itself: it
// decodes compressed audio with ffmpeg's libraries (package decode/libav) for vggish, file after file,
// and does nothing else. It does not link libtorch, so a worker starts in about 0.1 s where vggish
// itself, started as a worker (its fallback), takes a second or so to load libtorch.
package main

import (
	"fmt"
	"os"

	"github.com/vggish-go/vggish/decode/libav"
)

func main() {
	libav.WorkerMain()
	fmt.Fprintln(os.Stderr, "vggish-decoder: vggish starts this program, to decode audio for it; it has no use of its own")
	os.Exit(2)
}
