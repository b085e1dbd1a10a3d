// Package libav decodes compressed audio (FLAC, MP3, Ogg Vorbis and Opus, AAC, WAV in any encoding
// ffmpeg reads) with ffmpeg's libraries, libavformat and libavcodec, linked through cgo, giving the
// samples the ffmpeg command gives [decode.NewFFmpeg], bit for bit, without a process per file.
//
// A decoder crash on a hostile file must fail that file alone, so decoding runs in worker processes:
// this program started again (see [WorkerMain]), each worker decoding many files one after another and
// sending the samples back over a pipe, restarted when it dies. [Use] makes [decode.Open] hand the
// files it does not decode natively to such workers.
//
// Building this package needs the -dev packages of libavformat, libavcodec and libavutil (Debian:
// libavformat-dev libavcodec-dev libavutil-dev) and pkg-config; package decode alone needs neither.
package libav

/*
#cgo pkg-config: libavformat libavcodec libavutil
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/vggish-go/vggish/decode/internal/demuxers"
)

// errLen bounds the messages of the shim.
const errLen = 512

// formats is the format whitelist the files are opened with: libavformat's demuxers but those that
// read other files than their input (see package demuxers).
var formats = sync.OnceValue(func() string {
	list := C.vg_demuxers()
	defer C.vg_free(unsafe.Pointer(list))
	return demuxers.Whitelist(strings.Split(C.GoString(list), "\n"))
})

// decodeFile decodes the first audio stream of the file at path: format is called once with its rate
// and channel count, then samples with each frame's samples, interleaved, valid during the call. An
// error of the decoding (not of format or samples) is an *avError.
func decodeFile(path string, format func(rate, channels int) error, samples func([]float64) error) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	msg := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(msg))
	*msg = 0
	cformats := C.CString(formats())
	defer C.free(unsafe.Pointer(cformats))
	d := C.vg_open(cpath, cformats, msg, errLen)
	if d == nil {
		return &avError{demuxers.Explain(C.GoString(msg))}
	}
	defer C.vg_close(d)
	if err := format(int(C.vg_rate(d)), int(C.vg_channels(d))); err != nil {
		return err
	}
	channels := int(C.vg_channels(d))
	for {
		var p *C.double
		n := int(C.vg_next(d, &p, msg, errLen))
		switch {
		case n < 0:
			return &avError{C.GoString(msg)}
		case n == 0:
			return nil
		}
		if err := samples(unsafe.Slice((*float64)(unsafe.Pointer(p)), n*channels)); err != nil {
			return err
		}
	}
}

// avError is why ffmpeg's libraries could not decode a file.
type avError struct{ msg string }

func (e *avError) Error() string { return e.msg }
