package libav

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/vggish-go/vggish/decode/internal/pipewav"
)

// workerEnv, set to protocolVersion in a process's environment, makes WorkerMain serve as a decoding
// worker. A worker program built from another version of this package (a stale vggish-decoder) refuses
// to serve, saying so, rather than misread the requests.
const (
	workerEnv       = "VGGISH_DECODE_WORKER"
	protocolVersion = "1"
)

// The worker's protocol: the parent writes a request per file, a path after its length (uint32, little
// endian); the worker answers with messages, a type byte and a payload after its length: msgData with
// the next bytes of a WAV stream (the header first, then float64 samples), then msgEnd, or msgError
// with what went wrong (after any data). Only a crash or a kill ends an answer otherwise.
const (
	msgData  = 'D'
	msgEnd   = 'Z'
	msgError = 'E'

	maxMessage = 1 << 28 // bytes: a frame of audio is far less; more is a broken worker
)

// testHookFile, when set (by tests), is called by a worker before it decodes a file.
var testHookFile func(path string)

// WorkerMain serves as a decoding worker, and then exits, when this process was started as one by a
// [Pool]; otherwise it returns at once. Call it first in main (and in TestMain of the tests of a program
// that uses a Pool), before anything else runs or writes to standard output.
func WorkerMain() {
	switch v := os.Getenv(workerEnv); v {
	case "":
		return
	case protocolVersion:
	default:
		fmt.Fprintf(os.Stderr, "%s: asked for decoding protocol %q, this program speaks %q: rebuild it from the same vggish-go as its caller\n",
			filepath.Base(os.Args[0]), v, protocolVersion)
		os.Exit(1)
	}
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vggish decoding worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve decodes the files requested on in, answering on out, until in ends.
func serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	w := bufio.NewWriterSize(out, 1<<16)
	for {
		var size uint32
		if err := binary.Read(r, binary.LittleEndian, &size); err != nil {
			if err == io.EOF {
				return nil // the parent is done
			}
			return err
		}
		if size > maxMessage {
			return fmt.Errorf("request of %d bytes", size)
		}
		path := make([]byte, size)
		if _, err := io.ReadFull(r, path); err != nil {
			return err
		}
		if testHookFile != nil {
			testHookFile(string(path))
		}
		if err := serveFile(w, string(path)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// serveFile answers the request for path. Its error is a failure to write: the parent is gone.
func serveFile(w *bufio.Writer, path string) error {
	var buf []byte
	err := decodeFile(path, func(rate, channels int) error {
		if channels > math.MaxUint16/8 || rate > math.MaxUint32 {
			return &avError{fmt.Sprintf("%d channels at %d Hz: more than a WAV stream holds", channels, rate)}
		}
		return writeMessage(w, msgData, pipewav.Header(rate, channels))
	}, func(samples []float64) error {
		buf = buf[:0]
		for _, v := range samples {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
		return writeMessage(w, msgData, buf)
	})
	var av *avError
	switch {
	case errors.As(err, &av) && av.msg == "opening it: End of file" && pipewav.OggFile(path):
		// An Ogg stream that ends before its first audio packet: an Ogg or Opus file of zero samples,
		// no audio, as decode.NewFFmpeg has it.
		if err := writeMessage(w, msgData, pipewav.Header(pipewav.EmptyRate, 1)); err != nil {
			return err
		}
	case errors.As(err, &av):
		return writeMessage(w, msgError, []byte(av.msg))
	case err != nil:
		return err
	}
	return writeMessage(w, msgEnd, nil)
}

func writeMessage(w *bufio.Writer, typ byte, payload []byte) error {
	w.WriteByte(typ)
	binary.Write(w, binary.LittleEndian, uint32(len(payload)))
	_, err := w.Write(payload)
	return err
}
