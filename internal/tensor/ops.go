package tensor

/*
#include <stdint.h>
// Defined in torch/adapt/csrc, compiled into the adapted libtch.
char *vggish_mm(void *a, void *b, void **out);
char *vggish_log_mel(void *frames, void *window, void *mel, double offset, int64_t fft, void **out);
*/
import "C"

import (
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// MatMul is a b for a (m, k) and b (k, n) on one device, in one dtype. On the CPU it runs on libtorch's
// threads, each taking a slice of the larger operand; each output is one BLAS dot product over k
// whatever the thread count.
func MatMul(a, b *ts.Tensor) (*ts.Tensor, error) {
	var out unsafe.Pointer
	if err := cerr(C.vggish_mm(unsafe.Pointer(a.Ctensor()), unsafe.Pointer(b.Ctensor()), &out)); err != nil {
		return nil, err
	}
	return ts.New(lib.Ctensor(out)), nil
}

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
