// Package golden gives tests what they need to check vggish-go without Python: the goldens committed
// under testdata/golden (made by the Python reference with testdata/make_goldens.py) and the weights
// and examples those were computed from, rebuilt here from the same formula, bit for bit.
//
// The weights are VGGish's in the published layout, 288 MB as a torch.save file, too large to commit:
// Weights writes them once per test binary into a temporary folder (Cleanup removes it). Element i of
// stream k is u·s in float32, with u = (splitmix64(k<<32 | i)>>40 − 2²³) / 2²³ in [−1, 1) (see Value);
// the state dict's k-th tensor is stream k, s = sqrt(6/fan_in) for a weight (He's uniform
// initialisation) and 0.01 for a bias. testdata/make_goldens.py documents the goldens, and its
// golden.json holds the sha256 of each tensor, which TestFormulaMatchesGoldens compares.
package golden

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/vggish-go/vggish/internal/npyfile"
)

// Dir is testdata/golden, found from this file's location.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "golden")
}

// Path is the absolute path of a file under testdata/golden.
func Path(name string) string { return filepath.Join(Dir(), name) }

// Fixtures are the committed WAV files, as the goldens name them (without extension).
var Fixtures = []string{"speech_16k_mono_pcm16_2100ms", "chirp_22k_stereo_pcm16_1200ms", "noise_8k_mono_u8_1500ms"}

// Read loads a golden .npy file and its shape.
func Read(tb testing.TB, name string) ([]float32, []int) {
	tb.Helper()
	data, shape, err := npyfile.Read(Path(name))
	if err != nil {
		tb.Fatal(err)
	}
	return data, shape
}

// Meta is golden.json.
type Meta struct {
	Formula        string            `json:"formula"`
	Torch          string            `json:"torch"`
	WeightsSHA256  map[string]string `json:"weights_sha256"`
	ExamplesSHA256 string            `json:"examples_sha256"`
}

// ReadMeta loads golden.json.
func ReadMeta(tb testing.TB) Meta {
	tb.Helper()
	b, err := os.ReadFile(Path("golden.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// Layer is a parameterised layer of the published state dict: its key prefix and weight shape.
type Layer struct {
	Name   string
	Weight []int64
}

// Layers is VGGish's state dict in order (as testdata/make_weights.py's LAYERS).
var Layers = []Layer{
	{"features.0", []int64{64, 1, 3, 3}},
	{"features.3", []int64{128, 64, 3, 3}},
	{"features.6", []int64{256, 128, 3, 3}},
	{"features.8", []int64{256, 256, 3, 3}},
	{"features.11", []int64{512, 256, 3, 3}},
	{"features.13", []int64{512, 512, 3, 3}},
	{"embeddings.0", []int64{4096, 512 * 4 * 6}},
	{"embeddings.2", []int64{4096, 4096}},
	{"embeddings.4", []int64{128, 4096}},
}

// Tensor is one tensor of the formula weights.
type Tensor struct {
	Key    string
	Shape  []int64
	Stream uint64
	Scale  float32
}

// Tensors are the formula weights' tensors in state-dict order.
func Tensors() []Tensor {
	var out []Tensor
	for k, l := range Layers {
		fanIn := int64(1)
		for _, d := range l.Weight[1:] {
			fanIn *= d
		}
		out = append(out,
			Tensor{l.Name + ".weight", l.Weight, uint64(2 * k), float32(math.Sqrt(6 / float64(fanIn)))},
			Tensor{l.Name + ".bias", l.Weight[:1], uint64(2*k + 1), 0.01})
	}
	return out
}

// Len is the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= int(d)
	}
	return n
}

// Values computes the tensor's elements.
func (t Tensor) Values() []float32 { return Values(t.Stream, t.Len(), t.Scale) }

// Values is elements 0..n-1 of stream k at scale s.
func Values(k uint64, n int, s float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = Value(k, uint64(i), s)
	}
	return out
}

// Value is element i of stream k at scale s: u·s rounded to float32, u = (splitmix64(k<<32 | i)>>40 −
// 2²³) / 2²³, which float32 holds exactly. The explicit conversion keeps the product from being fused
// into a later operation.
func Value(k, i uint64, s float32) float32 {
	u := float32(int64(splitmix64(k<<32|i)>>40)-1<<23) / (1 << 23)
	return float32(u * s)
}

// splitmix64 is Vigna's SplitMix64 output function applied to x.
func splitmix64(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// The examples the network goldens were computed on: stream 1000 at scale 3, values in [-3, 3).
const (
	ExamplesStream = 1000
	ExamplesScale  = 3
	ExamplesCount  = 64
)

// Examples are the log-mel examples the network goldens were computed on: ExamplesCount × 96 × 64
// values.
func Examples() []float32 { return Values(ExamplesStream, ExamplesCount*96*64, ExamplesScale) }

// SHA256 is the hex sha256 of data as little-endian float32 values (golden.json's checksums).
func SHA256(data []float32) string {
	h := sha256.New()
	b := make([]byte, 4)
	for _, v := range data {
		binary.LittleEndian.PutUint32(b, math.Float32bits(v))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

var (
	weightsOnce sync.Once
	weightsDir  string
	weightsPath string
	weightsErr  error
)

// Weights returns the path of the formula weights as a torch.save zip file, written once per test
// binary (about a second).
func Weights(tb testing.TB) string {
	tb.Helper()
	p, err := WeightsPath()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// WeightsPath is Weights for callers without a testing.TB, such as examples.
func WeightsPath() (string, error) {
	weightsOnce.Do(func() {
		if weightsDir, weightsErr = os.MkdirTemp("", "vggish-golden-*"); weightsErr != nil {
			return
		}
		weightsPath = filepath.Join(weightsDir, "weights.pth")
		weightsErr = Write(weightsPath, Tensors())
	})
	return weightsPath, weightsErr
}

// Cleanup removes the folder of the weights, if they were written. Call it from TestMain.
func Cleanup() {
	if weightsDir != "" {
		os.RemoveAll(weightsDir)
	}
}

// Write writes tensors, computed from the formula, to a torch.save zip file at path.
func Write(path string, tensors []Tensor) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = writePth(w, tensors)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("golden weights %s: %w", path, err)
	}
	return nil
}

// writePth writes tensors as torch.save does in its zip format (a state dict of float32 CPU tensors,
// contiguous), computing each from the formula as it goes: archive/data.pkl pickles the dict, each
// storage is the stored entry archive/data/<index>.
func writePth(w io.Writer, tensors []Tensor) error {
	z := zip.NewWriter(w)
	store := func(name string) (io.Writer, error) {
		return z.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
	}
	pw, err := store("data.pkl")
	if err != nil {
		return err
	}
	if _, err := pw.Write(statePickle(tensors)); err != nil {
		return err
	}
	for k, t := range tensors {
		dw, err := store("data/" + strconv.Itoa(k))
		if err != nil {
			return err
		}
		b := make([]byte, 0, 4<<16)
		for i := range t.Len() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(Value(t.Stream, uint64(i), t.Scale)))
			if len(b) == cap(b) || i == t.Len()-1 {
				if _, err := dw.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
	}
	vw, err := store("version")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(vw, "3\n"); err != nil {
		return err
	}
	return z.Close()
}

// statePickle is the protocol 2 pickle torch.save writes for a dict of tensors: for each key,
// torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict()), the storage a
// persistent ID ('storage', torch.FloatStorage, '<index>', 'cpu', numel).
func statePickle(tensors []Tensor) []byte {
	var p pickler
	p.op(0x80, 2) // PROTO 2
	p.op('}')     // EMPTY_DICT
	p.op('(')     // MARK
	for k, t := range tensors {
		p.str(t.Key)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op('(')
		p.op('(')
		p.str("storage")
		p.global("torch", "FloatStorage")
		p.str(strconv.Itoa(k))
		p.str("cpu")
		p.int(int64(t.Len()))
		p.op('t') // TUPLE
		p.op('Q') // BINPERSID
		p.int(0)
		p.op('(')
		for _, d := range t.Shape {
			p.int(d)
		}
		p.op('t')
		p.op('(')
		stride := int64(1)
		strides := make([]int64, len(t.Shape))
		for i := len(t.Shape) - 1; i >= 0; i-- {
			strides[i] = stride
			stride *= t.Shape[i]
		}
		for _, s := range strides {
			p.int(s)
		}
		p.op('t')
		p.op(0x89) // NEWFALSE: requires_grad
		p.global("collections", "OrderedDict")
		p.op(')') // EMPTY_TUPLE
		p.op('R') // REDUCE: backward_hooks = OrderedDict()
		p.op('t')
		p.op('R')
	}
	p.op('u') // SETITEMS
	p.op('.') // STOP
	return p.b
}

type pickler struct{ b []byte }

func (p *pickler) op(b ...byte) { p.b = append(p.b, b...) }

// str is BINUNICODE.
func (p *pickler) str(s string) {
	p.op('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
}

// int is BININT (every value here fits in 32 bits).
func (p *pickler) int(v int64) {
	p.op('J')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
}

// global is GLOBAL module.name.
func (p *pickler) global(module, name string) {
	p.op('c')
	p.b = append(p.b, module+"\n"+name+"\n"...)
}
