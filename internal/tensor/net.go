package tensor

/*
#include <stdlib.h>
// Defined in torch/adapt/csrc/vggish_net.cpp, compiled into the adapted libtch.
char *vggish_net_new(void **params, const int *flags, int n, int layout, int dtype, void **out);
char *vggish_net_forward(void *net, void *x, const int *stop, void **out);
void vggish_net_free(void *net);
void vggish_set_tf32(int allow);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
	"golang.org/x/sys/cpu"
)

// MKLDNNRuns reports whether the MKLDNN layout runs dtype on this CPU: libtorch's oneDNN path takes
// bfloat16 only on AVX-512 CPUs (BW, VL and DQ), and NewNet fails elsewhere.
func MKLDNNRuns(dtype gotch.DType) bool {
	return dtype != gotch.BFloat16 || cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ
}

// Layer is one layer of a Net: a 3×3 convolution (padding 1) or a linear layer, optionally followed
// by a ReLU and a 2×2 max-pool.
type Layer struct {
	Conv, ReLU, Pool bool
	Weight, Bias     *ts.Tensor // float32, on the net's device
}

// Layout is how a Net keeps its weights and activations.
type Layout int

const (
	// Plain is libtorch's default (NCHW) layout: the reference's kernels.
	Plain Layout = iota
	// MKLDNN keeps activations in oneDNN's blocked layout and the convolution weights reordered for it
	// once, at load (CPU only).
	MKLDNN
	// ChannelsLast keeps activations and weights in NHWC order.
	ChannelsLast
)

// Net is a VGG-style stack of layers run in one native call. The first linear layer takes the
// convolutions' output flattened in (H, W, C) order, as TensorFlow-trained weights expect. A Net is
// safe for concurrent use; Close it to free its weights.
type Net struct {
	p unsafe.Pointer
}

// NewNet prepares layers to run with the given layout and dtype (gotch.Float, gotch.BFloat16 or
// gotch.Half); weights are converted and laid out once, here. NewNet takes the layers' tensors over:
// the Net keeps them, or converts them, in place where it can (fresh memory costs more than the
// conversion), so the caller must not use them afterwards beyond dropping its handles.
func NewNet(layers []Layer, layout Layout, dtype gotch.DType) (*Net, error) {
	params := C.malloc(C.size_t(2*len(layers)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(params)
	ps := unsafe.Slice((*unsafe.Pointer)(params), 2*len(layers))
	flags := make([]C.int, len(layers))
	for i, l := range layers {
		ps[2*i], ps[2*i+1] = unsafe.Pointer(l.Weight.Ctensor()), unsafe.Pointer(l.Bias.Ctensor())
		flags[i] = C.int(flag(l.Conv, 1) | flag(l.ReLU, 2) | flag(l.Pool, 4))
	}
	var out unsafe.Pointer
	if err := cerr(C.vggish_net_new((*unsafe.Pointer)(params), unsafe.SliceData(flags), C.int(len(layers)), C.int(layout), C.int(dtype.CKind()), &out)); err != nil {
		return nil, fmt.Errorf("preparing the network: %w", err)
	}
	return &Net{p: out}, nil
}

func flag(b bool, v int) int {
	if b {
		return v
	}
	return 0
}

// Forward maps x, float32 (B, 1, H, W) on the net's device, to a new float32 (B, D) tensor. A clip's
// row does not depend on the batch it runs in: every product runs at one shape (see the shim). When
// ctx is done the native work stops at the next clip's convolutions and Forward returns ctx's error.
func (n *Net) Forward(ctx context.Context, x *ts.Tensor) (*ts.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The flag lives in C memory: the shim reads it while Go writes it.
	stop := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
		C.free(unsafe.Pointer(stop))
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			atomic.StoreInt32((*int32)(unsafe.Pointer(stop)), 1)
		case <-done:
		}
	}()
	var out unsafe.Pointer
	if err := cerr(C.vggish_net_forward(n.p, unsafe.Pointer(x.Ctensor()), stop, &out)); err != nil {
		if err.Error() == stopped && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return ts.New(lib.Ctensor(out)), nil
}

// stopped is the shim's error when Forward's flag stops it (kStopped).
const stopped = "vggish: stopped"

// Close frees the net's weights.
func (n *Net) Close() {
	if n != nil && n.p != nil {
		C.vggish_net_free(n.p)
		n.p = nil
	}
}

// SetTF32 allows or forbids TensorFloat-32 in CUDA convolutions and matrix products for the process.
// libtorch allows it in cuDNN convolutions by default, which changes float32 results on Ampere and
// later GPUs.
func SetTF32(allow bool) {
	C.vggish_set_tf32(C.int(flag(allow, 1)))
}

// cerr turns a malloc'd error message from the shim into an error, freeing it.
func cerr(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return Err(errors.New(C.GoString(msg)))
}
