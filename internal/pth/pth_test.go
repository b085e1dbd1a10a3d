package pth

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/reftest"
)

// tensorSum is what testdata/pth_reference.py reports of one tensor as torch.load returns it.
type tensorSum struct {
	Key           string
	DType         string
	Shape         []int64
	SHA256        string
	Float32SHA256 string `json:"float32_sha256"`
}

var fixtureOnce struct {
	sync.Once
	dir      string
	manifest map[string][]tensorSum
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureOnce.dir != "" {
		os.RemoveAll(fixtureOnce.dir)
	}
	os.Exit(code)
}

// fixtures writes the small torch.save files of testdata/pth_reference.py once per test process, into
// a temporary directory, and returns it and torch's checksums of the files torch.load reads.
func fixtures(tb testing.TB) (string, map[string][]tensorSum) {
	tb.Helper()
	reftest.Require(tb)
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pth-fixtures-")
		require.NoError(tb, err)
		fixtureOnce.dir = dir
		out := reftest.Run(tb, "pth_reference.py", "fixtures", dir)
		require.NoError(tb, json.Unmarshal(out, &fixtureOnce.manifest))
	})
	if fixtureOnce.manifest == nil {
		tb.Fatal("writing the fixtures failed in an earlier test")
	}
	return fixtureOnce.dir, fixtureOnce.manifest
}

func checksums(tb testing.TB, paths ...string) map[string][]tensorSum {
	tb.Helper()
	var sums map[string][]tensorSum
	require.NoError(tb, json.Unmarshal(reftest.Run(tb, "pth_reference.py", append([]string{"checksums"}, paths...)...), &sums))
	return sums
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func float32Bytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// requireMatches checks that f holds exactly want, in order, byte for byte, and that Float32 converts
// as torch's .float() does.
func requireMatches(t *testing.T, f *File, want []tensorSum) {
	t.Helper()
	keys := make([]string, len(want))
	for i, w := range want {
		keys[i] = w.Key
	}
	require.Equal(t, keys, f.Keys)
	require.Len(t, f.Tensors, len(want))
	for _, w := range want {
		got := f.Tensors[w.Key]
		assert.Equal(t, w.DType, got.DType.String(), w.Key)
		assert.Equal(t, w.Shape, got.Shape, w.Key)
		assert.Equal(t, w.SHA256, hexSHA256(got.Data), "bytes of %s", w.Key)
		read := make([]byte, len(got.Data))
		require.NoError(t, f.ReadInto(w.Key, read))
		assert.Equal(t, w.SHA256, hexSHA256(read), "ReadInto of %s", w.Key)
		if w.Float32SHA256 != "" {
			values, err := got.Float32()
			require.NoError(t, err, w.Key)
			assert.Equal(t, w.Float32SHA256, hexSHA256(float32Bytes(values)), "Float32() of %s", w.Key)
		} else {
			_, err := got.Float32()
			assert.ErrorContains(t, err, "cannot convert", w.Key)
		}
	}
}

func TestOpenMatchesTorch(t *testing.T) {
	dir, manifest := fixtures(t)
	names := make([]string, 0, len(manifest))
	for name := range manifest {
		names = append(names, name)
	}
	sort.Strings(names)
	require.NotEmpty(t, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, name))
			require.NoError(t, err)
			defer func() { require.NoError(t, f.Close()) }()
			requireMatches(t, f, manifest[name])
		})
	}
	if !t.Failed() {
		t.Logf("%d files, both formats, pickle protocols 2, 4 and 5, match torch.load byte for byte", len(names))
	}
}

// heStdTolerance is the relative error allowed of a sample standard deviation of n normal values:
// five of its standard errors.
func heStdTolerance(n int) float64 { return 5 / math.Sqrt(2*float64(n)) }

func TestVGGishWeights(t *testing.T) {
	reftest.Require(t)
	dir := t.TempDir()
	zipPath, legacyPath := filepath.Join(dir, "vggish-zip.pth"), filepath.Join(dir, "vggish-legacy.pth")
	pcaZip, pcaLegacy, pcaNPZ := filepath.Join(dir, "pca-zip.pth"), filepath.Join(dir, "pca-legacy.pth"), filepath.Join(dir, "pca.npz")
	// The same seed in two processes: equal checksums below also show make_weights.py is deterministic.
	reftest.Run(t, "make_weights.py", "--seed", "7", "--format", "zip", "--out", zipPath, "--pca", pcaZip, "--pca-npz", pcaNPZ)
	reftest.Run(t, "make_weights.py", "--seed", "7", "--format", "legacy", "--out", legacyPath, "--pca", pcaLegacy)
	sums := checksums(t, zipPath, legacyPath, pcaZip, pcaLegacy, pcaNPZ)
	assert.Equal(t, sums[zipPath], sums[legacyPath], "zip and legacy weights of one seed")
	assert.Equal(t, sums[pcaNPZ], sums[pcaZip], "npz and torch.save'd PCA params of one seed")

	for _, path := range []string{zipPath, legacyPath} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			require.NoError(t, err)
			defer func() { require.NoError(t, f.Close()) }()
			requireMatches(t, f, sums[path])

			var want []string
			for _, l := range golden.Layers {
				want = append(want, l.Name+".weight", l.Name+".bias")
				w := f.Tensors[l.Name+".weight"]
				require.Equal(t, l.Weight, w.Shape)
				fanIn := int(l.Weight[1])
				if len(l.Weight) == 4 {
					fanIn *= 9
				}
				values, err := w.Float32()
				require.NoError(t, err)
				std := stddev(values)
				he := math.Sqrt(2 / float64(fanIn))
				assert.InEpsilon(t, he, std, heStdTolerance(len(values)), "He init of %s.weight", l.Name)
				assert.Equal(t, []int64{l.Weight[0]}, f.Tensors[l.Name+".bias"].Shape)
				t.Logf("%s.weight std %.5f, He %.5f", l.Name, std, he)
			}
			assert.Equal(t, want, f.Keys)

			// Contiguous tensors are slices of the mapping, not copies, and ReadInto reads them from the file.
			for _, k := range f.Keys {
				_, inFile := f.offset(f.Tensors[k].Data)
				assert.True(t, inFile, "%s aliases the mapping", k)
			}
		})
	}
	for _, path := range []string{pcaZip, pcaLegacy} {
		f, err := Open(path)
		require.NoError(t, err)
		requireMatches(t, f, sums[path])
		assert.Equal(t, []int64{128, 128}, f.Tensors["pca_eigen_vectors"].Shape)
		assert.Equal(t, []int64{128}, f.Tensors["pca_means"].Shape)
		require.NoError(t, f.Close())
	}
}

func stddev(v []float32) float64 {
	var sum, sum2 float64
	for _, x := range v {
		sum += float64(x)
		sum2 += float64(x) * float64(x)
	}
	mean := sum / float64(len(v))
	return math.Sqrt(sum2/float64(len(v)) - mean*mean)
}

func TestReadIntoErrors(t *testing.T) {
	dir, _ := fixtures(t)
	f, err := Open(filepath.Join(dir, "single_zip.pth"))
	require.NoError(t, err)
	defer f.Close()
	assert.ErrorContains(t, f.ReadInto("nope", nil), `no tensor "nope"`)
	assert.ErrorContains(t, f.ReadInto("w", make([]byte, 23)), `tensor "w" has 24 bytes, not 23`)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close twice")

	// A NaN weight is refused as it is read, naming the file and the tensor, in both formats.
	b, err := os.ReadFile(filepath.Join(dir, "single_zip.pth"))
	require.NoError(t, err)
	nan := float32Bytes([]float32{float32(math.NaN())})
	zipNaN := rezip(t, b, func(e zipEntry) *zipEntry {
		if strings.HasSuffix(e.name, "data/0") {
			e.data = append(append([]byte{}, e.data[:12]...), append(nan, e.data[16:]...)...)
		}
		return &e
	})
	legacy, err := os.ReadFile(filepath.Join(dir, "single_legacy.pth"))
	require.NoError(t, err)
	three := float32Bytes([]float32{3})
	legacyNaN := replaceOnce(t, legacy, string(three), string(nan))
	for name, data := range map[string][]byte{"zip": zipNaN, "legacy": legacyNaN} {
		path := filepath.Join(t.TempDir(), name+".pth")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		f, err := Open(path)
		require.NoError(t, err, "opening reads no tensor data")
		err = f.ReadInto("w", make([]byte, 24))
		assert.EqualError(t, err, fmt.Sprintf(`pth %s: tensor "w": element 3 is NaN`, path), name)
		_, err = f.Tensors["w"].Float32()
		assert.EqualError(t, err, "element 3 is NaN", name)
		require.NoError(t, f.Close())
	}
	// ReadInto checks a chunk at a time, chunks in parallel: the index counts from the tensor's start,
	// and the first bad value is the one named, whichever chunk finishes first.
	values := make([]float32, 3<<18)
	values[len(values)-2] = float32(math.Inf(-1))
	big := &File{Tensors: map[string]*Tensor{"big": {DType: Float32, Shape: []int64{int64(len(values))}, Data: float32Bytes(values)}}, file: os.Stdin}
	err = big.ReadInto("big", make([]byte, 4*len(values)))
	assert.EqualError(t, err, fmt.Sprintf(`pth %s: tensor "big": element %d is -Inf`, os.Stdin.Name(), len(values)-2))
	values[len(values)/2] = float32(math.NaN())
	big.Tensors["big"].Data = float32Bytes(values)
	for range 20 {
		err = big.ReadInto("big", make([]byte, 4*len(values)))
		assert.EqualError(t, err, fmt.Sprintf(`pth %s: tensor "big": element %d is NaN`, os.Stdin.Name(), len(values)/2))
	}
}

func TestFloat32(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		want []float32
		err  string
	}{
		{"float16", Tensor{DType: Float16, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b}},
			[]float32{1, -2, 0x1p-24, 65504}, ""},
		{"bfloat16", Tensor{DType: BFloat16, Data: []byte{0x80, 0x3f, 0x40, 0xc0}}, []float32{1, -3}, ""},
		{"float64", Tensor{DType: Float64, Data: []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}}, []float32{1.5}, ""},
		{"misaligned float32", Tensor{DType: Float32, Data: []byte{0, 0, 0, 0x80, 0x3f}[1:]}, []float32{1}, ""},
		{"empty", Tensor{DType: Float16}, []float32{}, ""},
		{"int64", Tensor{DType: Int64, Data: make([]byte, 8)}, nil, "cannot convert a int64 tensor"},
		{"ragged", Tensor{DType: Float64, Data: make([]byte, 12)}, nil, "not a whole number"},
		// Non-finite weights are refused, in every float dtype, and so is a float64 too large for float32.
		{"float16 +Inf", Tensor{DType: Float16, Data: []byte{0x00, 0x3c, 0x00, 0x7c}}, nil, "element 1 is +Inf"},
		{"float16 NaN", Tensor{DType: Float16, Data: []byte{0x01, 0x7e}}, nil, "element 0 is NaN"},
		{"bfloat16 -Inf", Tensor{DType: BFloat16, Data: []byte{0x80, 0x3f, 0x80, 0xff}}, nil, "element 1 is -Inf"},
		{"float32 NaN", Tensor{DType: Float32, Data: float32Bytes([]float32{1, 2, float32(math.NaN())})}, nil, "element 2 is NaN"},
		{"misaligned float32 +Inf", Tensor{DType: Float32, Data: append([]byte{0}, float32Bytes([]float32{float32(math.Inf(1))})...)[1:]}, nil, "element 0 is +Inf"},
		{"float64 NaN", Tensor{DType: Float64, Data: float64Bytes(1, math.NaN())}, nil, "element 1 is NaN"},
		{"float64 overflow", Tensor{DType: Float64, Data: float64Bytes(-1e300)}, nil, "element 0 is -Inf (-1e+300 does not fit in float32)"},
		{"float64 max float32", Tensor{DType: Float64, Data: float64Bytes(math.MaxFloat32)}, []float32{math.MaxFloat32}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.t.Float32()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func float64Bytes(v ...float64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 8*len(v))
}

// checkFinite tests exponent bits: the largest finite value and the smallest subnormal of each dtype
// pass, every NaN and infinity (any sign, any payload) fails.
func TestCheckFinite(t *testing.T) {
	le := func(bits uint64, size int) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, bits)
		return b[:size]
	}
	tests := []struct {
		dtype          DType
		finite, others []uint64 // bit patterns
	}{
		{Float32, []uint64{0x7f7fffff, 0xff7fffff, 1, 0x80000000}, []uint64{0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff}},
		{Float64, []uint64{0x7fefffffffffffff, 1, 0x8000000000000000}, []uint64{0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0xfff0000000000001}},
		{Float16, []uint64{0x7bff, 0xfbff, 1}, []uint64{0x7c00, 0xfc00, 0x7e00, 0x7c01}},
		{BFloat16, []uint64{0x7f7f, 0xff7f, 1}, []uint64{0x7f80, 0xff80, 0x7fc0, 0x7f81}},
	}
	for _, tt := range tests {
		size := tt.dtype.Size()
		var finite []byte
		for _, bits := range tt.finite {
			finite = append(finite, le(bits, size)...)
		}
		assert.NoError(t, checkFinite(tt.dtype, finite, 0), tt.dtype)
		for _, bits := range tt.others {
			data := append(append([]byte{}, finite...), le(bits, size)...)
			err := checkFinite(tt.dtype, data, 10)
			require.Error(t, err, "%s %#x", tt.dtype, bits)
			assert.Contains(t, err.Error(), fmt.Sprintf("element %d is ", 10+len(tt.finite)), "%s %#x", tt.dtype, bits)
		}
	}
	assert.NoError(t, checkFinite(Int32, le(0x7f800000, 4), 0), "integers are not checked")

	// Past the first 64 bytes, wherever the value falls in the 64-byte steps and the words after them.
	for _, tt := range tests {
		size := tt.dtype.Size()
		one := le(tt.finite[0], size)
		n := 200 / size
		for i := range n {
			data := bytes.Repeat(one, n)
			copy(data[i*size:], le(tt.others[0], size))
			assert.EqualError(t, checkFinite(tt.dtype, data, 0), fmt.Sprintf("element %d is %v", i, float64At(tt.dtype, data[i*size:])), "%s at %d", tt.dtype, i)
		}
	}
}

// zipEntry is an entry of an archive rebuilt by rezip.
type zipEntry struct {
	name   string
	data   []byte
	method uint16
}

// rezip rebuilds the zip archive src with edit applied to each entry (nil drops it) and adds extra.
func rezip(t *testing.T, src []byte, edit func(e zipEntry) *zipEntry, extra ...zipEntry) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	require.NoError(t, err)
	var entries []zipEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		var data bytes.Buffer
		_, err = data.ReadFrom(rc)
		require.NoError(t, err)
		if e := edit(zipEntry{f.Name, data.Bytes(), zip.Store}); e != nil {
			entries = append(entries, *e)
		}
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range append(entries, extra...) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		require.NoError(t, err)
		_, err = w.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return out.Bytes()
}

// replaceOnce replaces old, which must occur exactly once in b.
func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	require.Equal(t, 1, bytes.Count(b, []byte(old)), "occurrences of %q", old)
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestOpenErrors(t *testing.T) {
	dir, _ := fixtures(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return b
	}
	single, singleLegacy := read("single_zip.pth"), read("single_legacy.pth")
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)

	type errCase struct {
		name string
		data []byte
		want string
	}
	tests := []errCase{
		{"empty file", nil, "empty file"},
		{"random bytes", random, "not a torch.save file"},
		{"text", []byte("hello, world\n"), "not a torch.save file"},
		{"plain pickle", []byte("\x80\x02}q\x00."), "bad magic number"},
		{"bad magic", replaceOnce(t, singleLegacy, "\x6c\xfc\x9c", "\x6c\xfc\x9d"), "bad magic number"},
		{"legacy protocol version", replaceOnce(t, singleLegacy, "M\xe9\x03.", "M\xea\x03."), "protocol version 1002"},
		{"unknown class zip", read("unknown_class_zip.pth"), "unsupported Python class datetime.date"},
		{"unknown class legacy", read("unknown_class_legacy.pth"), "unsupported Python class datetime.date"},
		{"tensor at top level", read("tensor_top_zip.pth"), "holds a tensor, want a dict of tensors"},
		{"storage smaller than shape zip", rezip(t, single, func(e zipEntry) *zipEntry {
			if strings.HasSuffix(e.name, "data.pkl") {
				e.data = replaceOnce(t, e.data, "K\x06t", "K\x05t")
			}
			return &e
		}), `does not fit in storage "0" of 5 elements`},
		{"storage smaller than shape legacy", replaceOnce(t, singleLegacy, "K\x06N", "K\x05N"), `does not fit in storage`},
		{"storage entry short zip", rezip(t, single, func(e zipEntry) *zipEntry {
			if strings.HasSuffix(e.name, "data/0") {
				e.data = e.data[:20]
			}
			return &e
		}), `storage "0" has 20 bytes, fewer than its 6 float32 elements need`},
		{"storage header short legacy", replaceOnce(t, singleLegacy, "\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "has 5 elements, the pickle says 6"},
		{"storage entry missing", rezip(t, single, func(e zipEntry) *zipEntry {
			if strings.HasSuffix(e.name, "data/0") {
				return nil
			}
			return &e
		}), "no entry archive/data/0"},
		{"no data.pkl", rezip(t, single, func(e zipEntry) *zipEntry {
			if strings.HasSuffix(e.name, "data.pkl") {
				return nil
			}
			return &e
		}), "no entry archive/data.pkl"},
		{"compressed entry", rezip(t, single, func(e zipEntry) *zipEntry {
			e.method = zip.Deflate
			return &e
		}), "compressed"},
		// A list holding a tuple holding the list, as persistent ID: errors must not format it with fmt,
		// whose String methods would recurse forever.
		{"self-referencing value", rezip(t, single, func(e zipEntry) *zipEntry {
			if strings.HasSuffix(e.name, "data.pkl") {
				e.data = []byte("\x80\x02]q\x00h\x00\x85aQ.")
			}
			return &e
		}), "persistent ID a list is not a tuple"},
		{"big-endian", rezip(t, single, func(e zipEntry) *zipEntry { return &e }, zipEntry{"archive/byteorder", []byte("big"), zip.Store}),
			`byte order "big"`},
	}
	// Truncations anywhere: in the zip's central directory, in each legacy pickle and storage.
	for _, file := range []string{"single_zip.pth", "single_legacy.pth", "views_legacy.pth", "numpy_zip.pth", "numpy_legacy.pth"} {
		b := read(file)
		for _, n := range []int{1, 10, 14, 15, 20, 137, len(b) / 3, len(b) / 2, len(b) - 30, len(b) - 1} {
			tests = append(tests, errCase{file + " truncated to " + strconv.Itoa(n), b[:n], "truncated file"})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.pth")
			require.NoError(t, os.WriteFile(path, tt.data, 0o644))
			f, err := Open(path)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.Contains(t, err.Error(), "pth "+path+": ", "names the file")
			assert.Contains(t, err.Error(), tt.want)
			t.Log(err)
		})
	}
}

// A named pipe, a device or a folder given as weights is refused before it is read: none blocks.
func TestOpenNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "w.pth")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		_, err := Open(path)
		assert.ErrorContains(t, err, "pth: open "+path+": not a regular file: it is a")
	}
}

// FuzzOpen fuzzes Open's decoding of the mapped bytes (decode, so no file is written per input). Seeds
// are the fixture files of both formats. Besides never panicking, decoding must allocate in proportion
// to the input, whatever sizes its headers claim and whatever opcodes it repeats, and never more than
// the fixed cap on pickled objects besides a few copies of the input.
func FuzzOpen(f *testing.F) {
	dir, _ := fixtures(f)
	seeds, err := filepath.Glob(filepath.Join(dir, "*.pth"))
	require.NoError(f, err)
	require.NotEmpty(f, seeds)
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		file, err := decode(data)
		runtime.ReadMemStats(&after)
		if limit := uint64(1<<20 + 4*len(data) + min(opCost*len(data), maxPickleObjects)); after.TotalAlloc-before.TotalAlloc > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes, more than %d", len(data), after.TotalAlloc-before.TotalAlloc, limit)
		}
		if err != nil {
			return
		}
		for _, k := range file.Keys {
			tensor := file.Tensors[k]
			n, ok := numElements(tensor.Shape)
			require.True(t, ok)
			require.Equal(t, n*int64(tensor.DType.Size()), int64(len(tensor.Data)), "tensor %q", k)
			if _, err := tensor.Float32(); err != nil {
				// An unconvertible dtype, or a value no weight holds (NaN, infinite, too large).
				require.Regexp(t, `cannot convert|element \d+ is `, err.Error())
			}
		}
	})
}

// benchWeights returns a full-size VGGish weights file of the given format, written under
// testdata/gen/ by make_weights.py if missing (testdata/bench_torch_load.py times torch.load of it).
func benchWeights(b *testing.B, format string) string {
	b.Helper()
	path := filepath.Join(reftest.Root(), "testdata", "gen", "vggish-bench-"+format+".pth")
	if _, err := os.Stat(path); err != nil {
		reftest.Run(b, "make_weights.py", "--seed", "1", "--format", format, "--out", path)
	}
	return path
}

// BenchmarkOpen opens full-size VGGish weights and copies every tensor's Float32 into new memory, as
// loading them into libtorch tensors does. BenchmarkReadInto does the same with ReadInto. The memory
// is fresh anonymous pages from mmap, as glibc gives libtorch for large tensors, so that page faults
// are counted as in a process that loads weights once.
func BenchmarkOpen(b *testing.B) {
	benchmarkLoad(b, func(f *File, key string, dst []byte) error {
		v, err := f.Tensors[key].Float32()
		copy(dst, float32Bytes(v))
		return err
	})
}

func BenchmarkReadInto(b *testing.B) {
	benchmarkLoad(b, (*File).ReadInto)
}

func benchmarkLoad(b *testing.B, load func(f *File, key string, dst []byte) error) {
	for _, format := range []string{"zip", "legacy"} {
		b.Run(format, func(b *testing.B) {
			path := benchWeights(b, format)
			info, err := os.Stat(path)
			require.NoError(b, err)
			b.SetBytes(info.Size())
			for range b.N {
				f, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				tensors := make([][]byte, len(f.Keys))
				for i, k := range f.Keys {
					if tensors[i], err = unix.Mmap(-1, 0, len(f.Tensors[k].Data), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE); err != nil {
						b.Fatal(err)
					}
					if err := load(f, k, tensors[i]); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				for _, t := range tensors {
					unix.Munmap(t)
				}
			}
		})
	}
}
