package fad

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"gonum.org/v1/gonum/mat"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
)

func TestMain(m *testing.M) { reftest.Main(m) }

// embeddings are n seeded vectors shaped like VGGish's: a large common offset, most of the variance in
// a few directions, the rest small.
func embeddings(n, dim int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	basis := make([]float64, 16*dim)
	for i := range basis {
		basis[i] = 3 * rng.NormFloat64()
	}
	out := make([]float32, n*dim)
	for i := range n {
		var coef [16]float64
		for k := range coef {
			coef[k] = rng.NormFloat64()
		}
		for j := range dim {
			v := 5 + 0.3*rng.NormFloat64()
			for k, c := range coef {
				v += c * basis[k*dim+j]
			}
			out[i*dim+j] = float32(v)
		}
	}
	return out
}

// naive is the two-pass mean and covariance (n - 1) in float64.
func naive(rows []float32, dim int) ([]float64, []float64) {
	n := len(rows) / dim
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mean[j] += float64(rows[i*dim+j])
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	cov := make([]float64, dim*dim)
	for i := range n {
		for a := range dim {
			for b := range dim {
				cov[a*dim+b] += (float64(rows[i*dim+a]) - mean[a]) * (float64(rows[i*dim+b]) - mean[b])
			}
		}
	}
	for k := range cov {
		cov[k] /= float64(n - 1)
	}
	return mean, cov
}

func maxRelDiff(a, b []float64) float64 {
	d, m := 0.0, 0.0
	for i := range a {
		d, m = math.Max(d, math.Abs(a[i]-b[i])), math.Max(m, math.Abs(b[i]))
	}
	return d / m
}

func full(s *mat.SymDense) []float64 {
	n := s.SymmetricDim()
	out := make([]float64, 0, n*n)
	for i := range n {
		for j := range n {
			out = append(out, s.At(i, j))
		}
	}
	return out
}

// Adding rows in any grouping, and merging statistics in any order, gives the two-pass mean and
// covariance.
func TestStatsOnePassEqualsTwoPass(t *testing.T) {
	const dim = 128
	rows := embeddings(300, dim, 1)
	mean, cov := naive(rows, dim)
	for _, groups := range [][]int{{300}, {1, 299}, {7, 1, 100, 2, 190}, {150, 150}} {
		s := New(dim)
		at := 0
		for _, g := range groups {
			require.NoError(t, s.Add(rows[at*dim:(at+g)*dim]))
			at += g
		}
		assert.Equal(t, int64(300), s.N())
		assert.Less(t, maxRelDiff(s.Mean(), mean), 1e-14, "%v", groups)
		assert.Less(t, maxRelDiff(full(s.Covariance()), cov), 1e-12, "%v", groups)
	}
	a, b := New(dim), New(dim)
	require.NoError(t, a.Add(rows[:100*dim]))
	require.NoError(t, b.Add(rows[100*dim:]))
	require.NoError(t, b.Merge(a))
	assert.Less(t, maxRelDiff(full(b.Covariance()), cov), 1e-12)
}

// For covariances that commute (the same eigenvectors), the distance has a closed form:
// |mu_a - mu_b|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 over the eigenvalues.
func TestDistanceClosedForm(t *testing.T) {
	const dim = 8
	rng := rand.New(rand.NewPCG(3, 3))
	var q mat.QR
	g := mat.NewDense(dim, dim, nil)
	for i := range dim {
		for j := range dim {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	q.Factorize(g)
	var v mat.Dense
	q.QTo(&v)
	ea := []float64{4, 2, 1, 0.5, 0.1, 1e-4, 7, 3}
	eb := []float64{1, 2, 0.3, 0.5, 0.4, 2, 1e-3, 9}
	sym := func(e []float64) *mat.SymDense {
		var m mat.Dense
		m.Mul(&v, mat.NewDiagDense(dim, e))
		m.Mul(&m, v.T())
		s := mat.NewSymDense(dim, nil)
		for i := range dim {
			for j := i; j < dim; j++ {
				s.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
			}
		}
		return s
	}
	a := &Stats{n: 10, mean: []float64{1, 0, 0, 0, 0, 0, 0, 2}, m2: mat.NewSymDense(dim, nil)}
	b := &Stats{n: 10, mean: make([]float64, dim), m2: mat.NewSymDense(dim, nil)}
	a.m2.ScaleSym(9, sym(ea))
	b.m2.ScaleSym(9, sym(eb))
	want := 5.0
	for i := range ea {
		want += math.Pow(math.Sqrt(ea[i])-math.Sqrt(eb[i]), 2)
	}
	// The rounding of the eigenvalues, 1e-16 of the largest, moves the square root of the smallest
	// (1e-4 and 1e-3) by about 1e-11: the tolerance is 1e-10 of the traces.
	scale := 0.0
	for i := range ea {
		scale += ea[i] + eb[i]
	}
	got, err := Distance(a, b)
	require.NoError(t, err)
	assert.InDelta(t, want, got, 1e-10*scale)
	self, err := Distance(a, a)
	require.NoError(t, err)
	assert.InDelta(t, 0, self, 1e-10*scale)
}

// truth is the distance computed from the sets' vectors rather than their covariances:
// Tr((S_a S_b)^(1/2)) is the sum of the singular values of F_a^T F_b, with F the centred vectors over
// sqrt(n - 1) as columns (S = F F^T), which involves no square root of a rounded eigenvalue.
func truth(a, b []float32, dim int) float64 {
	factor := func(x []float32) (*mat.Dense, []float64) {
		mean, cov := naive(x, dim)
		n := len(x) / dim
		f := mat.NewDense(dim, n, nil)
		for i := range n {
			for j := range dim {
				f.Set(j, i, (float64(x[i*dim+j])-mean[j])/math.Sqrt(float64(n-1)))
			}
		}
		return f, append(mean, mat.Trace(mat.NewDense(dim, dim, cov)))
	}
	fa, ma := factor(a)
	fb, mb := factor(b)
	var p mat.Dense
	p.Mul(fa.T(), fb)
	var svd mat.SVD
	if !svd.Factorize(&p, mat.SVDNone) {
		panic("svd")
	}
	tr := 0.0
	for _, v := range svd.Values(nil) {
		tr += v
	}
	d := 0.0
	for j := range dim {
		d += (ma[j] - mb[j]) * (ma[j] - mb[j])
	}
	return d + ma[dim] + mb[dim] - 2*tr
}

// The distance on seeded embedding sets of 20 to 500 vectors (fewer or more than their 128
// dimensions), against the distance computed from the vectors themselves (truth), and against numpy
// and scipy.linalg.sqrtm (reference.py fad on the same float32 .npy files, as Google's fad_utils
// computes it): within 1e-9 of the first, 1e-6 of the second, whose sqrtm of the singular product of
// small sets' covariances errs by up to 1e-7 of the trace.
func TestDistanceMatchesScipy(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{20, 60, 127, 129, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var stats [2]*Stats
			var paths [2]string
			var rows [2][]float32
			for side := range 2 {
				rows[side] = embeddings(n, 128, uint64(100*n+side))
				paths[side] = filepath.Join(dir, fmt.Sprintf("%d-%d.npy", n, side))
				require.NoError(t, npyfile.Write(paths[side], rows[side], n, 128))
				stats[side] = New(128)
				require.NoError(t, stats[side].Add(rows[side]))
			}
			var ref struct {
				Results []struct {
					FAD     float64 `json:"fad"`
					MaxImag float64 `json:"max_imag"`
				}
			}
			require.NoError(t, json.Unmarshal(reftest.Run(t, "reference.py", "fad", paths[0], paths[1]), &ref))
			scipy := ref.Results[0].FAD
			exact := truth(rows[0], rows[1], 128)
			got, err := Distance(stats[0], stats[1])
			require.NoError(t, err)
			t.Logf("%d vectors a side: vggish-go %.17g, from the vectors %.17g, scipy %.17g: relative differences %.2g and %.2g (scipy's %.2g; its largest imaginary part %.2g)",
				n, got, exact, scipy, math.Abs(got-exact)/exact, math.Abs(got-scipy)/scipy, math.Abs(scipy-exact)/exact, ref.Results[0].MaxImag)
			assert.InDelta(t, exact, got, 1e-9*exact)
			assert.InDelta(t, scipy, got, 1e-6*scipy)
		})
	}
}

// Saved statistics load back as they were and give the same distance; numpy reads them as
// pytorch-fid's; pytorch-fid's own files (float32 mu, no count) load too, but cannot grow.
func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	a, b := New(128), New(128)
	require.NoError(t, a.Add(embeddings(300, 128, 5)))
	require.NoError(t, b.Add(embeddings(200, 128, 6)))
	a.Settings = `{"hop_seconds":0.96}`
	path := filepath.Join(dir, "a.npz")
	require.NoError(t, a.Save(path))
	back, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, a.N(), back.N())
	assert.Equal(t, a.Mean(), back.Mean())
	assert.Equal(t, a.Settings, back.Settings)
	assert.Less(t, maxRelDiff(full(back.Covariance()), full(a.Covariance())), 1e-15)
	want, err := Distance(a, b)
	require.NoError(t, err)
	got, err := Distance(back, b)
	require.NoError(t, err)
	assert.InDelta(t, want, got, 1e-12*want)

	reftest.Require(t)
	foreign := filepath.Join(dir, "pytorch-fid.npz")
	out, err := exec.Command(reftest.Interpreter(), "-c", `import sys, numpy as np
z = np.load(sys.argv[1])
assert z["mu"].dtype == np.float64 and z["sigma"].shape == (128, 128) and int(z["n"]) == 300
assert bytes(z["settings"]).decode() == '{"hop_seconds":0.96}'
np.savez(sys.argv[2], mu=z["mu"].astype(np.float32), sigma=z["sigma"])
print(np.abs(z["sigma"] - z["sigma"].T).max())`, path, foreign).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "0.0\n", string(out), "sigma is saved symmetric")
	pf, err := Load(foreign)
	require.NoError(t, err)
	assert.Equal(t, int64(0), pf.N())
	assert.Equal(t, "", pf.Settings)
	got, err = Distance(pf, b)
	require.NoError(t, err)
	assert.InDelta(t, want, got, 1e-6*want, "mu in float32")
	assert.ErrorContains(t, pf.Merge(b), "without a count")
	assert.ErrorContains(t, pf.Add(embeddings(2, 128, 1)), "without a count")
}

func TestErrors(t *testing.T) {
	s := New(4)
	assert.ErrorContains(t, s.Add([]float32{1, 2, 3}), "not whole rows")
	assert.ErrorContains(t, s.Add([]float32{1, 2, float32(math.NaN()), 4}), "NaN")
	require.NoError(t, s.Add([]float32{1, 2, 3, 4}))
	_, err := Distance(s, s)
	assert.ErrorContains(t, err, "two embeddings or more")
	assert.ErrorContains(t, s.Save(filepath.Join(t.TempDir(), "x.npz")), "no covariance")
	assert.ErrorContains(t, s.Merge(New(5)), "5-dimensional")
	_, err = Distance(s, New(5))
	assert.ErrorContains(t, err, "4- and 5-dimensional")
	_, err = Load(filepath.Join(t.TempDir(), "missing.npz"))
	assert.ErrorContains(t, err, "missing.npz")
	_, err = Read(strings.NewReader("not a zip"))
	assert.ErrorContains(t, err, "fad statistics: ")
}

// The zero Stats (declared, not made by New) fails with an error naming New, never a panic; so do nil
// Stats given to Merge and Distance, and a nil reader.
func TestZeroStats(t *testing.T) {
	var zero Stats
	want := "fad: nil or zero Stats: make them with fad.New(dim)"
	assert.EqualError(t, zero.Add([]float32{1, 2}), want)
	assert.EqualError(t, zero.Merge(New(2)), want)
	assert.EqualError(t, New(2).Merge(&zero), want)
	_, err := Distance(&zero, New(2))
	assert.EqualError(t, err, want)
	assert.EqualError(t, zero.Save(filepath.Join(t.TempDir(), "z.npz")), want)
	_, err = zero.WriteTo(io.Discard)
	assert.EqualError(t, err, want)
	assert.Equal(t, 0, zero.Dim())
	assert.EqualError(t, New(2).Merge(nil), want)
	_, err = Distance(nil, nil)
	assert.EqualError(t, err, want)
	_, err = Read(nil)
	assert.EqualError(t, err, "fad statistics: nil reader")
	assert.PanicsWithValue(t, "fad: dimension 0: must be at least 1", func() { New(0) })
}

// WriteTo and Read carry the statistics through a stream as Save and Load through a file, byte for
// byte.
func TestWriteToRead(t *testing.T) {
	a := New(128)
	require.NoError(t, a.Add(embeddings(300, 128, 5)))
	a.Settings = "s"
	var buf bytes.Buffer
	_, err := a.WriteTo(&buf)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "a.npz")
	require.NoError(t, a.Save(path))
	file, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, file, buf.Bytes())
	back, err := Read(&buf)
	require.NoError(t, err)
	assert.Equal(t, a.N(), back.N())
	assert.Equal(t, a.Mean(), back.Mean())
	assert.Equal(t, a.Settings, back.Settings)
}

// A covariance that is not positive semi-definite is refused at load: it would give a negative
// distance. One that is, up to a float32 copy's rounding, loads.
func TestLoadRefusesNonCovariance(t *testing.T) {
	write := func(sigma []float64) string {
		path := filepath.Join(t.TempDir(), "stats.npz")
		z := npyfile.NewNPZ()
		npyfile.Add(z, "mu", []float64{0, 0}, 2)
		npyfile.Add(z, "sigma", sigma, 2, 2)
		require.NoError(t, z.Write(path))
		return path
	}
	path := write([]float64{1, 2, 2, 1}) // eigenvalues 3 and -1
	_, err := Load(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "not positive semi-definite (eigenvalue -1, the largest 3)")
	_, err = Load(write([]float64{-1, 0, 0, -2}))
	assert.ErrorContains(t, err, "not positive semi-definite")

	s, err := Load(write([]float64{1, 1, 1, float64(float32(1 - 1e-7))})) // singular, rounded
	require.NoError(t, err)
	assert.Equal(t, 2, s.Dim())
}

// A distance rounded below zero, such as a set's to itself, is 0; one clearly below zero, which only
// statistics that are not a set's give (a covariance with a negative eigenvalue), is returned as it
// is for the caller to refuse.
func TestDistanceRoundedBelowZero(t *testing.T) {
	counted := func(n int, seed uint64) *Stats {
		s := New(128)
		require.NoError(t, s.Add(embeddings(n, 128, seed)))
		return s
	}
	notPSD := &Stats{n: 10, mean: make([]float64, 3), m2: mat.NewSymDense(3, []float64{9, 0, 0, 0, 9, 0, 0, 0, -9e-3})}
	tests := []struct {
		name     string
		s        *Stats
		negative bool
	}{
		// Each of these sets came out below zero against itself before rounding was allowed for.
		{"20 clips, singular", counted(20, 2), false},
		{"129 clips, nearly singular", counted(129, 2), false},
		{"300 clips", counted(300, 2), false},
		{"a negative eigenvalue", notPSD, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Distance(tt.s, tt.s)
			require.NoError(t, err)
			if tt.negative {
				assert.Less(t, d, -1e-3)
				return
			}
			assert.GreaterOrEqual(t, d, 0.0)
			assert.Less(t, d, 1e-9*2*mat.Trace(tt.s.Covariance()))
		})
	}
}

// Load refuses anything but a regular file without opening it: a named pipe would block until
// something wrote to it.
func TestLoadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "q.npz")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	tests := []struct {
		name, path, want string
	}{
		{"named pipe", fifo, "not a regular file: it is a named pipe"},
		{"folder", dir, "not a regular file: it is a folder"},
		{"missing", filepath.Join(dir, "missing.npz"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Load(tt.path); done <- err }()
			select {
			case err := <-done:
				require.Error(t, err)
				assert.Contains(t, err.Error(), "fad statistics "+tt.path)
				assert.Contains(t, err.Error(), tt.want)
			case <-time.After(5 * time.Second):
				t.Fatalf("Load(%s) blocked", tt.path)
			}
		})
	}
}
