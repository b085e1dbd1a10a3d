// Package vggish computes VGGish audio embeddings with libtorch: one 128-d vector per 0.96 s of sound,
// with the numbers of the Towhee operator audio_embedding.vggish (built on torchvggish).
//
// A Model holds the network on a CPU or CUDA device. It is safe for concurrent use: calls from many
// goroutines are batched together, up to Options.BatchSize examples per forward pass, by one inference
// loop that owns the device.
package vggish

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/go-audio/audio"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/weights"
)

// Variant selects the network's last layer.
type Variant string

const (
	// Towhee is the Towhee operator's network: no ReLU after the last linear layer (the default).
	Towhee Variant = "towhee"
	// TorchVGGish is torchvggish's network, which has a ReLU after the last linear layer.
	TorchVGGish Variant = "torchvggish"
)

// Options configure a Model. The zero value is the Towhee operator with the published weights on the
// best device.
type Options struct {
	// WeightsPath is a VGGish state dict saved by torch.save (zip or legacy format). Empty means the
	// published vggish-10086976.pth, downloaded once into the weights cache (see package weights).
	WeightsPath string
	// Framework must be "" or "pytorch", as for the Towhee operator's framework argument.
	Framework string
	// Device is "auto" (CUDA when libtorch has it), "cpu", "cuda" or "cuda:N". Empty means "auto".
	Device  string
	Variant Variant // empty means Towhee
	// Postprocess enables torchvggish's PCA post-processing with the parameters at PCAPath (empty:
	// the published vggish_pca_params-970ea276.pth, downloaded once).
	Postprocess Postprocess
	PCAPath     string
	// BatchSize is the most examples per forward pass; 0 means 64.
	BatchSize int
	// Threads sets libtorch's intra-op thread count for the process; 0 leaves it as it is.
	Threads int
	// Preprocess chooses the examples (hop, tail padding); the zero value is the reference's.
	Preprocess preprocess.Options
}

// Model is a loaded VGGish network. Close it to free its native memory.
type Model struct {
	opts   Options
	device gotch.Device

	reqs     chan *request
	quit     chan struct{}
	loopDone chan struct{}
	close    sync.Once

	net  *network
	post *postprocessor
}

// New loads the network and starts its inference loop.
func New(opts Options) (*Model, error) {
	if opts.Framework != "" && opts.Framework != "pytorch" {
		return nil, fmt.Errorf("vggish: framework %q is not supported: vggish-go runs the pytorch weights (framework \"pytorch\")", opts.Framework)
	}
	if opts.Variant == "" {
		opts.Variant = Towhee
	}
	if opts.Variant != Towhee && opts.Variant != TorchVGGish {
		return nil, fmt.Errorf("vggish: variant %q: want %q or %q", opts.Variant, Towhee, TorchVGGish)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 64
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("vggish: batch size %d", opts.BatchSize)
	}
	if opts.Threads > 0 {
		if err := torch.SetThreads(opts.Threads); err != nil {
			return nil, err
		}
	}
	dev, err := torch.ParseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	device := tensor.Device(dev)
	opts.Device = dev.String()
	if opts.WeightsPath == "" {
		if opts.WeightsPath, err = weights.Fetch(context.Background(), weights.Model, weights.Options{}); err != nil {
			return nil, err
		}
	}
	m := &Model{opts: opts, device: device, reqs: make(chan *request), quit: make(chan struct{}), loopDone: make(chan struct{})}
	if m.net, err = loadNetwork(opts.WeightsPath, device, opts.Variant == TorchVGGish); err != nil {
		return nil, err
	}
	if opts.Postprocess != NoPostprocess {
		if opts.PCAPath == "" {
			if opts.PCAPath, err = weights.Fetch(context.Background(), weights.PCA, weights.Options{}); err != nil {
				m.net.close()
				return nil, err
			}
		}
		if m.post, err = loadPostprocessor(opts.PCAPath, opts.Postprocess, device); err != nil {
			m.net.close()
			return nil, err
		}
	}
	go m.loop()
	return m, nil
}

// Options returns the options the model was made with, defaults filled in.
func (m *Model) Options() Options { return m.opts }

// Device is the device the network runs on ("cpu", "cuda:0", ...).
func (m *Model) Device() string { return m.opts.Device }

// Close stops the inference loop and frees the network. Calls after Close return an error.
func (m *Model) Close() error {
	m.close.Do(func() {
		close(m.quit)
		<-m.loopDone
		m.net.close()
		if m.post != nil {
			m.post.close()
		}
	})
	return nil
}

// ErrClosed is returned by calls on a closed Model.
var ErrClosed = errors.New("vggish: model is closed")

// EmbedFile embeds an audio file: WAV natively, other formats through ffmpeg. Long files are read
// and embedded a block at a time, so memory does not grow with their length.
func (m *Model) EmbedFile(ctx context.Context, path string) (*Embeddings, error) {
	src, err := decode.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return m.embedSource(ctx, src, path)
}

// Embed embeds mono samples in [-1, 1] at sampleRate Hz.
func (m *Model) Embed(ctx context.Context, samples []float32, sampleRate int) (*Embeddings, error) {
	return m.embedSource(ctx, decode.FromFloat32(samples, sampleRate), "samples")
}

// EmbedBuffer embeds a go-audio buffer (audio.IntBuffer, audio.Float32Buffer or audio.FloatBuffer),
// the Go analogue of the Towhee operator's list of AudioFrame: integer samples are scaled by their
// SourceBitDepth and channels averaged, as the operator does.
func (m *Model) EmbedBuffer(ctx context.Context, buf audio.Buffer) (*Embeddings, error) {
	src, err := decode.FromBuffer(buf)
	if err != nil {
		return nil, err
	}
	return m.embedSource(ctx, src, "buffer")
}

// embedSource embeds src a block at a time. Decoding and preprocessing errors already name the
// source; the model's are wrapped with name here.
func (m *Model) embedSource(ctx context.Context, src decode.Source, name string) (*Embeddings, error) {
	e := &Embeddings{}
	info, err := preprocess.Stream(ctx, src, m.opts.Preprocess, func(ex *preprocess.Examples) error {
		out, err := m.EmbedExamples(ctx, ex)
		if err != nil {
			var nf *nonFiniteError
			if errors.As(err, &nf) {
				nf.example += len(e.Starts) // number the source's examples, not the block's
			}
			return fmt.Errorf("embed %s: %w", name, err)
		}
		e.Data = append(e.Data, out.Data...)
		e.Starts = append(e.Starts, out.Starts...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.SampleRate, e.Duration = info.SampleRate, info.Duration
	return e, nil
}

// EmbedExamples runs the network (and post-processing) on log-mel examples. An example holding a NaN
// or an infinity, or whose embedding would (the network's float32 arithmetic overflowing), is an error
// naming it: no non-finite value is ever returned.
func (m *Model) EmbedExamples(ctx context.Context, ex *preprocess.Examples) (*Embeddings, error) {
	n := ex.Len()
	if len(ex.Data) != n*preprocess.ExampleFrames*preprocess.MelBins {
		return nil, fmt.Errorf("vggish: %d log-mel values for %d examples", len(ex.Data), n)
	}
	if err := checkFinite(ex.Data, ex.Starts, "log-mel input"); err != nil {
		return nil, err
	}
	out := &Embeddings{Data: make([]float32, n*EmbeddingSize), Starts: append([]float64(nil), ex.Starts...)}
	// Requests of at most one batch, so that the loop can pack examples from several callers.
	per := preprocess.ExampleFrames * preprocess.MelBins
	var reqs []*request
	for i := 0; i < n; i += m.opts.BatchSize {
		j := min(n, i+m.opts.BatchSize)
		r := &request{ctx: ctx, in: ex.Data[i*per : j*per], out: out.Data[i*EmbeddingSize : j*EmbeddingSize], done: make(chan error, 1)}
		select {
		case m.reqs <- r:
			reqs = append(reqs, r)
		case <-m.quit:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for _, r := range reqs {
		if err := <-r.done; err != nil {
			return nil, err
		}
	}
	if err := checkFinite(out.Data, out.Starts, "embedding"); err != nil {
		return nil, err
	}
	return out, nil
}

// request is a run of at most BatchSize examples waiting for the inference loop.
type request struct {
	ctx  context.Context
	in   []float32 // examples × 96 × 64
	out  []float32 // examples × 128, filled by the loop
	done chan error
}

func (r *request) len() int { return len(r.in) / (preprocess.ExampleFrames * preprocess.MelBins) }

// loop owns the device: it packs waiting requests into batches and runs them. It keeps one OS thread
// because libtorch's grad mode and error state are thread-local.
func (m *Model) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(m.loopDone)
	if _, err := ts.GradSetEnabled(false); err != nil {
		m.failAll(tensor.Err(err))
		return
	}
	batch := make([]float32, 0, m.opts.BatchSize*preprocess.ExampleFrames*preprocess.MelBins)
	var pending *request
	for {
		var reqs []*request
		size := 0
		if pending == nil {
			select {
			case pending = <-m.reqs:
			case <-m.quit:
				return
			}
		}
		reqs, size, pending = append(reqs, pending), pending.len(), nil
	fill:
		for size < m.opts.BatchSize {
			select {
			case r := <-m.reqs:
				if size+r.len() > m.opts.BatchSize {
					pending = r
					break fill
				}
				reqs, size = append(reqs, r), size+r.len()
			default:
				break fill
			}
		}
		batch = batch[:0]
		live := reqs[:0]
		for _, r := range reqs {
			if err := r.ctx.Err(); err != nil {
				r.done <- err
				continue
			}
			batch = append(batch, r.in...)
			live = append(live, r)
		}
		if len(live) == 0 {
			continue
		}
		out, err := m.run(batch)
		at := 0
		for _, r := range live {
			if err == nil {
				at += copy(r.out, out[at:at+len(r.out)])
			}
			r.done <- err
		}
	}
}

// failAll answers every request with err until Close.
func (m *Model) failAll(err error) {
	for {
		select {
		case r := <-m.reqs:
			r.done <- err
		case <-m.quit:
			return
		}
	}
}

// run embeds one batch of examples and returns the embeddings on the host.
//
// libtorch computes a one-row batch with other kernels (matrix-vector products) than a larger one,
// so a clip's last bits would depend on what it was batched with. A single example is run twice, as
// a batch of two, and every output is then the same however the calls were batched.
//
// A panic (a bug) fails the batch's requests instead of the process, which may be embedding many
// other files.
func (m *Model) run(batch []float32) (_ []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("vggish: panic in the inference loop: %v\n%s", r, debug.Stack())
		}
	}()
	per := preprocess.ExampleFrames * preprocess.MelBins
	rows := len(batch) / per
	if rows == 1 {
		batch = append(batch[:per:per], batch...)
	}
	n := int64(len(batch) / per)
	var s tensor.Scope
	defer s.Close()
	x, err := s.Own(moveTo(m.device)(tensor.FromSlice(batch, n, 1, preprocess.ExampleFrames, preprocess.MelBins)))
	if err != nil {
		return nil, err
	}
	if x, err = s.Own(m.net.forward(x)); err != nil {
		return nil, err
	}
	if m.post != nil {
		if x, err = s.Own(m.post.apply(x)); err != nil {
			return nil, err
		}
	}
	out, err := tensor.ToSlice[float32](x)
	if err != nil {
		return nil, err
	}
	return out[:rows*EmbeddingSize], nil
}

// Embeddings are the vectors of one input, a row per example.
type Embeddings struct {
	// Data holds Rows() vectors of 128 float32 values, row after row.
	Data []float32
	// Starts is each row's start in the audio, in seconds.
	Starts []float64
	// SampleRate and Duration describe the source audio (zero for EmbedExamples).
	SampleRate int
	Duration   float64
}

// Rows is the number of vectors.
func (e *Embeddings) Rows() int { return len(e.Starts) }

// Row is vector i.
func (e *Embeddings) Row(i int) []float32 {
	return e.Data[i*EmbeddingSize : (i+1)*EmbeddingSize : (i+1)*EmbeddingSize]
}

// Mean is the element-wise mean of the rows: one vector for the whole input (nil when there are no
// rows).
func (e *Embeddings) Mean() []float32 {
	if e.Rows() == 0 {
		return nil
	}
	sum := make([]float64, EmbeddingSize)
	for i := range e.Rows() {
		for j, v := range e.Row(i) {
			sum[j] += float64(v)
		}
	}
	out := make([]float32, EmbeddingSize)
	for j, v := range sum {
		out[j] = float32(v / float64(e.Rows()))
	}
	return out
}

// Max is the element-wise maximum of the rows (nil when there are no rows).
func (e *Embeddings) Max() []float32 {
	if e.Rows() == 0 {
		return nil
	}
	out := append([]float32(nil), e.Row(0)...)
	for i := 1; i < e.Rows(); i++ {
		for j, v := range e.Row(i) {
			out[j] = max(out[j], v)
		}
	}
	return out
}

// Uint8 returns quantised embeddings (Postprocess PCAQuantize) as bytes, as torchvggish's uint8 output.
func (e *Embeddings) Uint8() ([]uint8, error) {
	out := make([]uint8, len(e.Data))
	for i, v := range e.Data {
		if v < 0 || v > 255 || v != float32(int(v)) {
			return nil, fmt.Errorf("vggish: value %g is not quantised: use Postprocess PCAQuantize", v)
		}
		out[i] = uint8(v)
	}
	return out, nil
}

// String shows the embeddings the way a Towhee pipeline's show() does: the first values of the first
// row and the shape.
func (e *Embeddings) String() string {
	var b strings.Builder
	b.WriteString("[")
	if e.Rows() > 0 {
		for i, v := range e.Row(0)[:2] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%v", v)
		}
		b.WriteString(", ...")
	}
	fmt.Fprintf(&b, "] shape=(%d, %d)", e.Rows(), EmbeddingSize)
	return b.String()
}
