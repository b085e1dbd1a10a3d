package decode_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-audio/audio"

	"github.com/vggish-go/vggish/decode"
)

// Open decodes a file into mono float64 samples at the file's rate, a chunk at a time.
func ExampleOpen() {
	src, err := decode.Open(filepath.Join("..", "testdata", "golden", "speech_16k_mono_pcm16_2100ms.wav"))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	buf := make([]float64, 4096)
	total := 0
	for {
		n, err := src.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(total, "samples at", src.SampleRate(), "Hz")
	// Output: 33600 samples at 16000 Hz
}

// A file that is not valid audio is a *FormatError; valid audio that is not decoded here, an
// *UnsupportedError.
func ExampleFormatError() {
	dir, err := os.MkdirTemp("", "decode-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cut.wav")
	if err := os.WriteFile(path, []byte("RIFF\x24\x00\x00\x00WAVEfmt "), 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = decode.Open(path)
	var format *decode.FormatError
	var unsupported *decode.UnsupportedError
	switch {
	case errors.As(err, &format):
		fmt.Println("not valid audio:", format.Err)
	case errors.As(err, &unsupported):
		fmt.Println("not decoded here:", unsupported.Err)
	}
	// Output: not valid audio: truncated WAV: chunk header cut short before the fmt chunk
}

// A go-audio buffer of 16-bit stereo becomes mono float64: (left + right) / 2, scaled by 2^15.
func ExampleFromBuffer() {
	buf := &audio.IntBuffer{
		Format:         &audio.Format{NumChannels: 2, SampleRate: 44100},
		SourceBitDepth: 16,
		Data:           []int{16384, 0, -32768, -32768},
	}
	s, err := decode.FromBuffer(buf)
	if err != nil {
		log.Fatal(err)
	}
	p := make([]float64, 8)
	n, err := s.Read(p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.SampleRate(), p[:n])
	// Output: 44100 [0.25 -1]
}

func ExampleSplit() {
	buf := &audio.IntBuffer{
		Format:         &audio.Format{NumChannels: 2, SampleRate: 44100},
		SourceBitDepth: 16,
		Data:           []int{16384, 0, -32768, -32768}, // two frames: (left, right)
	}
	src, err := decode.FromBuffer(buf)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	chans, err := decode.Split(src)
	if err != nil {
		log.Fatal(err)
	}
	// One goroutine per channel, as a channel far ahead of another waits for it.
	out := make([][]float64, len(chans))
	var wg sync.WaitGroup
	for k, c := range chans {
		wg.Go(func() {
			defer c.Close()
			p := make([]float64, 8)
			n, err := c.Read(p)
			if err != nil && err != io.EOF {
				log.Fatal(err)
			}
			out[k] = p[:n]
		})
	}
	wg.Wait()
	fmt.Println(out)
	// Output: [[0.5 -1] [0 -1]]
}
