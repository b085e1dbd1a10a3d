package pth

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// The Python objects a torch.save'd dict of tensors or numpy arrays is built from. Anything else in
// the pickle is an error naming its class.

// callable is a Python function or class that the pickle calls (REDUCE).
type callable func(args ...any) (any, error)

func (c callable) Call(args ...any) (any, error) {
	v, err := c(args...)
	return v, objectErr(err)
}

// storageType is a torch.<Name>Storage class, which tells a storage's dtype.
type storageType struct{ dtype DType }

var storageTypes = map[string]DType{
	"FloatStorage":    Float32,
	"DoubleStorage":   Float64,
	"HalfStorage":     Float16,
	"BFloat16Storage": BFloat16,
	"LongStorage":     Int64,
	"IntStorage":      Int32,
	"ShortStorage":    Int16,
	"CharStorage":     Int8,
	"ByteStorage":     Uint8,
	"BoolStorage":     Bool,
}

// ndarrayClass is numpy.ndarray, the class argument of numpy's _reconstruct.
type ndarrayClass struct{}

func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return callable(rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return callable(rebuildParameter), nil
	case "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct": // numpy 1, 2
		return callable(reconstructArray), nil
	case "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer": // pickle protocol 5
		return callable(arrayFromBuffer), nil
	case "numpy.ndarray":
		return ndarrayClass{}, nil
	case "numpy.dtype":
		return callable(newNumpyDType), nil
	case "_codecs.encode": // how pickle protocol 2 writes bytes, such as a numpy array's data
		return callable(encodeLatin1), nil
	}
	if dtype, ok := storageTypes[name]; ok && (module == "torch" || module == "torch.cuda") {
		return storageType{dtype}, nil
	}
	return nil, fmt.Errorf("unsupported Python class %s.%s", module, name)
}

// storage is a torch storage: numel elements of dtype. data, numel*dtype.Size() bytes, is set once the
// storage's bytes are found in the file.
type storage struct {
	key   string
	dtype DType
	numel int64
	data  []byte
}

// storages resolves torch.save's persistent IDs to storages, one per key.
type storages struct {
	byKey    map[string]*storage
	fileSize int
	idLen    int                    // 5 for the zip format, 6 for the legacy format (view metadata)
	locate   func(s *storage) error // zip format: sets s.data from the entry; legacy storages follow the pickle
}

// load decodes ('storage', storage class, key, location, numel[, view metadata]).
func (ss *storages) load(pid any) (any, error) {
	id, ok := pid.(*types.Tuple)
	if !ok || id.Len() == 0 {
		return nil, fmt.Errorf("persistent ID %s is not a tuple", repr(pid))
	}
	if id.Get(0) == "module" { // the legacy format pickles nn.Module classes so
		return nil, fmt.Errorf("file holds a pickled nn.Module, not a dict of tensors (save its state_dict())")
	}
	if id.Get(0) != "storage" || id.Len() != ss.idLen {
		return nil, fmt.Errorf("unsupported persistent ID %s", repr(id))
	}
	typ, okType := id.Get(1).(storageType)
	key, okKey := id.Get(2).(string)
	numel, okNumel := int64Of(id.Get(4))
	if !okType || !okKey || !okNumel || numel < 0 {
		return nil, fmt.Errorf("malformed storage ID %s", repr(id))
	}
	if ss.idLen == 6 && id.Get(5) != nil {
		return nil, fmt.Errorf("storage %q: storage views (torch < 0.4) are not supported", key)
	}
	if numel > int64(ss.fileSize/typ.dtype.Size()) {
		return nil, fmt.Errorf("storage %q claims %d %s elements, more than the file holds", key, numel, typ.dtype)
	}
	if s, ok := ss.byKey[key]; ok {
		if s.dtype != typ.dtype || s.numel != numel {
			return nil, fmt.Errorf("storage %q is used as %d %s and as %d %s", key, s.numel, s.dtype, numel, typ.dtype)
		}
		return s, nil
	}
	s := &storage{key: key, dtype: typ.dtype, numel: numel}
	if ss.locate != nil {
		if err := ss.locate(s); err != nil {
			return nil, err
		}
	}
	ss.byKey[key] = s
	return s, nil
}

// tensorRef is a tensor as pickled: a view of a storage, resolved to a Tensor once storages are read.
type tensorRef struct {
	storage       *storage
	offset        int64
	shape, stride []int64
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata]). It checks the view against its storage.
func rebuildTensor(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	s, okStorage := args[0].(*storage)
	offset, okOffset := int64Of(args[1])
	shape, okShape := int64s(args[2])
	stride, okStride := int64s(args[3])
	if !okStorage || !okOffset || !okShape || !okStride || len(shape) != len(stride) || offset < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: malformed arguments %s", repr(types.NewTupleFromSlice(args)))
	}
	if _, ok := numElements(shape); !ok || !fits(offset, shape, stride, s.numel) {
		return nil, fmt.Errorf("tensor of shape %v, strides %v and offset %d does not fit in storage %q of %d elements",
			shape, stride, offset, s.key, s.numel)
	}
	return &tensorRef{storage: s, offset: offset, shape: shape, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad, backward_hooks[, state]):
// an nn.Parameter is its tensor.
func rebuildParameter(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	if t, ok := args[0].(*tensorRef); ok {
		return t, nil
	}
	return nil, fmt.Errorf("_rebuild_parameter: data is %s, want a tensor", pyType(args[0]))
}

// numElements returns the product of shape's sizes, and false when one is negative or it overflows.
func numElements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// fits reports whether every element of the view lies in a storage of numel elements.
func fits(offset int64, shape, stride []int64, numel int64) bool {
	last := offset // index of the view's last element
	for i, d := range shape {
		switch {
		case d == 0:
			return offset <= numel
		case stride[i] < 0:
			return false
		case d > 1 && stride[i] > 0:
			if d-1 > (math.MaxInt64-last)/stride[i] {
				return false
			}
			last += (d - 1) * stride[i]
		}
	}
	return last < numel
}

func contiguous(shape, stride []int64) bool {
	want := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// tensor resolves r. A contiguous view aliases its storage's bytes; another is copied into a
// contiguous buffer, taking its size from *copyBudget so that views broadcasting a small storage (zero
// strides) cannot allocate more than the file's size in all.
func (r *tensorRef) tensor(copyBudget *int) (*Tensor, error) {
	s := r.storage
	if s.data == nil {
		return nil, fmt.Errorf("storage %q has no data in the file", s.key)
	}
	size := int64(s.dtype.Size())
	n, _ := numElements(r.shape) // checked by rebuildTensor
	t := &Tensor{DType: s.dtype, Shape: r.shape}
	if contiguous(r.shape, r.stride) {
		t.Data = s.data[r.offset*size : (r.offset+n)*size]
		return t, nil
	}
	if n > int64(*copyBudget)/size {
		return nil, fmt.Errorf("non-contiguous tensor of shape %v would copy more bytes than the file holds", r.shape)
	}
	*copyBudget -= int(n * size)
	t.Data = make([]byte, n*size)
	gather(t.Data, s.data, int(size), r.offset, r.shape, r.stride)
	return t, nil
}

// gather copies the strided view (offset, shape, stride; in elements of size bytes) of src into dst
// in row-major order.
func gather(dst, src []byte, size int, offset int64, shape, stride []int64) {
	index := make([]int64, len(shape))
	pos := offset
	for d := 0; d < len(dst); d += size {
		copy(dst[d:d+size], src[pos*int64(size):])
		for i := len(shape) - 1; i >= 0; i-- { // next index, last dimension fastest
			index[i]++
			pos += stride[i]
			if index[i] < shape[i] {
				break
			}
			pos -= stride[i] * shape[i]
			index[i] = 0
		}
	}
}

// numpyDType is a numpy.dtype: numpy.dtype(code, align, copy), then __setstate__ for the byte order.
type numpyDType struct{ code, byteOrder string }

var numpyDTypes = map[string]DType{"f4": Float32, "f8": Float64, "f2": Float16, "i8": Int64, "i4": Int32,
	"i2": Int16, "i1": Int8, "u1": Uint8, "b1": Bool}

func newNumpyDType(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("numpy.dtype: no arguments")
	}
	code, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("numpy.dtype: code is %s, want str", pyType(args[0]))
	}
	return &numpyDType{code: code, byteOrder: "="}, nil
}

// PySetState takes the state (version, byte order, ...).
func (d *numpyDType) PySetState(state any) error {
	if s, ok := state.(*types.Tuple); ok && s.Len() > 1 {
		if order, ok := s.Get(1).(string); ok {
			d.byteOrder = order
			return nil
		}
	}
	return objectErr(fmt.Errorf("numpy.dtype: malformed state %s", repr(state)))
}

func (d *numpyDType) dtype() (DType, error) {
	dtype, ok := numpyDTypes[d.code]
	switch {
	case !ok:
		return 0, fmt.Errorf("numpy dtype %q is not supported", d.code)
	case d.byteOrder == ">" && dtype.Size() > 1:
		return 0, fmt.Errorf("big-endian numpy arrays are not supported")
	}
	return dtype, nil
}

// ndarray is a numpy array: _reconstruct makes it empty and __setstate__ fills it in.
type ndarray struct{ t *Tensor }

// reconstructArray is numpy.core.multiarray._reconstruct(numpy.ndarray, shape, dtype code).
func reconstructArray(args ...any) (any, error) {
	if len(args) == 0 || args[0] != (ndarrayClass{}) {
		return nil, fmt.Errorf("numpy _reconstruct: only numpy.ndarray is supported")
	}
	return &ndarray{}, nil
}

// PySetState takes the state (version, shape, dtype, is_fortran, data).
func (a *ndarray) PySetState(state any) error {
	s, ok := state.(*types.Tuple)
	if !ok || s.Len() != 5 {
		return objectErr(fmt.Errorf("numpy array: malformed state %s", repr(state)))
	}
	fortran, ok := s.Get(3).(bool)
	if !ok {
		return objectErr(fmt.Errorf("numpy array: malformed state %s", repr(state)))
	}
	var err error
	a.t, err = newArray(s.Get(1), s.Get(2), fortran, s.Get(4))
	return objectErr(err)
}

// arrayFromBuffer is numpy.core.numeric._frombuffer(buffer, dtype, shape, order).
func arrayFromBuffer(args ...any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("numpy _frombuffer: %d arguments, want 4", len(args))
	}
	order, ok := args[3].(string)
	if !ok || (order != "C" && order != "F") {
		return nil, fmt.Errorf("numpy _frombuffer: order %s, want C or F", repr(args[3]))
	}
	t, err := newArray(args[2], args[1], order == "F", args[0])
	return &ndarray{t}, err
}

// newArray makes a Tensor of pickled numpy array data, reordering column-major (Fortran) data.
func newArray(pyShape, pyDType any, fortran bool, pyData any) (*Tensor, error) {
	shape, okShape := int64s(pyShape)
	dt, okDType := pyDType.(*numpyDType)
	var data []byte
	switch d := pyData.(type) {
	case []byte:
		data = d
	case *types.ByteArray:
		data = *d
	case string: // Python 2 str
		data = []byte(d)
	}
	if !okShape || !okDType || data == nil {
		return nil, fmt.Errorf("numpy array: malformed shape %s, dtype %s or data %s", repr(pyShape), pyType(pyDType), pyType(pyData))
	}
	dtype, err := dt.dtype()
	if err != nil {
		return nil, err
	}
	size := int64(dtype.Size())
	n, ok := numElements(shape)
	if !ok || n > int64(len(data))/size || n*size != int64(len(data)) {
		return nil, fmt.Errorf("numpy array of shape %v and dtype %s has %d bytes of data", shape, dtype, len(data))
	}
	if fortran && len(shape) > 1 {
		stride := make([]int64, len(shape))
		step := int64(1)
		for i, d := range shape {
			stride[i] = step
			step *= d
		}
		c := make([]byte, len(data))
		gather(c, data, int(size), 0, shape, stride)
		data = c
	}
	return &Tensor{DType: dtype, Shape: shape, Data: data}, nil
}

// encodeLatin1 is _codecs.encode(str, "latin1"): Python 3's pickle protocol 2 writes bytes b as
// _codecs.encode(b.decode("latin1"), "latin1").
func encodeLatin1(args ...any) (any, error) {
	if len(args) != 2 || (args[1] != "latin1" && args[1] != "latin-1") {
		return nil, fmt.Errorf("_codecs.encode: only (str, 'latin1') is supported")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("_codecs.encode: argument is %s, want str", pyType(args[0]))
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: %q is not latin-1", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// int64s converts a pickled tuple of ints.
func int64s(v any) ([]int64, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, t.Len())
	for i := range out {
		if out[i], ok = int64Of(t.Get(i)); !ok {
			return nil, false
		}
	}
	return out, true
}

// repr formats a decoded value for an error message. Unlike fmt, it is bounded in depth and length:
// a pickle can make huge or self-referencing values, on which gopickle's String methods never return.
func repr(v any) string { return reprDepth(v, 0) }

func reprDepth(v any, depth int) string {
	const maxItems, maxString = 8, 40
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int, float64:
		return fmt.Sprint(v)
	case *big.Int:
		if v.BitLen() > 128 {
			return "a large int"
		}
		return v.String()
	case string:
		if len(v) > maxString {
			return strconv.Quote(v[:maxString]) + "..."
		}
		return strconv.Quote(v)
	case *types.Tuple:
		if depth > 1 {
			return "(...)"
		}
		var items []string
		for i, item := range *v {
			if i == maxItems {
				items = append(items, "...")
				break
			}
			items = append(items, reprDepth(item, depth+1))
		}
		return "(" + strings.Join(items, ", ") + ")"
	}
	return "a " + pyType(v)
}

// pyType names a decoded value's Python type, for errors.
func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *types.Tuple:
		return "tuple"
	case *types.List:
		return "list"
	case *types.Dict, *types.OrderedDict:
		return "dict"
	case *storage:
		return "torch storage"
	case *tensorRef:
		return "tensor"
	case *ndarray:
		return "numpy array"
	}
	return fmt.Sprintf("%T", v)
}
