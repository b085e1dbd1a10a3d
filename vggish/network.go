package vggish

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/internal/pth"
)

// EmbeddingSize is the length of one VGGish embedding.
const EmbeddingSize = 128

// layer is one parameterised layer of the published state dict.
type layer struct {
	name   string  // state-dict prefix
	weight []int64 // shape; the bias is (weight[0],)
	pool   bool    // a 2×2 max-pool follows (conv layers)
}

// layers is VGGish in state-dict order: six 3×3 convolutions, each followed by a ReLU and some by a
// max-pool, then three linear layers.
var layers = []layer{
	{"features.0", []int64{64, 1, 3, 3}, true},
	{"features.3", []int64{128, 64, 3, 3}, true},
	{"features.6", []int64{256, 128, 3, 3}, false},
	{"features.8", []int64{256, 256, 3, 3}, true},
	{"features.11", []int64{512, 256, 3, 3}, false},
	{"features.13", []int64{512, 512, 3, 3}, true},
	{"embeddings.0", []int64{4096, 12288}, false},
	{"embeddings.2", []int64{4096, 4096}, false},
	{"embeddings.4", []int64{EmbeddingSize, 4096}, false},
}

const convLayers = 6

// network holds VGGish's parameters on one device and runs its forward pass. gotch's nn modules are
// not used: their Forward methods call log.Fatal on any libtorch error (an out-of-memory GPU, say),
// where this network returns the error.
type network struct {
	device    gotch.Device
	params    []*ts.Tensor // weight, bias per layer
	finalReLU bool
}

// loadNetwork checks the state dict at path against the published layout, then copies each parameter
// once into a tensor on device. fp16, bf16 and fp64 weights are converted to float32.
func loadNetwork(path string, device gotch.Device, finalReLU bool) (*network, error) {
	f, err := pth.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkStateDict(f); err != nil {
		return nil, fmt.Errorf("weights %s: %w", path, err)
	}
	n := &network{device: device, finalReLU: finalReLU}
	for _, l := range layers {
		for _, suffix := range []string{".weight", ".bias"} {
			t, err := toDevice(f, l.name+suffix, device)
			if err != nil {
				n.close()
				return nil, fmt.Errorf("weights %s: %s%s: %w", path, l.name, suffix, err)
			}
			n.params = append(n.params, t)
		}
	}
	return n, nil
}

func checkStateDict(f *pth.File) error {
	want := map[string][]int64{}
	for _, l := range layers {
		want[l.name+".weight"] = l.weight
		want[l.name+".bias"] = l.weight[:1]
	}
	var problems []string
	for _, k := range f.Keys {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected key %q", k))
		}
	}
	var missing []string
	for k, shape := range want {
		t, ok := f.Tensors[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !slices.Equal(t.Shape, shape):
			problems = append(problems, fmt.Sprintf("%s has shape %v, want %v", k, t.Shape, shape))
		case t.DType != pth.Float32 && t.DType != pth.Float16 && t.DType != pth.BFloat16 && t.DType != pth.Float64:
			problems = append(problems, fmt.Sprintf("%s has dtype %s, want a float type", k, t.DType))
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		problems = append(problems, fmt.Sprintf("missing key %q", k))
	}
	if len(problems) > 0 {
		return errors.New("not a VGGish state dict: " + strings.Join(problems, "; "))
	}
	return nil
}

// toDevice copies a parameter into a float32 tensor on device. float32 data is read from the file
// straight into libtorch's memory: one copy, and peak memory near the size of the weights.
func toDevice(f *pth.File, key string, device gotch.Device) (*ts.Tensor, error) {
	p := f.Tensors[key]
	if p.DType == pth.Float32 {
		return moveTo(device)(tensor.Fill(gotch.Float, p.Shape, func(dst []byte) error { return f.ReadInto(key, dst) }))
	}
	v, err := p.Float32()
	if err != nil {
		return nil, err
	}
	return moveTo(device)(tensor.FromSlice(v, p.Shape...))
}

// moveTo wraps a call that makes a CPU tensor, and moves its result to device.
func moveTo(device gotch.Device) func(*ts.Tensor, error) (*ts.Tensor, error) {
	return func(t *ts.Tensor, err error) (*ts.Tensor, error) {
		if err != nil || device == gotch.CPU {
			return t, err
		}
		moved, err := t.To(device, true)
		return moved, tensor.Err(err)
	}
}

// forward maps examples (B, 1, 96, 64) on the network's device to embeddings (B, 128).
func (n *network) forward(x *ts.Tensor) (*ts.Tensor, error) {
	var s tensor.Scope
	defer s.Close()
	one, two, zero := []int64{1, 1}, []int64{2, 2}, []int64{0, 0}
	relu := func(t *ts.Tensor) (*ts.Tensor, error) { return t.Relu(false) }
	var steps []tensor.Step
	for i, l := range layers[:convLayers] {
		w, b := n.params[2*i], n.params[2*i+1]
		steps = append(steps, func(t *ts.Tensor) (*ts.Tensor, error) { return ts.Conv2d(t, w, b, one, one, one, 1) }, relu)
		if l.pool {
			steps = append(steps, func(t *ts.Tensor) (*ts.Tensor, error) { return t.MaxPool2d(two, two, zero, one, false, false) })
		}
	}
	// (B, 512, 6, 4) -> (B, 6, 4, 512) -> (B, 12288): TensorFlow's channel order, which the linear
	// weights were trained on.
	steps = append(steps,
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Permute([]int64{0, 2, 3, 1}, false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Contiguous(false) },
		func(t *ts.Tensor) (*ts.Tensor, error) { return t.Flatten(1, -1, false) })
	for i := convLayers; i < len(layers); i++ {
		w, b := n.params[2*i], n.params[2*i+1]
		steps = append(steps, func(t *ts.Tensor) (*ts.Tensor, error) { return ts.Linear(t, w, b) })
		if i < len(layers)-1 || n.finalReLU {
			steps = append(steps, relu)
		}
	}
	x, err := s.Apply(x, steps...)
	if err != nil {
		return nil, err
	}
	return s.Release(x), nil
}

func (n *network) close() {
	for _, p := range n.params {
		p.Drop()
	}
	n.params = nil
}
