package libav_test

import (
	"fmt"
	"log"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/decode/libav"
)

// A program that decodes compressed audio with the workers: WorkerMain first in main (the workers are
// this program), then Use; decode.Open (and vggish's EmbedFile, which calls it) then hands them every
// file that is not plain WAV.
func Example() {
	libav.WorkerMain()
	pool, err := libav.Use(libav.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	src, err := decode.Open("speech.flac")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	fmt.Println(src.SampleRate())
}
