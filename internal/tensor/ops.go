package tensor

/*
#include <stdint.h>
#include <stdlib.h>
// Defined in torch/adapt/csrc, compiled into the adapted libtch.
char *vggish_log_mel(void *frames, void *window, void *mel, double offset, int64_t fft, void **out);
char *vggish_polyphase(void *x, void **weights, const int64_t *offsets, int n, int64_t rows, int64_t step, void **out);
*/
import "C"

import (
	"fmt"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// LogMel is log(|rfft(frames × window, fft)| mel + offset) for frames (F, L), window (L) and mel
// (fft/2+1, M) of one dtype on one device: (F, M). On the CPU it runs in chunks of frames on libtorch's
// threads, each chunk's steps while it is in the caches, to the numbers of the same ops on all frames.
func LogMel(frames, window, mel *ts.Tensor, offset float64, fft int) (*ts.Tensor, error) {
	var out unsafe.Pointer
	if err := cerr(C.vggish_log_mel(unsafe.Pointer(frames.Ctensor()), unsafe.Pointer(window.Ctensor()), unsafe.Pointer(mel.Ctensor()),
		C.double(offset), C.int64_t(fft), &out)); err != nil {
		return nil, err
	}
	return ts.New(lib.Ctensor(out)), nil
}

// Polyphase applies the blocks of a filter bank to x (1-D): block j multiplies rows windows of x, the
// first at offsets[j] and each step after the last, as wide as weights[j] has rows, by weights[j]. The
// result is (rows, the blocks' columns), block after block. On the CPU the blocks run on libtorch's
// threads, each one BLAS product, whatever the thread count.
func Polyphase(x *ts.Tensor, weights []*ts.Tensor, offsets []int64, rows, step int) (*ts.Tensor, error) {
	if len(weights) == 0 || len(offsets) != len(weights) {
		return nil, fmt.Errorf("polyphase: %d blocks of weights, %d offsets", len(weights), len(offsets))
	}
	ws := C.malloc(C.size_t(len(weights)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(ws)
	ps := unsafe.Slice((*unsafe.Pointer)(ws), len(weights))
	for i, w := range weights {
		ps[i] = unsafe.Pointer(w.Ctensor())
	}
	var out unsafe.Pointer
	if err := cerr(C.vggish_polyphase(unsafe.Pointer(x.Ctensor()), (*unsafe.Pointer)(ws), (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(offsets))),
		C.int(len(weights)), C.int64_t(rows), C.int64_t(step), &out)); err != nil {
		return nil, err
	}
	return ts.New(lib.Ctensor(out)), nil
}
