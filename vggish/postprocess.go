package vggish

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/pth"
	"github.com/vggish-go/vggish/internal/tensor"
)

// Postprocess selects torchvggish's post-processing of the raw embeddings.
type Postprocess int

const (
	// NoPostprocess returns the network's output (the Towhee operator's numbers).
	NoPostprocess Postprocess = iota
	// PCA applies the release's PCA whitening only: useful for comparing embeddings on a continuous
	// scale.
	PCA
	// PCAQuantize is torchvggish's Postprocessor: PCA whitening, clipping to [-2, 2] and quantising
	// to 0..255 (returned as float32 values; Embeddings.Uint8 gives bytes).
	PCAQuantize
)

const (
	pcaVectorsKey = "pca_eigen_vectors"
	pcaMeansKey   = "pca_means"
	quantizeMin   = -2.0
	quantizeMax   = 2.0
)

// postprocessor holds the PCA parameters on the model's device.
type postprocessor struct {
	mode    Postprocess
	vectors *ts.Tensor // (128, 128)
	means   *ts.Tensor // (128, 1)
	lo, hi  *ts.Scalar
	scale   *ts.Scalar
}

// loadPostprocessor reads PCA parameters from torchvggish's vggish_pca_params-*.pth (a torch.save'd
// dict of numpy arrays) or from the TensorFlow release's vggish_pca_params.npz.
func loadPostprocessor(path string, mode Postprocess, device gotch.Device) (*postprocessor, error) {
	vectors, means, err := readPCA(path)
	if err != nil {
		return nil, fmt.Errorf("vggish: PCA parameters %s: %w", path, err)
	}
	p := &postprocessor{mode: mode, lo: ts.FloatScalar(quantizeMin), hi: ts.FloatScalar(quantizeMax),
		scale: ts.FloatScalar(255.0 / (quantizeMax - quantizeMin))}
	if p.vectors, err = tensor.To(device)(tensor.FromSlice(vectors, EmbeddingSize, EmbeddingSize)); err != nil {
		return nil, fmt.Errorf("vggish: PCA parameters %s: %w", path, err)
	}
	if p.means, err = tensor.To(device)(tensor.FromSlice(means, EmbeddingSize, 1)); err != nil {
		p.close()
		return nil, fmt.Errorf("vggish: PCA parameters %s: %w", path, err)
	}
	return p, nil
}

func readPCA(path string) (vectors, means []float32, err error) {
	if strings.EqualFold(filepath.Ext(path), ".npz") {
		return readPCANpz(path)
	}
	f, err := pth.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	get := func(key string, n int) ([]float32, error) {
		t, ok := f.Tensors[key]
		if !ok {
			return nil, fmt.Errorf("missing key %q (have %v)", key, f.Keys)
		}
		v, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if len(v) != n {
			return nil, fmt.Errorf("%s has shape %v, want %d values", key, t.Shape, n)
		}
		return slices.Clone(v), nil // v may alias the mapping that Close releases
	}
	if vectors, err = get(pcaVectorsKey, EmbeddingSize*EmbeddingSize); err != nil {
		return nil, nil, err
	}
	means, err = get(pcaMeansKey, EmbeddingSize)
	return vectors, means, err
}

func readPCANpz(path string) (vectors, means []float32, err error) {
	r, err := npz.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	get := func(key string, n int) ([]float32, error) {
		v, shape, err := npyfile.ReadFloats(r, key)
		if err != nil {
			return nil, err
		}
		if len(v) != n {
			return nil, fmt.Errorf("%s has shape %v, want %d values", key, shape, n)
		}
		out := make([]float32, n)
		for i, x := range v {
			if out[i] = float32(x); out[i]-out[i] != 0 { // as pth refuses a non-finite float
				return nil, fmt.Errorf("%s: element %d is %v", key, i, out[i])
			}
		}
		return out, nil
	}
	if vectors, err = get(pcaVectorsKey, EmbeddingSize*EmbeddingSize); err != nil {
		return nil, nil, err
	}
	means, err = get(pcaMeansKey, EmbeddingSize)
	return vectors, means, err
}

// pcaRows is how many embeddings each PCA product takes: one shape, so that an embedding's numbers do
// not depend on its batch (see tensor.Net; 16 rows keep a row's place in the product from mattering on
// every OpenBLAS kernel, as for the network's linear layers).
const pcaRows = 16

// apply runs torchvggish's Postprocessor.postprocess on (B, 128) embeddings, with the same operations
// in the same order so that the float32 results agree: (E · (xᵀ − means))ᵀ, in products of pcaRows
// embeddings (the last padded with zeros). x has rows rows.
func (p *postprocessor) apply(x *ts.Tensor, rows int64) (*ts.Tensor, error) {
	var s tensor.Scope
	defer s.Close()
	padded := (rows + pcaRows - 1) / pcaRows * pcaRows
	xt, err := s.Apply(x,
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.ConstantPadNd([]int64{0, 0, 0, padded - rows}, false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.T(false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Sub(p.means, false) })
	if err != nil {
		return nil, err
	}
	parts := make([]*ts.Tensor, 0, padded/pcaRows)
	for lo := int64(0); lo < padded; lo += pcaRows {
		part, err := s.Apply(xt,
			func(t *ts.Tensor) (*ts.Tensor, error) { return t.Narrow(1, lo, pcaRows, false) },
			func(t *ts.Tensor) (*ts.Tensor, error) { return p.vectors.Mm(t, false) })
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
	}
	steps := []tensor.Step{
		func(t *ts.Tensor) (*ts.Tensor, error) { return ts.Cat(parts, 1) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.T(false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Narrow(0, 0, rows, false) },
	}
	if p.mode == PCAQuantize {
		steps = append(steps,
			func(t *ts.Tensor) (*ts.Tensor, error) { return t.Clamp(p.lo, p.hi, false) },
			func(t *ts.Tensor) (*ts.Tensor, error) { return t.SubScalar(p.lo, false) },
			func(t *ts.Tensor) (*ts.Tensor, error) { return t.MulScalar(p.scale, false) },
			func(t *ts.Tensor) (*ts.Tensor, error) { return t.Round(false) })
	}
	steps = append(steps, func(t *ts.Tensor) (*ts.Tensor, error) { return t.Contiguous(false) })
	if x, err = s.Apply(xt, steps...); err != nil {
		return nil, err
	}
	return s.Release(x), nil
}

func (p *postprocessor) close() {
	for _, t := range []*ts.Tensor{p.vectors, p.means} {
		if t != nil {
			t.Drop()
		}
	}
}
