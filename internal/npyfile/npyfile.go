// Package npyfile writes NumPy .npy files and .npz archives of them, atomically, and reads .npy files.
//
// The data goes through codeberg.org/sbinet/npyio. npyio takes an array's shape from its Go type and so
// cannot write an array with no rows, nor one whose length is known only at the end; for those cases
// this package writes the header itself (NumPy format 1.0: magic, version, little-endian header length,
// a dict literal padded to 64 bytes).
package npyfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"codeberg.org/sbinet/npyio"
	"codeberg.org/sbinet/npyio/npz"

	"github.com/vggish-go/vggish/internal/atomicfile"
)

// Element is a type Write can store.
type Element interface {
	float32 | float64 | uint8 | int64
}

// Write stores data as a C-order array of the given shape in path. The file appears complete or not at
// all: it is written to a temporary file beside path and renamed. A shape of no dimensions is a scalar.
func Write[T Element](path string, data []T, shape ...int) error {
	var buf bytes.Buffer
	if err := Encode(&buf, data, shape...); err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	return writeAtomic("npy", path, buf.Bytes())
}

// Encode writes data as a C-order array of the given shape (as Write's) in NPY format to w: standard
// output, say.
func Encode[T Element](w io.Writer, data []T, shape ...int) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("shape %v: a negative dimension", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("%d values do not fill shape %v", len(data), shape)
	}
	if len(data) == 0 {
		return emptyHeader(w, data, shape)
	}
	if len(shape) == 0 {
		return npyio.Write(w, data[0])
	}
	return npyio.Write(w, shaped(data, shape))
}

// shaped copies data into a Go value of the given shape, []T or [][d1]...[dk]T: npyio takes an
// array's shape from its type.
func shaped[T Element](data []T, shape []int) any {
	row := reflect.TypeFor[T]()
	for i := len(shape) - 1; i >= 1; i-- {
		row = reflect.ArrayOf(shape[i], row)
	}
	v := reflect.MakeSlice(reflect.SliceOf(row), shape[0], shape[0])
	fill(v, reflect.ValueOf(data))
	return v.Interface()
}

// fill copies the flat src into dst, a slice or array of arrays nested to any depth, in C order, and
// returns the count of values copied.
func fill(dst, src reflect.Value) int {
	if dst.Type().Elem().Kind() != reflect.Array {
		return reflect.Copy(dst, src)
	}
	n := 0
	for i := range dst.Len() {
		n += fill(dst.Index(i), src.Slice(n, src.Len()))
	}
	return n
}

func emptyHeader[T Element](w io.Writer, _ []T, shape []int) error {
	var zero T
	descr := map[any]string{float32(0): "'<f4'", float64(0): "'<f8'", uint8(0): "'|u1'", int64(0): "'<i8'"}[any(zero)]
	_, err := w.Write(header(descr, shape, 0))
	return err
}

// header is a NumPy format 1.0 header (magic, version, little-endian header length, a dict literal)
// for a C-order array, its dict padded with spaces so that the header is at least size bytes long and
// a multiple of 64.
func header(descr string, shape []int, size int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': %s, 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// magic (6) + version (2) + length (2) + dict + padding + newline.
	n := max(size, 10+len(dict)+1)
	n += (64 - n%64) % 64
	dict += strings.Repeat(" ", n-10-len(dict)-1) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	binary.LittleEndian.PutUint16(b[8:], uint16(len(dict)))
	return append(b, dict...)
}

// Writer streams float32 rows of a fixed inner shape into a .npy file, for arrays whose length is
// known only at the end: memory does not grow with the array. The header is written first with room
// for any row count and rewritten in place by Close. Like Write's, the file appears whole or not at all.
type Writer struct {
	path  string
	f     *atomicfile.File
	buf   *bufio.Writer
	inner []int
	per   int // values per row
	rows  int
	size  int // header bytes
}

// Create starts a float32 array of shape (rows, inner...) at path.
func Create(path string, inner ...int) (*Writer, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	w := &Writer{path: path, f: f, buf: bufio.NewWriterSize(f, 1<<20), inner: inner, per: 1}
	for _, d := range inner {
		w.per *= d
	}
	h := header("'<f4'", append([]int{math.MaxInt64}, inner...), 0) // the widest row count
	w.size = len(h)
	if _, err := w.buf.Write(h); err != nil {
		w.Abort()
		return nil, w.fail(err)
	}
	return w, nil
}

func (w *Writer) fail(err error) error { return fmt.Errorf("npy %s: %w", w.path, err) }

// Append adds whole rows.
func (w *Writer) Append(data []float32) error {
	if len(data)%w.per != 0 {
		return w.fail(fmt.Errorf("%d values are not whole rows of shape %v", len(data), w.inner))
	}
	if err := binary.Write(w.buf, binary.LittleEndian, data); err != nil {
		return w.fail(err)
	}
	w.rows += len(data) / w.per
	return nil
}

// Rows is the number of rows appended so far.
func (w *Writer) Rows() int { return w.rows }

// Close writes the row count into the header and puts the file in place. On an error the file is
// removed.
func (w *Writer) Close() error {
	err := w.buf.Flush()
	if err == nil {
		_, err = w.f.WriteAt(header("'<f4'", append([]int{w.rows}, w.inner...), w.size), 0)
	}
	if err == nil {
		err = w.f.Commit()
	}
	if err != nil {
		w.Abort()
		return w.fail(err)
	}
	return nil
}

// Abort removes the file being written.
func (w *Writer) Abort() { w.f.Abort() }

// NPZ is a NumPy .npz archive built in memory, laid out as np.savez lays it out (an uncompressed zip
// of NAME.npy members): Add arrays to it, then Write it.
type NPZ struct {
	buf bytes.Buffer
	zw  *zip.Writer
	err error
}

// NewNPZ starts an empty archive.
func NewNPZ() *NPZ {
	z := &NPZ{}
	z.zw = zip.NewWriter(&z.buf)
	return z
}

// Add stores data as the array name (np.load(path)[name]), with shapes as Write takes them. An error
// is kept for Write to return.
func Add[T Element](z *NPZ, name string, data []T, shape ...int) {
	if z.err != nil {
		return
	}
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
	if err == nil {
		err = Encode(w, data, shape...)
	}
	if err != nil {
		z.err = fmt.Errorf("array %s: %w", name, err)
	}
}

// Write writes the archive to path, whole or not at all.
func (z *NPZ) Write(path string) error {
	if z.err == nil {
		z.err = z.zw.Close()
	}
	if z.err != nil {
		return fmt.Errorf("npz %s: %w", path, z.err)
	}
	return writeAtomic("npz", path, z.buf.Bytes())
}

// WriteTo writes the archive to w.
func (z *NPZ) WriteTo(w io.Writer) (int64, error) {
	if z.err == nil {
		z.err = z.zw.Close()
	}
	if z.err != nil {
		return 0, fmt.Errorf("npz: %w", z.err)
	}
	return z.buf.WriteTo(w)
}

// writeAtomic writes data to path whole or not at all; kind (npy or npz) names the file in errors.
func writeAtomic(kind, path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("%s %s: %w", kind, path, err)
	}
	return nil
}

// Read loads a float32 .npy file (as written by Write or numpy) and returns its data in C order and
// its shape. numpy writes a transposed view in Fortran order; Read reorders it.
func Read(path string) ([]float32, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	shape := r.Header.Descr.Shape
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n == 0 {
		return []float32{}, shape, nil
	}
	var data []float32
	if err := r.Read(&data); err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	if r.Header.Descr.Fortran {
		data = fortranToC(data, shape)
	}
	return data, shape, nil
}

// ReadFloats reads the array name (without ".npy") of an .npz archive, float32 or float64 as numpy
// saves them, widened to float64, and returns it in C order with its shape: numpy writes a transposed
// view (V.T after an eigendecomposition, say) in Fortran order.
func ReadFloats(r *npz.Reader, name string) ([]float64, []int, error) {
	key := name + ".npy"
	if !slices.Contains(r.Keys(), key) {
		return nil, nil, fmt.Errorf("no array %q", name)
	}
	h := r.Header(key)
	var out []float64
	switch strings.Trim(h.Descr.Type, "'\"") {
	case "<f8":
		if err := r.Read(key, &out); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	case "<f4":
		var f []float32
		if err := r.Read(key, &f); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		out = make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
	default:
		return nil, nil, fmt.Errorf("%s has dtype %s, want float32 or float64", name, h.Descr.Type)
	}
	if h.Descr.Fortran {
		out = fortranToC(out, h.Descr.Shape)
	}
	return out, h.Descr.Shape, nil
}

// fortranToC reorders column-major data of the given shape to row-major.
func fortranToC[T any](data []T, shape []int) []T {
	out := make([]T, len(data))
	idx := make([]int, len(shape))
	for c := range out {
		// idx is the C-order multi-index of c; its Fortran offset has the first axis varying fastest.
		f, stride := 0, 1
		for k := range shape {
			f += idx[k] * stride
			stride *= shape[k]
		}
		out[c] = data[f]
		for k := len(shape) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}
