// Package tensor is vggish-go's glue over gotch: copies between Go slices and tensors, deterministic
// release of tensors (Scope), errors, and devices.
//
// gotch tensors hold native memory that the Go garbage collector cannot see, so code in this module
// never leaves a tensor to a finalizer: every tensor has an owner (usually a Scope) that frees it on
// every path. gotch's Must* helpers call log.Fatal and are not used.
package tensor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/torch"
)

// Err turns a gotch error into a short one: gotch appends a Go stack trace, and libtorch a C++
// backtrace, to the message that matters. A context's errors pass as they are.
func Err(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.Replace(msg, "Libtorch API Error: ", "libtorch: ", 1)
	return errors.New(strings.TrimSpace(msg))
}

// Device is d as gotch names it.
func Device(d torch.Device) gotch.Device {
	if d.IsCUDA() {
		return gotch.CudaBuilder(uint(d.Index()))
	}
	return gotch.CPU
}

// Element is a Go type with a libtorch dtype.
type Element interface {
	~float32 | ~float64 | ~int64 | ~uint8
}

func dtypeOf[T Element]() gotch.DType {
	var zero T
	switch any(zero).(type) {
	case float32:
		return gotch.Float
	case float64:
		return gotch.Double
	case int64:
		return gotch.Int64
	default:
		return gotch.Uint8
	}
}

// FromSlice copies data into a new CPU tensor of the given shape (one copy, no intermediate buffer).
func FromSlice[T Element](data []T, shape ...int64) (*ts.Tensor, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("torch: no shape for %d elements", len(data)) // gotch reads shape[0]
	}
	numel := int64(1)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("torch: negative dimension in shape %v", shape)
		}
		numel *= d
	}
	if numel != int64(len(data)) {
		return nil, fmt.Errorf("torch: %d elements do not fill shape %v", len(data), shape)
	}
	dtype := dtypeOf[T]()
	var t *ts.Tensor
	err := Do(func() error {
		c := lib.AtTensorOfData(unsafe.Pointer(unsafe.SliceData(data)), shape, uint(len(shape)), uint(dtype.Size()), int(dtype.CKind()))
		if err := ts.TorchErr(); err != nil {
			return Err(err)
		}
		t = ts.New(c)
		return nil
	})
	return t, err
}

// ToSlice copies a tensor of any device, dtype and layout to a new Go slice, converting the dtype.
func ToSlice[T Element](t *ts.Tensor) ([]T, error) { return AppendSlice(make([]T, 0), t) }

// AppendSlice appends the elements of a tensor of any device, dtype and layout to dst, converting the
// dtype, and returns the extended slice (dst itself on an error): a caller that keeps dst saves a new
// slice per call.
func AppendSlice[T Element](dst []T, t *ts.Tensor) ([]T, error) {
	dtype := dtypeOf[T]()
	out := dst
	var s Scope
	defer s.Close()
	err := Do(func() error {
		if t.DType() != dtype {
			var err error
			if t, err = s.Own(t.Totype(dtype, false)); err != nil {
				return err
			}
		}
		shape, err := t.Size()
		if err != nil {
			return Err(err)
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if n == 0 {
			return nil
		}
		at := len(out)
		out = slices.Grow(out, int(n))[:at+int(n)]
		lib.AtCopyData(lib.Ctensor(t.Ctensor()), unsafe.Pointer(&out[at]), uint(n), uint(dtype.Size()))
		return Err(ts.TorchErr())
	})
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Fill makes a contiguous CPU tensor of the given shape and dtype and lets fill write its bytes: data
// can go straight from a file into libtorch's memory, in one copy, with nothing zero-filled first.
// fill must not keep dst.
func Fill(dtype gotch.DType, shape []int64, fill func(dst []byte) error) (*ts.Tensor, error) {
	n := int64(dtype.Size())
	for _, d := range shape {
		n *= d
	}
	var t *ts.Tensor
	var p unsafe.Pointer
	err := Do(func() error {
		var err error
		if t, err = ts.Empty(shape, dtype, gotch.CPU); err != nil {
			return Err(err)
		}
		if n > 0 {
			p = lib.AtDataPtr(lib.Ctensor(t.Ctensor()))
			return Err(ts.TorchErr())
		}
		return nil
	})
	if err == nil && n > 0 {
		err = fill(unsafe.Slice((*byte)(p), n))
	}
	if err != nil {
		if t != nil {
			t.Drop()
		}
		return nil, err
	}
	return t, nil
}

// To wraps a call that makes a CPU tensor and moves its result to device (the CPU tensor is dropped),
// as in tensor.To(device)(tensor.FromSlice(x, n)). A copy to a GPU is staged in pinned host memory and
// does not block the host: later work on the device waits for it, the CPU does not.
func To(device gotch.Device) func(*ts.Tensor, error) (*ts.Tensor, error) {
	return func(t *ts.Tensor, err error) (*ts.Tensor, error) {
		if err != nil || !device.IsCuda() {
			return t, err
		}
		var moved *ts.Tensor
		err = Do(func() error {
			pinned, err := t.PinMemory(device, true)
			if err != nil {
				return Err(err)
			}
			moved, err = pinned.ToDevice(device, pinned.DType(), true, false, true)
			return Err(err)
		})
		return moved, err
	}
}
