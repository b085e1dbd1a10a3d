package torch

import (
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

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
	var err error
	locked(func() {
		c := lib.AtTensorOfData(unsafe.Pointer(unsafe.SliceData(data)), shape, uint(len(shape)), uint(dtype.Size()), int(dtype.CKind()))
		if err = ts.TorchErr(); err == nil {
			t = ts.New(c)
		}
	})
	return t, Err(err)
}

// ToSlice copies a tensor of any device, dtype and layout to a new Go slice, converting the dtype.
func ToSlice[T Element](t *ts.Tensor) ([]T, error) {
	dtype := dtypeOf[T]()
	var s Scope
	defer s.Close()
	if t.DType() != dtype {
		var err error
		if t, err = s.Own(t.Totype(dtype, false)); err != nil {
			return nil, err
		}
	}
	shape, err := t.Size()
	if err != nil {
		return nil, Err(err)
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	out := make([]T, n)
	if n == 0 {
		return out, nil
	}
	locked(func() {
		lib.AtCopyData(lib.Ctensor(t.Ctensor()), unsafe.Pointer(&out[0]), uint(n), uint(dtype.Size()))
		err = ts.TorchErr()
	})
	return out, Err(err)
}

// Fill makes a contiguous CPU tensor of the given shape and dtype and lets fill write its bytes: data
// can go straight from a file into libtorch's memory, in one copy, with nothing zero-filled first.
// fill must not keep dst.
func Fill(dtype gotch.DType, shape []int64, fill func(dst []byte) error) (*ts.Tensor, error) {
	n := int64(dtype.Size())
	for _, d := range shape {
		n *= d
	}
	t, err := ts.Empty(shape, dtype, gotch.CPU)
	if err != nil {
		return nil, Err(err)
	}
	if n > 0 {
		var p unsafe.Pointer
		locked(func() {
			p = lib.AtDataPtr(lib.Ctensor(t.Ctensor()))
			err = ts.TorchErr()
		})
		if err == nil {
			err = fill(unsafe.Slice((*byte)(p), n))
		}
	}
	if err != nil {
		t.Drop()
		return nil, Err(err)
	}
	return t, nil
}
