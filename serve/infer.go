package serve

import (
	"encoding/binary"
	"math"

	"github.com/vggish-go/vggish/vggish"
)

// The model's version, inputs and outputs.
const (
	modelVersion = "1"
	inAudio      = "AUDIO"
	inWaveform   = "WAVEFORM"
	outEmbedding = "EMBEDDING"
	outStart     = "START"
)

// sampleRate checks the sample_rate parameter as found (n, whether given, a parse error).
func sampleRate(n int64, given bool, err error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case !given:
		return 0, nil
	case n < 1 || n > math.MaxInt32:
		return 0, failure(KindRequest, "sample_rate %d: want a rate in Hz", n)
	}
	return int(n), nil
}

// newInput checks an input's name, datatype and shape; rate is its sample_rate parameter (0 when not
// given), which WAVEFORM needs.
func newInput(name, datatype string, shape []int64, rate int) (*input, error) {
	switch name {
	case inAudio:
		if datatype != "BYTES" {
			return nil, failure(KindRequest, "AUDIO is BYTES, not %q", datatype)
		}
		if n, ok := elements(shape); !ok || n != 1 {
			return nil, failure(KindRequest, "AUDIO shape %v: want [1], one encoded file", shape)
		}
		return &input{}, nil
	case inWaveform:
		if datatype != "FP32" {
			return nil, failure(KindRequest, "WAVEFORM is FP32, not %q", datatype)
		}
		if _, ok := elements(shape); !ok || len(shape) < 1 || len(shape) > 2 {
			return nil, failure(KindRequest, "WAVEFORM shape %v: want [samples] or [channels, samples]", shape)
		}
		if rate == 0 {
			return nil, failure(KindRequest, "WAVEFORM needs the sample_rate parameter (Hz)")
		}
		in := &input{wave: true, rate: rate, shape: shape, channels: 1}
		if len(shape) == 2 {
			in.channels = int(shape[0])
		}
		return in, nil
	}
	return nil, failure(KindRequest, "no input %q: the inputs are %s (BYTES [1]) and %s (FP32 [samples] or [channels, samples])", name, inAudio, inWaveform)
}

// elements is the element count of shape, if its dimensions are valid.
func elements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 1 || d > math.MaxInt32 || n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// checkCount checks that the samples fill the input's shape.
func (in *input) checkCount() error {
	if n, _ := elements(in.shape); int64(len(in.samples)) != n {
		return failure(KindRequest, "WAVEFORM: %d values for shape %v", len(in.samples), in.shape)
	}
	return nil
}

// float32s reads little-endian float32 values, the protocol's binary FP32.
func float32s(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// output is an output tensor; one of f32, u8 and f64 holds its data.
type output struct {
	name, datatype string
	shape          []int64
	f32            []float32
	u8             []uint8
	f64            []float64
}

// raw is the data in the protocol's binary form: little-endian, row-major.
func (o *output) raw() []byte {
	switch {
	case o.u8 != nil:
		return o.u8
	case o.f64 != nil:
		b := make([]byte, 0, 8*len(o.f64))
		for _, v := range o.f64 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		return b
	}
	b := make([]byte, 0, 4*len(o.f32))
	for _, v := range o.f32 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// data is the data for JSON: a flat, row-major array of numbers.
func (o *output) data() any {
	switch {
	case o.u8 != nil:
		n := make([]uint16, len(o.u8)) // []uint8 would be a base64 string
		for i, v := range o.u8 {
			n[i] = uint16(v)
		}
		return n
	case o.f64 != nil:
		return o.f64
	}
	return o.f32
}

// outputs are EMBEDDING (FP32, or UINT8 when the model quantises) and START of e: [clips, 128] and
// [clips], or [channels, clips, 128] and [channels, clips] when the model embeds each channel.
func (s *Server) outputs(e *vggish.Embeddings) ([]*output, error) {
	rows := int64(e.Rows())
	lead := []int64{rows}
	if e.Channels > 0 {
		lead = []int64{int64(e.Channels), rows / int64(e.Channels)}
	}
	emb := &output{name: outEmbedding, datatype: "FP32", shape: append(append([]int64(nil), lead...), vggish.EmbeddingSize), f32: e.Data}
	if s.uint8 {
		u, err := e.Uint8()
		if err != nil {
			return nil, err
		}
		emb.datatype, emb.f32, emb.u8 = "UINT8", nil, u
		if emb.u8 == nil {
			emb.u8 = []uint8{}
		}
	}
	if emb.f32 == nil && emb.u8 == nil {
		emb.f32 = []float32{}
	}
	start := &output{name: outStart, datatype: "FP64", shape: lead, f64: e.Starts}
	if start.f64 == nil {
		start.f64 = []float64{}
	}
	return []*output{emb, start}, nil
}

// tensorMeta is a tensor's metadata.
type tensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type modelMeta struct {
	Name     string       `json:"name"`
	Versions []string     `json:"versions"`
	Platform string       `json:"platform"`
	Inputs   []tensorMeta `json:"inputs"`
	Outputs  []tensorMeta `json:"outputs"`
}

// modelMetadata describes the model: its inputs (one of them per request) and outputs.
func (s *Server) modelMetadata() modelMeta {
	lead := []int64{-1}
	if s.m.Options().Channels == vggish.Each {
		lead = []int64{-1, -1}
	}
	dt := "FP32"
	if s.uint8 {
		dt = "UINT8"
	}
	return modelMeta{Name: ModelName, Versions: []string{modelVersion}, Platform: "vggish-go_libtorch",
		Inputs: []tensorMeta{{inAudio, "BYTES", []int64{1}}, {inWaveform, "FP32", []int64{-1, -1}}},
		Outputs: []tensorMeta{{outEmbedding, dt, append(append([]int64(nil), lead...), vggish.EmbeddingSize)},
			{outStart, "FP64", lead}}}
}

type serverMeta struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (s *Server) serverMetadata() serverMeta {
	return serverMeta{Name: "vggish-go", Version: s.opts.Version, Extensions: []string{"binary_tensor_data"}}
}
