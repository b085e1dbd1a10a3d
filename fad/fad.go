// Package fad computes the Fréchet Audio Distance (Kilgour et al., 2019) between two sets of
// embeddings:
//
//	FAD = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))
//
// with mu and S each set's mean and sample covariance (divided by n - 1, as np.cov) over its clips'
// embeddings. [Stats] gathers them in one pass ([Stats.Add], [Stats.Merge]), in float64, whatever
// the size of the set, and saves them ([Stats.Save], [Load]; [Stats.WriteTo], [Read] for streams)
// in the .npz layout of pytorch-fid's precomputed statistics (mu, sigma; here also n), so that a
// reference set is embedded once.
// [Distance] is the FAD of two sets' statistics.
//
// The trace of the matrix square root is taken from the symmetric form S_a^(1/2) S_b S_a^(1/2), which
// has the eigenvalues of S_a S_b and is positive semi-definite, by two symmetric eigendecompositions
// (gonum's [mat.EigenSym]): no complex arithmetic, and no failure on the singular covariances of sets with
// fewer clips than dimensions. Implementations built on scipy.linalg.sqrtm(S_a.dot(S_b)) (Google's,
// pytorch-fid, frechet-audio-distance, fadtk) get complex parts there, of the size of the rounding's
// square root, and keep the real part; here the eigenvalues that are zero (below zero, or beyond the
// rank n - 1 that n clips can span) are set to zero, so that rounding is not magnified by the square
// root.
package fad

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"codeberg.org/sbinet/npyio/npz"
	"gonum.org/v1/gonum/mat"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/regfile"
)

// Stats are the mean and covariance of a set of embeddings. Make them with [New] (or [Load]): the
// zero Stats has no dimension, and its methods return an error.
type Stats struct {
	n    int64
	mean []float64
	// m2 is the sum of (x - mean)(x - mean)^T over the set, the covariance times n - 1; for statistics
	// loaded without a count (uncounted), the covariance itself.
	m2        *mat.SymDense
	uncounted bool
	// Settings describes how the embeddings were made (free text, JSON for vggish fad); it is saved
	// with the statistics.
	Settings string
}

// New returns the statistics of an empty set of dim-dimensional embeddings. It panics unless dim is at
// least 1, as make does for a negative length.
func New(dim int) *Stats {
	if dim < 1 {
		panic(fmt.Sprintf("fad: dimension %d: must be at least 1", dim))
	}
	return &Stats{mean: make([]float64, dim), m2: mat.NewSymDense(dim, nil)}
}

// errZero is the error of the zero Stats' methods, and of Merge and Distance given nil.
var errZero = errors.New("fad: nil or zero Stats: make them with fad.New(dim)")

// made returns errZero for nil or the zero Stats, which has no dimension (not even 0: New refuses it).
func (s *Stats) made() error {
	if s == nil || s.m2 == nil {
		return errZero
	}
	return nil
}

// Dim is the embeddings' dimension.
func (s *Stats) Dim() int { return len(s.mean) }

// N is the number of embeddings added, or 0 for statistics saved without a count (pytorch-fid's).
func (s *Stats) N() int64 { return s.n }

// Mean is the set's mean (a copy).
func (s *Stats) Mean() []float64 { return slices.Clone(s.mean) }

// Covariance is the set's sample covariance (a copy), divided by n - 1 as np.cov does; nil for fewer
// than two embeddings.
func (s *Stats) Covariance() *mat.SymDense {
	if s.uncounted {
		return mat.NewSymDense(s.Dim(), slices.Clone(s.m2.RawSymmetric().Data))
	}
	if s.n < 2 {
		return nil
	}
	var c mat.SymDense
	c.ScaleSym(1/float64(s.n-1), s.m2)
	return &c
}

// Add adds embeddings: rows of Dim() float32 values, one after another.
func (s *Stats) Add(rows []float32) error {
	if err := s.made(); err != nil {
		return err
	}
	if s.uncounted {
		return errors.New("fad: statistics saved without a count cannot grow")
	}
	d := s.Dim()
	if len(rows)%d != 0 {
		return fmt.Errorf("fad: %d values are not whole rows of %d", len(rows), d)
	}
	k := len(rows) / d
	if k == 0 {
		return nil
	}
	x := make([]float64, len(rows))
	for i, v := range rows {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("fad: embedding %d holds %v", i/d, v)
		}
		x[i] = float64(v)
	}
	// The rows' own mean and co-moment, in two passes over them, then merged into the set's.
	b := New(d)
	b.n = int64(k)
	for i := range k {
		for j, v := range x[i*d : (i+1)*d] {
			b.mean[j] += v
		}
	}
	for j := range b.mean {
		b.mean[j] /= float64(k)
	}
	for i := range k {
		for j := range d {
			x[i*d+j] -= b.mean[j]
		}
	}
	b.m2.SymOuterK(1, mat.NewDense(k, d, x).T())
	return s.Merge(b)
}

// Merge adds another set's statistics to s (Chan, Golub and LeVeque's pairwise update).
func (s *Stats) Merge(o *Stats) error {
	switch {
	case s.made() != nil || o.made() != nil:
		return errZero
	case o.Dim() != s.Dim():
		return fmt.Errorf("fad: merging %d-dimensional statistics into %d-dimensional ones", o.Dim(), s.Dim())
	case s.uncounted || o.uncounted:
		return errors.New("fad: statistics saved without a count cannot be merged")
	case o.n == 0:
		return nil
	}
	na, nb := float64(s.n), float64(o.n)
	n := na + nb
	delta := make([]float64, s.Dim())
	for j := range delta {
		delta[j] = o.mean[j] - s.mean[j]
		s.mean[j] += delta[j] * nb / n
	}
	s.m2.AddSym(s.m2, o.m2)
	s.m2.SymRankOne(s.m2, na*nb/n, mat.NewVecDense(len(delta), delta))
	s.n += o.n
	return nil
}

// Distance is the Fréchet distance between the Gaussians of two sets' statistics. A result below zero
// by no more than rounding (see roundingTolerance) is 0; one further below, which only statistics
// that are not a set's can give, is returned as it is, for the caller to refuse.
func Distance(a, b *Stats) (float64, error) {
	if a.made() != nil || b.made() != nil {
		return 0, errZero
	}
	if a.Dim() != b.Dim() {
		return 0, fmt.Errorf("fad: %d- and %d-dimensional statistics", a.Dim(), b.Dim())
	}
	sa, sb := a.Covariance(), b.Covariance()
	if sa == nil || sb == nil {
		return 0, fmt.Errorf("fad: a covariance needs two embeddings or more; the sets have %d and %d", a.n, b.n)
	}
	if !allFinite(a.mean) || !allFinite(b.mean) || !allFinite(sa.RawSymmetric().Data) || !allFinite(sb.RawSymmetric().Data) {
		return 0, errors.New("fad: the statistics hold a NaN or infinity")
	}
	m := 0.0
	for j := range a.mean {
		diff := a.mean[j] - b.mean[j]
		m += diff * diff
	}
	tr, err := traceSqrtProduct(sa, sb, a.rank(), b.rank())
	if err != nil {
		return 0, err
	}
	scale := m + mat.Trace(sa) + mat.Trace(sb)
	d := scale - 2*tr
	if d < 0 && -d <= roundingTolerance*scale {
		d = 0 // the distance of a set to itself, say, rounded below zero
	}
	return d, nil
}

// roundingTolerance is how far below zero, relative to |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b), a
// distance is rounding rather than statistics that cannot be: √eps (1.5e-8). An eigenvalue of
// S_a^(1/2) S_b S_a^(1/2) is rounded by about eps of the largest, and the square root turns a rounding
// δ of a small eigenvalue into up to √δ, so a small multiple of eps is not enough: sets of 129 vectors
// against themselves came out as low as -6e-11 of the terms (a 248-clip set -9e-15).
const roundingTolerance = 0x1p-26

// rank is the most the covariance's rank can be: n vectors span at most n - 1 directions about their
// mean. Statistics without a count give no bound.
func (s *Stats) rank() int {
	if s.uncounted || s.n-1 >= int64(s.Dim()) {
		return s.Dim()
	}
	return int(s.n - 1)
}

// traceSqrtProduct is Tr((A B)^(1/2)) for symmetric positive semi-definite A and B of rank at most ra
// and rb: the sum of the square roots of the eigenvalues of A^(1/2) B A^(1/2), with
// A^(1/2) = V diag(sqrt(w)) V^T from A's eigendecomposition. The eigenvalues that the ranks make zero
// are set to zero, as are any below zero: they are rounding, which the square root, steep at zero,
// would otherwise turn from 1e-16 into 1e-8 per direction.
func traceSqrtProduct(a, b *mat.SymDense, ra, rb int) (float64, error) {
	var ea mat.EigenSym
	if !ea.Factorize(a, true) {
		return 0, errors.New("fad: the eigendecomposition of a covariance did not converge")
	}
	w := ea.Values(nil)
	var v mat.Dense
	ea.VectorsTo(&v)
	n := len(w)
	var vs mat.Dense // V diag(sqrt(w))
	vs.CloneFrom(&v)
	for j, x := range clampRank(w, ra) {
		r := math.Sqrt(x)
		for i := range n {
			vs.Set(i, j, vs.At(i, j)*r)
		}
	}
	var sqrtA, t, m mat.Dense
	sqrtA.Mul(&vs, v.T())
	t.Mul(&sqrtA, b)
	m.Mul(&t, &sqrtA)
	sym := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			sym.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	var em mat.EigenSym
	if !em.Factorize(sym, false) {
		return 0, errors.New("fad: the eigendecomposition of the covariances' product did not converge")
	}
	tr := 0.0
	for _, x := range clampRank(em.Values(nil), min(ra, rb)) {
		tr += math.Sqrt(x)
	}
	return tr, nil
}

// clampRank sets eigenvalues w (ascending) to zero below zero and beyond the rank: all but the
// largest rank ones.
func clampRank(w []float64, rank int) []float64 {
	for i, x := range w {
		if x < 0 || i < len(w)-rank {
			w[i] = 0
		}
	}
	return w
}

// Save writes the statistics to an .npz archive at path, whole or not at all: mu (d,) and sigma (d, d)
// as float64, the layout of pytorch-fid's precomputed statistics, with n (the count, int64) and, when
// set, settings (its text as uint8 bytes: bytes(np.load(f)["settings"]).decode()).
func (s *Stats) Save(path string) error {
	z, err := s.npz()
	if err != nil {
		return err
	}
	return z.Write(path)
}

// WriteTo writes the statistics to w as Save writes them to a file (io.WriterTo).
func (s *Stats) WriteTo(w io.Writer) (int64, error) {
	z, err := s.npz()
	if err != nil {
		return 0, err
	}
	return z.WriteTo(w)
}

// npz is the archive that Save and WriteTo write.
func (s *Stats) npz() (*npyfile.NPZ, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	c := s.Covariance()
	if c == nil {
		return nil, fmt.Errorf("fad: statistics of %d embeddings have no covariance", s.n)
	}
	d := s.Dim()
	sigma := make([]float64, 0, d*d) // both triangles: a SymDense keeps only the upper one
	for i := range d {
		for j := range d {
			sigma = append(sigma, c.At(i, j))
		}
	}
	z := npyfile.NewNPZ()
	npyfile.Add(z, "mu", s.mean, d)
	npyfile.Add(z, "sigma", sigma, d, d)
	npyfile.Add(z, "n", []int64{s.n})
	if s.Settings != "" {
		npyfile.Add(z, "settings", []byte(s.Settings), len(s.Settings))
	}
	return z, nil
}

// Load reads statistics saved by Save, or any .npz with mu and sigma (float32 or float64), such as
// pytorch-fid's; without n they can be compared but not merged.
// Anything but a regular file is refused before it is opened: a named pipe would block.
func Load(path string) (*Stats, error) {
	f, err := regfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fad statistics %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fad statistics %s: %w", path, err)
	}
	r, err := npz.NewReader(f, info.Size())
	if err != nil {
		return nil, fmt.Errorf("fad statistics %s: %w", path, err)
	}
	defer r.Close()
	return read(r, path)
}

// Read reads statistics from r, as Load reads them from a file. An .npz archive is a zip, read from
// its end: Read reads all of r first (statistics of 128-d embeddings take 130 kB).
func Read(r io.Reader) (*Stats, error) {
	if r == nil {
		return nil, errors.New("fad statistics: nil reader")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("fad statistics: %w", err)
	}
	z, err := npz.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("fad statistics: %w", err)
	}
	return read(z, "")
}

// read reads statistics from an open archive; name (a path, or empty) is for errors.
func read(r *npz.Reader, name string) (*Stats, error) {
	if name != "" {
		name = " " + name
	}
	fail := func(format string, args ...any) (*Stats, error) {
		return nil, fmt.Errorf("fad statistics%s: "+format, append([]any{name}, args...)...)
	}
	mu, shape, err := npyfile.ReadFloats(r, "mu")
	if err != nil {
		return fail("%w", err)
	}
	if len(shape) != 1 || shape[0] == 0 {
		return fail("mu has shape %v, want (d,)", shape)
	}
	d := shape[0]
	sigma, shape, err := npyfile.ReadFloats(r, "sigma")
	if err != nil {
		return fail("%w", err)
	}
	if len(shape) != 2 || shape[0] != d || shape[1] != d {
		return fail("sigma has shape %v, want (%d, %d)", shape, d, d)
	}
	if !allFinite(mu) || !allFinite(sigma) {
		return fail("mu or sigma holds a NaN or infinity")
	}
	s := New(d)
	copy(s.mean, mu)
	// np.cov's result is symmetric to the rounding of a float32 copy at worst: keep the mean of the two
	// triangles, and refuse anything further off.
	scale := 0.0
	for _, v := range sigma {
		scale = max(scale, math.Abs(v))
	}
	for i := range d {
		for j := i + 1; j < d; j++ {
			if math.Abs(sigma[i*d+j]-sigma[j*d+i]) > 1e-6*scale {
				return fail("sigma is not symmetric")
			}
			sigma[i*d+j] = (sigma[i*d+j] + sigma[j*d+i]) / 2
		}
	}
	cov := mat.NewSymDense(d, sigma)
	// A covariance is positive semi-definite; one that is not would give a negative "distance". The
	// tolerance leaves room for the rounding of a float32 copy of a singular covariance.
	var eig mat.EigenSym
	if !eig.Factorize(cov, false) {
		return fail("sigma: eigendecomposition failed")
	}
	if w := eig.Values(nil); w[0] < -psdTolerance*max(w[d-1], 0) || (w[0] < 0 && w[d-1] <= 0) {
		return fail("sigma is not a covariance: it is not positive semi-definite (eigenvalue %.3g, the largest %.3g)", w[0], w[d-1])
	}
	if slices.Contains(r.Keys(), "n.npy") {
		var n int64
		if err := r.Read("n.npy", &n); err != nil {
			return fail("n: %w", err)
		}
		if n < 2 {
			return fail("n is %d", n)
		}
		s.n = n
		s.m2.ScaleSym(float64(n-1), cov)
	} else {
		s.m2.CopySym(cov)
		s.uncounted = true
	}
	if slices.Contains(r.Keys(), "settings.npy") {
		var b []uint8
		if err := r.Read("settings.npy", &b); err != nil {
			return fail("settings: %w", err)
		}
		s.Settings = string(b)
	}
	return s, nil
}

// psdTolerance is how negative, relative to the largest, the smallest eigenvalue of a loaded
// covariance may be: rounding, not a covariance that cannot be.
const psdTolerance = 1e-4

func allFinite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
