// Package pth reads PyTorch torch.save files holding a dict of tensors (a state dict), in pure Go.
//
// Both of torch.save's formats are read: the zip archive written since torch 1.6 and the legacy format
// (torch.save(..., _use_new_zipfile_serialization=False), and every file written before 1.6, such as
// the published VGGish weights). Values may be torch tensors or parameters of any dtype, including
// views with a storage offset or non-contiguous strides, or numpy arrays (torchvggish's PCA parameters
// are a torch.save'd dict of numpy arrays).
//
// The file is memory-mapped and only the pickled metadata is decoded, so opening costs well under a
// millisecond whatever the file's size. A contiguous tensor's Data is a slice of the mapping, whose
// pages are read in when touched; the mapping is private (copy-on-write), so writing to Data never
// changes the file. File.ReadInto instead copies a tensor from the file straight into a buffer of the
// caller's, such as a new libtorch tensor's memory: the fastest and leanest way to load weights.
//
// Sizes, shapes and offsets are checked against the file before anything is allocated or sliced, and
// a malformed file gives an error naming the file, never a panic. Decoding a pickle allocates in
// proportion to its size, and at most 64 MiB for its objects whatever opcodes it repeats (a state
// dict's pickle needs a few dozen opcodes per tensor). Float values are checked as they are read:
// NaN and infinite weights are an error naming the tensor. Data is little-endian, as torch.save
// writes it on every platform torch runs on; this package assumes a little-endian host.
package pth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"unsafe"

	"github.com/x448/float16"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/vggish-go/vggish/internal/regfile"
)

// DType is a tensor's element type.
type DType int

// Element types found in torch.save files.
const (
	Float32 DType = iota + 1
	Float64
	Float16
	BFloat16
	Int64
	Int32
	Int16
	Int8
	Uint8
	Bool
)

var dtypes = [...]struct {
	name string
	size int
}{
	Float32:  {"float32", 4},
	Float64:  {"float64", 8},
	Float16:  {"float16", 2},
	BFloat16: {"bfloat16", 2},
	Int64:    {"int64", 8},
	Int32:    {"int32", 4},
	Int16:    {"int16", 2},
	Int8:     {"int8", 1},
	Uint8:    {"uint8", 1},
	Bool:     {"bool", 1},
}

func (d DType) valid() bool { return d > 0 && int(d) < len(dtypes) }

// String returns the dtype's name as torch and numpy spell it ("float32", "bfloat16", ...).
func (d DType) String() string {
	if !d.valid() {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypes[d].name
}

// Size returns the size of one element in bytes (0 for an invalid DType).
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypes[d].size
}

// Tensor is one array of a file: contiguous (row-major) little-endian elements.
type Tensor struct {
	DType DType
	Shape []int64 // empty for a scalar
	// Data holds the elements, as many as the product of Shape, DType.Size() bytes each. It usually
	// aliases the file's mapping and is then valid only until File.Close.
	Data []byte
}

// Float32 returns the elements as float32, converting float16, bfloat16 and float64; other dtypes are
// an error, and so is a NaN or infinite element (or a float64 one too large for float32): no weight is
// meant to hold one, and one would silently turn every result into NaN. A float32 tensor whose Data is
// 4-byte aligned (every one of a zip-format file) is returned without copying: the result aliases Data,
// is valid until File.Close, and writing to it writes to Data.
func (t *Tensor) Float32() ([]float32, error) {
	switch t.DType {
	case Float32, Float16, BFloat16, Float64:
	default:
		return nil, fmt.Errorf("pth: cannot convert a %s tensor to float32", t.DType)
	}
	if len(t.Data)%t.DType.Size() != 0 {
		return nil, fmt.Errorf("pth: %d bytes are not a whole number of %s elements", len(t.Data), t.DType)
	}
	n := len(t.Data) / t.DType.Size()
	if n == 0 {
		return []float32{}, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(t.Data))
	if t.DType == Float32 && uintptr(p)%unsafe.Alignof(float32(0)) == 0 {
		if err := checkFinite(t.DType, t.Data, 0); err != nil {
			return nil, err
		}
		return unsafe.Slice((*float32)(p), n), nil
	}
	out := make([]float32, n)
	switch t.DType {
	case Float32: // misaligned (legacy format): one memmove
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), len(t.Data)), t.Data)
	case Float16:
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(t.Data[2*i:])).Float32()
		}
	case BFloat16: // the high half of a float32
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case Float64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	}
	for i, v := range out {
		if v-v != 0 { // NaN or ±Inf
			if t.DType == Float64 {
				return nil, fmt.Errorf("element %d is %v (%g does not fit in float32)", i, v, math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
			}
			return nil, fmt.Errorf("element %d is %v", i, v)
		}
	}
	return out, nil
}

// checkFinite returns an error naming the first NaN or infinite element of data, little-endian
// elements of dtype numbered from first (nil for non-float dtypes).
//
// An element is NaN or infinite when its bits without the sign are at least its exponent mask (all
// exponent bits set); adding top-exponentMask then sets the element's top bit. That test runs on a word
// of 8 bytes at a time, every lane at once, eight words per step: a few hundred megabytes of weights
// take tens of milliseconds.
func checkFinite(dtype DType, data []byte, first int) error {
	var lane, add uint64 // the low lane's sign bit; top - exponent mask, in every lane
	switch dtype {
	case Float32:
		lane, add = 0x80000000, 0x00800000_00800000
	case Float64:
		lane, add = 0x80000000_00000000, 0x00100000_00000000
	case Float16:
		lane, add = 0x8000, 0x0400_0400_0400_0400
	case BFloat16:
		lane, add = 0x8000, 0x0080_0080_0080_0080
	default:
		return nil
	}
	size := dtype.Size()
	top := lane // the sign bit of every lane
	for shift := 8 * size; shift < 64; shift *= 2 {
		top |= top << shift
	}
	bad := func(w uint64) bool { return (w&^top+add)&top != 0 }
	le := binary.LittleEndian
	word := func(j int) uint64 {
		if j+8 <= len(data) {
			return le.Uint64(data[j:])
		}
		var tail [8]byte // zeros are finite
		copy(tail[:], data[j:])
		return le.Uint64(tail[:])
	}
	j := 0
	for ; j+64 <= len(data); j += 64 {
		w := data[j : j+64 : j+64]
		// A lane's sum cannot carry into the next (its sign bit is cleared first), so the sums of
		// eight words can be or'ed and tested at once: one branch per 64 bytes.
		sums := (le.Uint64(w)&^top + add) | (le.Uint64(w[8:])&^top + add) |
			(le.Uint64(w[16:])&^top + add) | (le.Uint64(w[24:])&^top + add) |
			(le.Uint64(w[32:])&^top + add) | (le.Uint64(w[40:])&^top + add) |
			(le.Uint64(w[48:])&^top + add) | (le.Uint64(w[56:])&^top + add)
		if sums&top != 0 {
			break // the words below find the element
		}
	}
	for ; j < len(data); j += 8 {
		if w := word(j); bad(w) {
			for k := 0; k < 8; k += size {
				if bad(w >> (8 * k) & (lane<<1 - 1)) {
					i := (j + k) / size
					return fmt.Errorf("element %d is %v", first+i, float64At(dtype, data[i*size:]))
				}
			}
		}
	}
	return nil
}

// float64At converts the float element at the start of b.
func float64At(dtype DType, b []byte) float64 {
	le := binary.LittleEndian
	switch dtype {
	case Float32:
		return float64(math.Float32frombits(le.Uint32(b)))
	case Float64:
		return math.Float64frombits(le.Uint64(b))
	case Float16:
		return float64(float16.Frombits(le.Uint16(b)).Float32())
	case BFloat16:
		return float64(math.Float32frombits(uint32(le.Uint16(b)) << 16))
	}
	return 0
}

// File is an opened torch.save file.
type File struct {
	// Tensors maps the dict's keys to their values.
	Tensors map[string]*Tensor
	// Keys lists the dict's keys in file order (a state dict's order).
	Keys []string

	file    *os.File
	mapping []byte
}

// Open maps the torch.save file at path and decodes its dict of tensors; no tensor data is read until
// used. The caller must Close the File when done with the tensors' Data.
func Open(path string) (*File, error) {
	file, err := regfile.Open(path) // a named pipe would block, a device never end
	if err != nil {
		return nil, fmt.Errorf("pth: %w", err)
	}
	mapping, err := mapFile(file)
	var f *File
	if err == nil {
		if f, err = decode(mapping); err != nil {
			unix.Munmap(mapping)
		}
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("pth %s: %w", path, err)
	}
	f.file, f.mapping = file, mapping
	return f, nil
}

// mapFile maps the whole file privately (copy-on-write) and read-write, so that callers may modify Data.
func mapFile(file *os.File) ([]byte, error) {
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	switch size := info.Size(); {
	case size == 0:
		return nil, fmt.Errorf("empty file: %w", errNotTorch)
	case size > math.MaxInt:
		return nil, fmt.Errorf("file of %d bytes is too large to map", size)
	default:
		return unix.Mmap(int(file.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	}
}

// ReadInto copies the Data of the tensor at key into dst, which must be as long. A tensor stored as is
// in the file (any contiguous one) is read from the file with pread(2), not through the mapping: that
// is faster where page faults are costly (virtual machines), and the mapping's pages never join the
// process's resident memory, so filling freshly allocated tensors this way keeps the process's peak
// memory near the size of the weights. Like Float32, it refuses a float tensor holding a NaN or an
// infinity, checking the values as they are copied.
//
// The copy runs on up to GOMAXPROCS goroutines, a chunk each at a time: writing into fresh memory is
// bound by per-page costs on virtual machines, and two threads filled the 200 MB of VGGish's first
// linear layer in 0.21-0.23 s where one took 0.35 s.
func (f *File) ReadInto(key string, dst []byte) error {
	t, ok := f.Tensors[key]
	switch {
	case !ok:
		return fmt.Errorf("pth %s: no tensor %q", f.file.Name(), key)
	case len(dst) != len(t.Data):
		return fmt.Errorf("pth %s: tensor %q has %d bytes, not %d", f.file.Name(), key, len(t.Data), len(dst))
	}
	off, inFile := f.offset(t.Data)
	// A chunk at a time, so that the check reads what was just copied from the cache.
	const chunk = 1 << 20
	errs := make([]error, (len(dst)+chunk-1)/chunk)
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range errs {
		at := i * chunk
		part := dst[at:min(at+chunk, len(dst))]
		g.Go(func() error {
			if !inFile { // made while opening: a non-contiguous view or a numpy array
				copy(part, t.Data[at:])
			} else if _, err := f.file.ReadAt(part, off+int64(at)); err != nil {
				errs[i] = err
				return nil
			}
			errs[i] = checkFinite(t.DType, part, at/max(1, t.DType.Size()))
			return nil
		})
	}
	g.Wait()
	// The first chunk's error, whichever finished first: the same file gives the same error.
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("pth %s: tensor %q: %w", f.file.Name(), key, err)
		}
	}
	return nil
}

// offset returns the file offset of data when it is a non-empty slice of the mapping.
func (f *File) offset(data []byte) (int64, bool) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.mapping)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if len(data) == 0 || p < base || p-base >= uintptr(len(f.mapping)) {
		return 0, false
	}
	return int64(p - base), true
}

// Close unmaps and closes the file. Tensors' Data must not be used afterwards.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	err := errors.Join(unix.Munmap(f.mapping), f.file.Close())
	f.mapping = nil
	return err
}
