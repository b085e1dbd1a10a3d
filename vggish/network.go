package vggish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/pth"
	"github.com/vggish-go/vggish/internal/tensor"
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

// network is VGGish on one device, run by the native Net of internal/tensor: one call per batch, with
// the weights laid out once for the device's fastest kernels. gotch's nn modules are not used: their
// Forward methods call log.Fatal on any libtorch error (an out-of-memory GPU, say), where this network
// returns the error.
type network struct {
	net *tensor.Net
}

// layout is the fastest form of the network on device at precision p, measured (see the README). On
// the CPU: oneDNN's blocked layout with the convolution weights reordered once at load, whose float32
// results equal libtorch's plain layout bit for bit; in bfloat16 (AVX-512 CPUs only: see
// Precision.Resolve) it also beat channels-last by 11% of CPU time. On CUDA: cuDNN on the plain layout in
// float32, channels-last for the tensor cores in bfloat16 and float16.
func layout(device gotch.Device, p Precision) tensor.Layout {
	switch {
	case device.IsCuda() && (p == BF16 || p == FP16):
		return tensor.ChannelsLast
	case device.IsCuda():
		return tensor.Plain
	}
	return tensor.MKLDNN
}

// loadNetwork checks the state dict at path against the published layout, then copies each parameter
// once into a tensor on device and prepares the network to run at precision p. fp16, bf16 and fp64
// weights are read as float32, then converted to p's type once, by the Net.
func loadNetwork(path string, device gotch.Device, finalReLU bool, p Precision) (*network, error) {
	f, err := pth.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vggish: weights: %w", err)
	}
	defer f.Close()
	if err := checkStateDict(f); err != nil {
		return nil, fmt.Errorf("vggish: weights %s: %w", path, err)
	}
	params := make([]tensor.Layer, len(layers))
	defer func() {
		for _, p := range params {
			for _, t := range []*ts.Tensor{p.Weight, p.Bias} {
				if t != nil {
					t.Drop()
				}
			}
		}
	}()
	for i, l := range layers {
		p := &params[i]
		p.Conv, p.Pool = i < convLayers, l.pool
		p.ReLU = i < len(layers)-1 || finalReLU
		for _, param := range []struct {
			dst    **ts.Tensor
			suffix string
		}{{&p.Weight, ".weight"}, {&p.Bias, ".bias"}} {
			if *param.dst, err = toDevice(f, l.name+param.suffix, device); err != nil {
				return nil, fmt.Errorf("vggish: weights %s: %s%s: %w", path, l.name, param.suffix, err)
			}
		}
	}
	net, err := tensor.NewNet(params, layout(device, p), p.dtype())
	if err != nil {
		return nil, fmt.Errorf("vggish: weights %s: %w", path, err)
	}
	return &network{net: net}, nil
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
		return tensor.To(device)(tensor.Fill(gotch.Float, p.Shape, func(dst []byte) error { return f.ReadInto(key, dst) }))
	}
	v, err := p.Float32()
	if err != nil {
		return nil, err
	}
	return tensor.To(device)(tensor.FromSlice(v, p.Shape...))
}

// forward maps examples (B, 1, 96, 64) on the network's device to embeddings (B, 128), stopping early
// with ctx's error when ctx is done.
func (n *network) forward(ctx context.Context, x *ts.Tensor) (*ts.Tensor, error) {
	return n.net.Forward(ctx, x)
}

func (n *network) close() { n.net.Close() }
