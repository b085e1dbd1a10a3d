package npyfile_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
)

// numpy reads back what Write wrote, shapes and values, empty arrays included.
func TestNumpyReadsWhatWeWrite(t *testing.T) {
	reftest.Require(t)
	dir := t.TempDir()
	ramp := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(i) * 0.5
		}
		return out
	}
	cases := []struct {
		name  string
		write func(string) error
		shape []int
		dtype string
		sum   float64
	}{
		{"emb", func(p string) error { return npyfile.Write(p, ramp(3*128), 3, 128) }, []int{3, 128}, "float32", 0.5 * float64(3*128*(3*128-1)/2)},
		{"empty", func(p string) error { return npyfile.Write(p, []float32{}, 0, 128) }, []int{0, 128}, "float32", 0},
		{"emptylogmel", func(p string) error { return npyfile.Write(p, []float32{}, 0, 96, 64) }, []int{0, 96, 64}, "float32", 0},
		{"logmel", func(p string) error { return npyfile.Write(p, ramp(2*96*64), 2, 96, 64) }, []int{2, 96, 64}, "float32", 0.5 * float64(2*96*64*(2*96*64-1)/2)},
		{"quant", func(p string) error { return npyfile.Write(p, []uint8{1, 2, 255, 0}, 4) }, []int{4}, "uint8", 258},
		{"emptyquant", func(p string) error { return npyfile.Write(p, []uint8{}, 0, 128) }, []int{0, 128}, "uint8", 0},
		{"channels", func(p string) error { return npyfile.Write(p, ramp(4*3*128), 4, 3, 128) }, []int{4, 3, 128}, "float32", 0.5 * float64(4*3*128*(4*3*128-1)/2)},
		{"emptychannels", func(p string) error { return npyfile.Write(p, []float32{}, 4, 0, 128) }, []int{4, 0, 128}, "float32", 0},
		{"4d", func(p string) error { return npyfile.Write(p, ramp(2*3*4*5), 2, 3, 4, 5) }, []int{2, 3, 4, 5}, "float32", 0.5 * float64(120*119/2)},
		{"odd2d", func(p string) error { return npyfile.Write(p, ramp(5*7), 5, 7) }, []int{5, 7}, "float32", 0.5 * float64(35*34/2)},
		{"float64", func(p string) error { return npyfile.Write(p, []float64{0.25, 0.5, -3}, 3) }, []int{3}, "float64", -2.25},
		{"scalar", func(p string) error { return npyfile.Write(p, []int64{1 << 40}, []int{}...) }, []int{}, "int64", 1 << 40},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".npy")
		require.NoError(t, c.write(path), c.name)
		out, err := exec.Command(reftest.Interpreter(), "-c",
			`import json,sys,numpy as np; a=np.load(sys.argv[1]); print(json.dumps({"shape":list(a.shape),"dtype":str(a.dtype),"sum":float(a.astype("float64").sum())}))`, path).Output()
		require.NoError(t, err, c.name)
		var got struct {
			Shape []int
			Dtype string
			Sum   float64
		}
		require.NoError(t, json.Unmarshal(out, &got), c.name)
		assert.Equal(t, c.shape, got.Shape, c.name)
		assert.Equal(t, c.dtype, got.Dtype, c.name)
		assert.Equal(t, c.sum, got.Sum, c.name)
		if c.dtype == "float32" {
			data, shape, err := npyfile.Read(path)
			require.NoError(t, err, c.name)
			assert.Equal(t, c.shape, shape, c.name)
			n := 1
			for _, d := range shape {
				n *= d
			}
			assert.Equal(t, ramp(n), data, "%s: C order", c.name)
		}
	}
}

// Writer streams rows and fills in their count at the end: numpy and Read see the whole array; the file
// appears only on Close.
func TestWriter(t *testing.T) {
	reftest.Require(t)
	dir := t.TempDir()
	for _, rows := range []int{0, 1, 130} {
		path := filepath.Join(dir, fmt.Sprintf("%d.npy", rows))
		w, err := npyfile.Create(path, 96, 64)
		require.NoError(t, err)
		var want []float32
		for r := range rows {
			row := make([]float32, 96*64)
			for i := range row {
				row[i] = float32(r) + float32(i)/8192
			}
			want = append(want, row...)
			if r%3 == 2 || r == rows-1 { // several rows at a time
				require.NoError(t, w.Append(want[len(want)-96*64*(r%3+1):]))
			}
		}
		assert.Equal(t, rows, w.Rows())
		assert.NoFileExists(t, path, "not before Close")
		require.NoError(t, w.Close())
		data, shape, err := npyfile.Read(path)
		require.NoError(t, err)
		assert.Equal(t, []int{rows, 96, 64}, shape)
		if rows > 0 {
			assert.Equal(t, want, data)
		}
		out, err := exec.Command(reftest.Interpreter(), "-c",
			`import sys,numpy as np; a=np.load(sys.argv[1]); print(a.shape, a.dtype, float(a.astype("float64").sum()))`, path).Output()
		require.NoError(t, err)
		sum := 0.0
		for _, v := range want {
			sum += float64(v)
		}
		assert.Equal(t, fmt.Sprintf("(%d, 96, 64) float32 %v\n", rows, strconv.FormatFloat(sum, 'f', -1, 64)), strings.Replace(string(out), ".0\n", "\n", 1))
	}

	path := filepath.Join(dir, "aborted.npy")
	w, err := npyfile.Create(path, 128)
	require.NoError(t, err)
	assert.ErrorContains(t, w.Append(make([]float32, 129)), "npy "+path+": 129 values are not whole rows of shape [128]")
	require.NoError(t, w.Append(make([]float32, 256)))
	w.Abort()
	assert.NoFileExists(t, path)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "no temporary file left")
	_, err = npyfile.Create(filepath.Join(dir, "missing", "x.npy"), 128)
	assert.ErrorContains(t, err, "npy "+filepath.Join(dir, "missing", "x.npy"))
}

func TestWriteRejectsBadShapes(t *testing.T) {
	dir := t.TempDir()
	assert.ErrorContains(t, npyfile.Write(filepath.Join(dir, "a.npy"), []float32{1, 2, 3}, 2, 2), "do not fill shape")
	assert.ErrorContains(t, npyfile.Write(filepath.Join(dir, "b.npy"), []float32{1, 2, 3, 4}, -2, -2), "negative dimension")
	assert.NoFileExists(t, filepath.Join(dir, "b.npy"), "no half-written output")
	assert.Error(t, npyfile.Write(filepath.Join(dir, "missing", "c.npy"), []float32{1}, 1))
}

// numpy saves a transposed view in Fortran order; Read returns it in C order.
func TestReadFortranOrder(t *testing.T) {
	reftest.Require(t)
	path := filepath.Join(t.TempDir(), "f.npy")
	require.NoError(t, exec.Command(reftest.Interpreter(), "-c",
		`import sys,numpy as np; np.save(sys.argv[1], np.arange(24, dtype=np.float32).reshape(4, 3, 2).transpose(2, 1, 0))`, path).Run())
	data, shape, err := npyfile.Read(path)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 4}, shape)
	// element [i][j][k] of the transposed array is original[k][j][i] = k*6 + j*2 + i
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 4; k++ {
				assert.Equal(t, float32(k*6+j*2+i), data[i*12+j*4+k])
			}
		}
	}
}

// ReadFloats gives an .npz array in C order, widened to float64, whatever numpy's order and float
// dtype (a transposed view, V.T after an eigendecomposition, is saved in Fortran order).
func TestReadFloatsFromNumpy(t *testing.T) {
	reftest.Require(t)
	path := filepath.Join(t.TempDir(), "a.npz")
	require.NoError(t, exec.Command(reftest.Interpreter(), "-c", `import sys,numpy as np
a=np.arange(24, dtype=np.float64).reshape(4, 3, 2) / 4
np.savez(sys.argv[1], c8=a, f8=a.transpose(2, 1, 0), c4=a.astype(np.float32), f4=a.astype(np.float32).T,
         m=np.asfortranarray(a[:, :, 0]), i8=np.arange(3))`, path).Run())
	r, err := npz.Open(path)
	require.NoError(t, err)
	defer r.Close()
	// a[i][j][k] = (i*6 + j*2 + k) / 4; its transpose's [k][j][i] is the same value
	at := func(i, j, k int) float64 { return float64(i*6+j*2+k) / 4 }
	transposed := make([]float64, 24)
	for k := range 2 {
		for j := range 3 {
			for i := range 4 {
				transposed[k*12+j*4+i] = at(i, j, k)
			}
		}
	}
	natural := make([]float64, 24)
	for i := range natural {
		natural[i] = float64(i) / 4
	}
	column := []float64{ // a[:, :, 0], saved in Fortran order
		at(0, 0, 0), at(0, 1, 0), at(0, 2, 0), at(1, 0, 0), at(1, 1, 0), at(1, 2, 0), at(2, 0, 0), at(2, 1, 0), at(2, 2, 0), at(3, 0, 0), at(3, 1, 0), at(3, 2, 0),
	}
	for _, c := range []struct {
		name  string
		shape []int
		want  []float64
	}{
		{"c8", []int{4, 3, 2}, natural},
		{"f8", []int{2, 3, 4}, transposed},
		{"c4", []int{4, 3, 2}, natural},
		{"f4", []int{2, 3, 4}, transposed},
		{"m", []int{4, 3}, column},
	} {
		got, shape, err := npyfile.ReadFloats(r, c.name)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.shape, shape, c.name)
		assert.Equal(t, c.want, got, c.name)
	}
	_, _, err = npyfile.ReadFloats(r, "i8")
	assert.ErrorContains(t, err, "want float32 or float64")
	_, _, err = npyfile.ReadFloats(r, "absent")
	assert.ErrorContains(t, err, `no array "absent"`)
}

// numpy's np.load reads an archive written by NPZ: names, shapes, dtypes and values, empty arrays
// included.
func TestNumpyReadsOurNPZ(t *testing.T) {
	reftest.Require(t)
	path := filepath.Join(t.TempDir(), "a.npz")
	z := npyfile.NewNPZ()
	npyfile.Add(z, "embedding", []float32{1, 2, 3, 4, 5, 6}, 2, 3, 2) // refused: 6 values do not fill (2, 3, 2)
	require.ErrorContains(t, z.Write(path), "array embedding")
	assert.NoFileExists(t, path)

	z = npyfile.NewNPZ()
	emb := make([]float32, 2*128)
	for i := range emb {
		emb[i] = float32(i) / 4
	}
	npyfile.Add(z, "embedding", emb, 2, 128)
	npyfile.Add(z, "timestamps", []float64{0, 0.96}, 2)
	npyfile.Add(z, "empty", []uint8{}, 0, 128)
	npyfile.Add(z, "n", []int64{7})
	require.NoError(t, z.Write(path))
	out, err := exec.Command(reftest.Interpreter(), "-c", `import json,sys,numpy as np
z=np.load(sys.argv[1])
print(json.dumps({k: {"shape": list(z[k].shape), "dtype": str(z[k].dtype), "values": z[k].astype("float64").ravel().tolist()} for k in z.files}))`, path).Output()
	require.NoError(t, err)
	type array struct {
		Shape  []int
		Dtype  string
		Values []float64
	}
	var got map[string]array
	require.NoError(t, json.Unmarshal(out, &got))
	want := map[string]array{
		"timestamps": {[]int{2}, "float64", []float64{0, 0.96}},
		"empty":      {[]int{0, 128}, "uint8", []float64{}},
		"n":          {[]int{}, "int64", []float64{7}},
	}
	for k, w := range want {
		assert.Equal(t, w, got[k], k)
	}
	assert.Equal(t, []int{2, 128}, got["embedding"].Shape)
	assert.Equal(t, "float32", got["embedding"].Dtype)
	for i, v := range got["embedding"].Values {
		require.Equal(t, float64(emb[i]), v)
	}
}

// A write that fails names the file as what it is: npy for Write, npz for an archive.
func TestWriteErrorsNameTheKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x")
	tests := []struct {
		name  string
		write func() error
		want  string
	}{
		{"npy", func() error { return npyfile.Write(path+".npy", []float32{1}, 1) }, "npy " + path + ".npy: "},
		{"npz", func() error {
			z := npyfile.NewNPZ()
			npyfile.Add(z, "a", []float32{1}, 1)
			return z.Write(path + ".npz")
		}, "npz " + path + ".npz: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}
}
