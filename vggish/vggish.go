// Package vggish computes VGGish audio embeddings with libtorch: one 128-d vector per 0.96 s of sound,
// with the numbers of the Towhee operator audio_embedding.vggish (built on torchvggish).
//
// [New] loads a [Model] as [Options] say (downloading the published weights once when no WeightsPath
// is given) and starts its inference loop, nothing more; the package prints nothing
// ([Options.Progress] receives download progress, [Model.Warnings] say what the device does not do
// as asked). A Model holds the network
// on a CPU or CUDA device. It is safe for concurrent use: calls from many goroutines
// ([Model.EmbedFile], [Model.EmbedReader], [Model.EmbedSource], [Model.Embed], [Model.EmbedBuffer],
// [Model.EmbedExamples]) are batched together, up to [Options.BatchSize] examples per forward pass, by
// one inference loop that owns the device. Each call returns [Embeddings], a row per example;
// [Model.EmbedBlocks] yields them a block at a time as they are ready, for live streams and long
// recordings.
//
// A nil context panics ("vggish: nil Context"), as in the standard library: it is the program's bug.
// A Model not made by New returns an error from every call.
//
// Decoding is package decode's and the log-mel examples package preprocess's; their errors pass
// through as they are ("decode NAME: ...", a [*decode.FormatError] or [*decode.UnsupportedError] for
// bad audio; "preprocess NAME: ..."). The model's own errors name the input: "vggish NAME: ...".
package vggish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-audio/audio"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"golang.org/x/sync/semaphore"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/weights"
)

// Variant selects the network's last layer.
type Variant string

const (
	// Towhee is the Towhee operator's network: no ReLU after the last linear layer (the default).
	Towhee Variant = spec.Towhee
	// TorchVGGish is torchvggish's network, which has a ReLU after the last linear layer.
	TorchVGGish Variant = spec.TorchVGGish
)

// Options configure a Model. The zero value is the Towhee operator with the published weights on the
// best device; [Model.Options] returns the options with every default filled in.
type Options struct {
	// WeightsPath is a VGGish state dict saved by torch.save (zip or legacy format). Empty means the
	// published vggish-10086976.pth, downloaded once into the weights cache (see [weights.Fetch]).
	WeightsPath string
	// Device is "auto" (CUDA when libtorch has it), "cpu", "cuda" or "cuda:N", as [torch.ParseDevice]
	// reads it (a name rather than a torch.Device, as "auto" is no device until New resolves it). Empty
	// means "auto"; Model.Options gives the device chosen, "cpu" or "cuda:N". A CUDA device that
	// libtorch cannot give fails New with a [*torch.CUDAError].
	Device  string
	Variant Variant // empty means Towhee
	// Postprocess enables torchvggish's PCA post-processing with the parameters at PCAPath (empty:
	// the published vggish_pca_params-970ea276.pth, downloaded once). Without post-processing
	// PCAPath is not used, and stays as given.
	Postprocess Postprocess
	PCAPath     string
	// Progress receives the progress of the downloads of the published files, a line redrawn with
	// carriage returns (see [weights.Options]). nil means none: the package writes nothing itself.
	Progress io.Writer
	// BatchSize is the most examples per forward pass, at most 4096 (about 1 MB of memory each); 0
	// means DefaultBatchSize. Whatever it is, the loop runs what is waiting when the network comes free
	// (see MaxQueueDelay), and a clip's embedding does not depend on the batch it ran in.
	BatchSize int
	// Threads sets libtorch's intra-op thread count when the Model is made, at most 8 per usable CPU
	// (more make libtorch crawl); 0 means one per CPU the process may use ([torch.UsableCPUs]), where
	// libtorch's own default is one per core of the machine, or one. The count is libtorch's, for the
	// whole process: the last successful New (or [torch.SetThreads]) sets it for every Model, and
	// [Model.Options] reports the count in force.
	Threads int
	// Workers is the most inputs decoded and preprocessed at once over all callers, at most 1024; 0
	// means one per usable CPU. Calls waiting for the network hold no worker, so many more may be in
	// flight (see [Model.Capacity]).
	Workers int
	// Preprocess chooses the examples (hop, tail policy); the zero value is the reference's. Its
	// Device is the model's.
	Preprocess preprocess.Options
	// Precision is the network's arithmetic; empty means FP32, the reference's numbers. BF16 trades
	// the embeddings' last digits for speed (see [Precision]).
	Precision Precision
	// Channels is Mix (the reference: channels averaged) or Each (a stream of vectors per channel).
	Channels Channels
	// OnBatch, when not nil, is called after each forward pass with what it ran and how long it and
	// its examples took, for metrics (batch sizes, queue wait). It is called on the inference loop's
	// goroutine, before the pass's callers are answered: it must return at once and never block
	// (update a counter or a histogram; hand anything slower to another goroutine), and must not call
	// the Model. Examples whose callers all went away before their pass are not run, and not reported.
	OnBatch func(BatchStats)
	// MaxQueueDelay is the longest a forward pass waits for its batch to fill: a pass whose batch is
	// not full starts once its oldest examples have been queued this long, or once the batch fills (as
	// Triton's max_queue_delay_microseconds). 0, the default, never waits: the loop runs what is
	// waiting as soon as the network is free, so a lone call is never held back, and under a steady
	// load the next batch fills while the network runs the last. A delay helps a fixed set of clients
	// that each send short inputs and wait for the answer: without one they split into groups whose
	// passes alternate, each with part of them; a delay longer than a client's turnaround (its answer to its
	// next examples) merges them. A caller that goes away while its examples wait for the batch to
	// fill is answered when the wait ends.
	MaxQueueDelay time.Duration
}

// BatchStats describe one forward pass of the inference loop, for [Options.OnBatch].
type BatchStats struct {
	// Clips is the examples the pass ran, at most [Options.BatchSize].
	Clips int
	// Requests is the runs of examples packed into the pass. A call queues its examples in runs of at
	// most BatchSize (audio a block at a time, as it is preprocessed), so one call may count in
	// several passes, and several calls share a pass under load.
	Requests int
	// QueueWait is how long the pass's oldest run waited for it: from being queued (waiting for room
	// in a full queue included) to the pass's start.
	QueueWait time.Duration
	// Forward is the pass's time: the network and post-processing, from the host's examples to the
	// host's embeddings.
	Forward time.Duration
	// Err is the pass's failure, nil when it succeeded (ErrClosed when it stopped because its callers
	// all went away or the Model closed).
	Err error
}

// Model is a loaded VGGish network. Close it to free its native memory.
type Model struct {
	opts   Options
	device gotch.Device

	workers chan struct{}       // a slot per input being decoded and preprocessed
	budget  *semaphore.Weighted // examples submitted and not yet embedded
	reqs    chan *request       // holds up to the budget's worth of requests

	quit     chan struct{}
	loopDone chan struct{}
	close    sync.Once

	net     *network
	post    *postprocessor
	threads int // libtorch's thread count on the loop's OS thread

	warnings    []string
	releaseTF32 func() // nil unless the model claimed libtorch's TF32 switch (CUDA)
}

// DefaultBatchSize is the most examples per forward pass unless Options say otherwise. On the CPU the
// network runs a batch in fixed-size chunks whatever its size (see tensor.Net), so a larger batch
// mostly saves the per-pass overhead; on CUDA it keeps the GPU busy.
const DefaultBatchSize = spec.DefaultBatchSize

// queuedBatches is how many batches of examples may wait for the network: enough for the next batch to
// be full when the current one ends, whatever the length of the inputs.
const queuedBatches = 4

// New loads the network and starts its inference loop; it does nothing else. ctx bounds the loading,
// including the download of the published files when WeightsPath or PCAPath is empty.
//
// Every method taking a context panics on a nil one, as the standard library's do: pass
// context.Background() or context.TODO(). The methods of a Model not made by New return an error.
func New(ctx context.Context, opts Options) (*Model, error) {
	if ctx == nil {
		panic("vggish: nil Context")
	}
	if opts.Variant == "" {
		opts.Variant = Towhee
	}
	if _, err := ParseVariant(string(opts.Variant)); err != nil {
		return nil, err
	}
	if opts.Channels != Mix && opts.Channels != Each {
		return nil, fmt.Errorf("vggish: %v: want Mix or Each", opts.Channels)
	}
	if opts.Postprocess < NoPostprocess || opts.Postprocess > PCAQuantize {
		return nil, fmt.Errorf("vggish: %v: want NoPostprocess, PCA or PCAQuantize", opts.Postprocess)
	}
	if err := opts.Preprocess.Check(); err != nil {
		return nil, fmt.Errorf("vggish: %w", err)
	}
	if opts.BatchSize < 0 || opts.BatchSize > spec.MaxBatch {
		return nil, fmt.Errorf("vggish: batch size %d: want 1 to %d (0: %d)", opts.BatchSize, spec.MaxBatch, DefaultBatchSize)
	}
	if opts.MaxQueueDelay < 0 {
		return nil, fmt.Errorf("vggish: max queue delay %s", opts.MaxQueueDelay)
	}
	if opts.Threads == 0 {
		opts.Threads, _ = torch.UsableCPUs()
	}
	if opts.Threads < 0 || opts.Threads > spec.MaxThreads() {
		return nil, fmt.Errorf("vggish: threads %d: want 1 to %d (0: one per usable CPU)", opts.Threads, spec.MaxThreads())
	}
	if opts.Workers == 0 {
		opts.Workers, _ = torch.UsableCPUs()
	}
	if opts.Workers < 0 || opts.Workers > spec.MaxWorkers {
		return nil, fmt.Errorf("vggish: workers %d: want 1 to %d (0: one per usable CPU)", opts.Workers, spec.MaxWorkers)
	}
	dev, err := torch.ParseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	device := tensor.Device(dev)
	opts.Device = dev.String()
	opts.Preprocess.Device = dev
	if opts.Preprocess.Hop == 0 {
		opts.Preprocess.Hop = preprocess.ExampleFrames * preprocess.FrameHop / float64(preprocess.SampleRate)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	var warnings []string
	if opts.Precision, warnings, err = opts.Precision.Resolve(dev); err != nil {
		return nil, err
	}
	if blas, reference := torch.BLAS(); reference && !dev.IsCUDA() {
		warnings = append(warnings, fmt.Sprintf("libtorch's matrix products run on the reference BLAS (%s), %s", blas, torch.ReferenceBLASFix))
	}
	fetch := weights.Options{Progress: opts.Progress}
	if opts.WeightsPath == "" {
		if opts.WeightsPath, err = weights.Fetch(ctx, weights.Model, fetch); err != nil {
			return nil, err
		}
	}
	if opts.Postprocess != NoPostprocess && opts.PCAPath == "" {
		if opts.PCAPath, err = weights.Fetch(ctx, weights.PCA, fetch); err != nil {
			return nil, err
		}
	}
	// The thread count is the process's: set last, and put back if the model cannot be made, so that a
	// failed New leaves the process as it was.
	before := torch.Threads()
	if err := torch.SetThreads(opts.Threads); err != nil {
		return nil, err
	}
	m := &Model{opts: opts, device: device, warnings: warnings}
	if err := m.load(); err != nil {
		m.free()
		torch.SetThreads(before)
		return nil, err
	}
	m.start()
	return m, nil
}

// load claims the TF32 switch (CUDA: libtorch would otherwise run float32 cuDNN convolutions in TF32)
// and loads the network and the post-processor. On CUDA the weights are staged in CPU tensors, whose
// memory it then gives back.
func (m *Model) load() error {
	var err error
	if m.device.IsCuda() {
		if m.releaseTF32, err = claimTF32(m.opts.Precision); err != nil {
			return err
		}
	}
	if m.net, err = loadNetwork(m.opts.WeightsPath, m.device, m.opts.Variant == TorchVGGish, m.opts.Precision); err != nil {
		return err
	}
	if m.opts.Postprocess != NoPostprocess {
		if m.post, err = loadPostprocessor(m.opts.PCAPath, m.opts.Postprocess, m.device); err != nil {
			return err
		}
	}
	if m.device.IsCuda() {
		torch.TrimCPUCache()
	}
	return nil
}

// free releases what load made.
func (m *Model) free() {
	if m.net != nil {
		m.net.close()
	}
	if m.post != nil {
		m.post.close()
	}
	if m.releaseTF32 != nil {
		m.releaseTF32()
	}
}

// start makes the queues for m.opts and starts the inference loop.
func (m *Model) start() {
	queued := queuedBatches * max(m.opts.BatchSize, preprocess.BlockExamples)
	m.workers = make(chan struct{}, max(1, m.opts.Workers))
	m.budget = semaphore.NewWeighted(int64(queued))
	m.reqs = make(chan *request, queued)
	m.quit, m.loopDone = make(chan struct{}), make(chan struct{})
	go m.loop()
}

// Capacity is how many inputs may usefully be in flight at once (for example, files given to
// concurrent EmbedFile calls): enough one-clip inputs to keep the network's batches full while others
// are decoded.
func (m *Model) Capacity() int {
	return m.opts.Workers + queuedBatches*max(m.opts.BatchSize, preprocess.BlockExamples)
}

// Options returns the options the model was made with, every default filled in: the weights' and
// (with post-processing) the PCA parameters' paths, the device chosen, the batch size, worker count,
// variant, precision (as it runs: TF32 on the CPU is FP32) and the example hop. Threads is libtorch's
// thread count now ([torch.Threads]), which is process-wide: a later New or torch.SetThreads changes it
// for this Model too.
func (m *Model) Options() Options {
	o := m.opts
	o.Threads = torch.Threads()
	return o
}

// Device is the device the network runs on ("cpu", "cuda:0", ...).
func (m *Model) Device() string { return m.opts.Device }

// Warnings say where the options ask for what the device does not do as asked: bf16 on a CPU without
// AVX-512 (fp32) or emulated by one without bfloat16 units (slower than fp32), tf32 on the CPU (fp32), a
// precision a GPU has no units for (see [Precision.Resolve]); or where the machine runs the network
// slowly: libtorch on the reference BLAS ([torch.BLAS]). A program shows them to its user; the package
// prints nothing.
func (m *Model) Warnings() []string { return m.warnings }

// Close stops the inference loop and frees the network. A forward pass running then stops at its
// next chunk of clips (a few clips' convolutions), so Close does not wait for a whole batch. Calls
// waiting for the network, and calls after Close, return [ErrClosed]. Likewise a pass whose callers
// have all been cancelled stops, freeing the network for the next caller. Close may be called more than once: later calls do nothing and
// return nil, so a deferred Close can follow an explicit one.
func (m *Model) Close() error {
	if m.quit == nil {
		return errNotNew
	}
	m.close.Do(func() {
		close(m.quit)
		<-m.loopDone
		m.free()
	})
	return nil
}

// ErrClosed is returned by calls on a closed Model.
var ErrClosed = errors.New("vggish: model is closed")

// EmbedFile embeds an audio file: WAV natively, other formats through ffmpeg. Long files are read
// and embedded a block at a time, so memory does not grow with their length.
func (m *Model) EmbedFile(ctx context.Context, path string) (*Embeddings, error) {
	return m.embed(ctx, path, func() (decode.Source, error) { return decode.OpenContext(ctx, path) }, true)
}

// EmbedReader embeds an audio stream, such as standard input, as it arrives: WAV natively, other
// formats through ffmpeg (see decode.OpenReader). name is used in errors.
func (m *Model) EmbedReader(ctx context.Context, r io.Reader, name string) (*Embeddings, error) {
	return m.embed(ctx, name, func() (decode.Source, error) { return decode.OpenReader(ctx, r, name) }, true)
}

// Embed embeds mono samples in [-1, 1] at sampleRate Hz.
func (m *Model) Embed(ctx context.Context, samples []float32, sampleRate int) (*Embeddings, error) {
	return m.embed(ctx, "samples", func() (decode.Source, error) { return decode.FromFloat32(samples, sampleRate), nil }, true)
}

// EmbedBuffer embeds a go-audio buffer (audio.IntBuffer, audio.Float32Buffer or audio.FloatBuffer),
// the Go analogue of the Towhee operator's list of AudioFrame: integer samples are scaled by their
// SourceBitDepth and channels averaged, as the operator does.
func (m *Model) EmbedBuffer(ctx context.Context, buf audio.Buffer) (*Embeddings, error) {
	return m.embed(ctx, "buffer", func() (decode.Source, error) { return decode.FromBuffer(buf) }, true)
}

// embed decodes and preprocesses the source that open returns, holding a worker while it does, and
// hands its examples to the inference loop a block at a time without waiting for them: the next block
// is preprocessed while the network runs the last one, and an input whose examples are all submitted
// frees its worker for the next input while it waits. Decoding and preprocessing errors already name
// the source; the model's are wrapped with name here. embed closes the source when own is set.
func (m *Model) embed(ctx context.Context, name string, open func() (decode.Source, error), own bool) (*Embeddings, error) {
	if err := m.ready(ctx); err != nil {
		return nil, err
	}
	release, err := m.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	src, err := open()
	if err != nil {
		return nil, err
	}
	if own {
		defer src.Close()
	}
	srcs, err := m.split(name, src)
	if err != nil {
		return nil, err
	}
	blocks := make([][]*Embeddings, len(srcs))
	reqs := make([][]*request, len(srcs))
	infos, err := m.preprocessAll(ctx, name, srcs, func(k int, e *Embeddings, rs []*request) error {
		blocks[k], reqs[k] = append(blocks[k], e), append(reqs[k], rs...)
		return nil
	})
	release()
	for _, rs := range reqs {
		if err == nil {
			err = named(name, m.wait(rs))
		}
	}
	if err != nil {
		return nil, err
	}
	e := &Embeddings{SampleRate: infos[0].SampleRate, Duration: infos[0].Duration}
	if m.opts.Channels == Each {
		e.Channels = len(srcs)
	}
	for _, bs := range blocks {
		for _, b := range bs {
			e.Data = append(e.Data, b.Data...)
			e.Starts = append(e.Starts, b.Starts...)
		}
	}
	if err := checkFinite(e.Data, e.Starts, "embedding"); err != nil {
		return nil, named(name, err)
	}
	return e, nil
}

// ready panics on a nil ctx, as the standard library does (a program's bug, like a nil map), and
// refuses a Model that New did not make, whose zero channels would block forever.
func (m *Model) ready(ctx context.Context) error {
	if ctx == nil {
		panic("vggish: nil Context")
	}
	if m.quit == nil {
		return errNotNew
	}
	return nil
}

// errNotNew is returned by the calls of a Model that New did not make (a declared zero Model).
var errNotNew = errors.New("vggish: the Model was not made by New")

// acquire takes a worker slot for an input, and returns the function that gives it back (once,
// however often it is called).
func (m *Model) acquire(ctx context.Context) (release func(), err error) {
	select {
	case m.workers <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.quit:
		return nil, ErrClosed
	}
	held := true
	return func() {
		if held {
			<-m.workers
			held = false
		}
	}, nil
}

// split is the sources embed reads: src itself, or with Channels Each a source per channel.
func (m *Model) split(name string, src decode.Source) ([]decode.Source, error) {
	if m.opts.Channels != Each {
		return []decode.Source{src}, nil
	}
	srcs, err := decode.Split(src)
	if err == nil && len(srcs) > spec.MaxEachChannels {
		return nil, &decode.UnsupportedError{Name: name, Err: fmt.Errorf("%d channels: at most %d are embedded each on its own (they are preprocessed at once, with buffers of their own): mix them", len(srcs), spec.MaxEachChannels)}
	}
	return srcs, err
}

// named prefixes the model's own errors with the input's name: "vggish NAME: ...", or "vggish: ..."
// without one. ErrClosed and the context's errors pass as they are, and the decoder's and
// preprocessor's errors do not come here: they name the input already.
func named(name string, err error) error {
	switch {
	case err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case name == "":
		return fmt.Errorf("vggish: %w", err)
	}
	return fmt.Errorf("vggish %s: %w", name, err)
}

// EmbedExamples runs the network (and post-processing) on log-mel examples. An example holding a NaN
// or an infinity, or whose embedding would (the network's arithmetic overflowing), is an error
// naming it: no non-finite value is ever returned.
func (m *Model) EmbedExamples(ctx context.Context, ex *preprocess.Examples) (*Embeddings, error) {
	if err := m.ready(ctx); err != nil {
		return nil, err
	}
	if ex == nil {
		return nil, errors.New("vggish: nil Examples")
	}
	out, reqs, err := m.submit(ctx, ex)
	if err == nil {
		err = m.wait(reqs)
	}
	if err == nil {
		err = checkFinite(out.Data, out.Starts, "embedding")
	}
	if err != nil {
		return nil, named("", err)
	}
	return out, nil
}

// submit queues examples for the inference loop in requests of at most one batch, so that the loop
// can pack examples of several callers together, and returns the embeddings they will fill. It waits
// only while the examples already queued exceed the budget.
func (m *Model) submit(ctx context.Context, ex *preprocess.Examples) (*Embeddings, []*request, error) {
	n := ex.Len()
	per := preprocess.ExampleFrames * preprocess.MelBins
	if len(ex.Data) != n*per {
		return nil, nil, fmt.Errorf("%d log-mel values for %d examples", len(ex.Data), n)
	}
	if err := checkRange(ex.Data, ex.Starts, "log-mel input", minLogMel, maxLogMel); err != nil {
		return nil, nil, err
	}
	out := &Embeddings{Data: make([]float32, n*EmbeddingSize), Starts: append([]float64(nil), ex.Starts...)}
	var reqs []*request
	for i := 0; i < n; i += m.opts.BatchSize {
		j := min(n, i+m.opts.BatchSize)
		r := &request{ctx: ctx, in: ex.Data[i*per : j*per], out: out.Data[i*EmbeddingSize : j*EmbeddingSize], done: make(chan error, 1), queued: time.Now()}
		if err := m.budget.Acquire(ctx, int64(r.len())); err != nil {
			return nil, nil, err
		}
		select {
		case <-m.quit:
			m.budget.Release(int64(r.len()))
			return nil, nil, ErrClosed
		default:
		}
		m.reqs <- r // never blocks: the channel holds the whole budget
		reqs = append(reqs, r)
	}
	return out, reqs, nil
}

// wait waits for the loop to answer reqs.
func (m *Model) wait(reqs []*request) error {
	var first error
	for _, r := range reqs {
		var err error
		select {
		case err = <-r.done:
		case <-m.loopDone:
			select {
			case err = <-r.done:
			default:
				err = ErrClosed
			}
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// request is a run of at most BatchSize examples waiting for the inference loop.
type request struct {
	ctx    context.Context
	in     []float32 // examples × 96 × 64; nil once in a batch, so that a long input's examples are freed as they run
	out    []float32 // examples × 128, filled by the loop
	done   chan error
	queued time.Time // when submit began to queue it
}

func (r *request) len() int { return len(r.out) / EmbeddingSize }

// answer ends r and gives its examples' place in the queue back.
func (m *Model) answer(r *request, err error) {
	r.done <- err
	m.budget.Release(int64(r.len()))
}

// loop owns the device: it packs waiting requests into batches and runs them. It keeps one OS thread
// because libtorch's grad mode and error state are thread-local.
func (m *Model) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(m.loopDone)
	defer m.drain()
	if _, err := ts.GradSetEnabled(false); err != nil {
		m.failAll(tensor.Err(err))
		return
	}
	batch := make([]float32, 0, m.opts.BatchSize*preprocess.ExampleFrames*preprocess.MelBins)
	var pending *request
	delay := time.NewTimer(0)
	delay.Stop()
	for {
		if pending == nil {
			select {
			case pending = <-m.reqs:
			case <-m.quit:
				return
			}
		}
		reqs, next, ok := m.gather(pending, delay)
		if !ok {
			return
		}
		pending = next
		batch = batch[:0]
		live := reqs[:0]
		oldest := time.Now()
		for _, r := range reqs {
			if err := r.ctx.Err(); err != nil {
				m.answer(r, err)
				continue
			}
			batch = append(batch, r.in...)
			r.in = nil // the caller waits for the whole input before it lets go of its requests
			live = append(live, r)
			if r.queued.Before(oldest) {
				oldest = r.queued
			}
		}
		if len(live) == 0 {
			continue
		}
		began := time.Now()
		ctx, stop := m.batchContext(live)
		out, err := m.run(ctx, batch)
		stop()
		if m.opts.OnBatch != nil {
			m.opts.OnBatch(BatchStats{Clips: len(batch) / (preprocess.ExampleFrames * preprocess.MelBins), Requests: len(live),
				QueueWait: began.Sub(oldest), Forward: time.Since(began), Err: err})
		}
		at := 0
		for _, r := range live {
			switch {
			case err == nil:
				at += copy(r.out, out[at:at+len(r.out)])
			case r.ctx.Err() != nil:
				m.answer(r, r.ctx.Err())
				continue
			}
			m.answer(r, err)
		}
	}
}

// gather packs first and the requests waiting after it into a batch of at most BatchSize examples,
// waiting for more up to MaxQueueDelay from first's queueing when the batch is not full. It returns
// the batch's requests and the next request, which did not fit, if any; ok is false when the Model
// closed while it waited, the batch's requests answered.
func (m *Model) gather(first *request, delay *time.Timer) (reqs []*request, next *request, ok bool) {
	reqs, size := []*request{first}, first.len()
	for size < m.opts.BatchSize {
		var r *request
		select {
		case r = <-m.reqs:
		default:
			if m.opts.MaxQueueDelay <= 0 {
				return reqs, nil, true
			}
			delay.Reset(time.Until(first.queued.Add(m.opts.MaxQueueDelay)))
			select {
			case r = <-m.reqs:
				delay.Stop()
			case <-delay.C:
				return reqs, nil, true
			case <-m.quit:
				for _, r := range reqs {
					m.answer(r, ErrClosed)
				}
				return nil, nil, false
			}
		}
		if size+r.len() > m.opts.BatchSize {
			return reqs, r, true
		}
		reqs, size = append(reqs, r), size+r.len()
	}
	return reqs, nil, true
}

// batchContext is done when the network's work for reqs is wasted: every request's context is done,
// or the Model is closing. The forward pass then stops at its next chunk of clips, so that a cancelled
// call or Close does not wait for a whole batch.
// Call stop when the batch is done.
func (m *Model) batchContext(reqs []*request) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	left := int32(len(reqs))
	var stops []func() bool
	for _, r := range reqs {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if atomic.AddInt32(&left, -1) == 0 {
				cancel()
			}
		}))
	}
	go func() {
		select {
		case <-m.quit:
			cancel()
		case <-ctx.Done():
		}
		for _, stop := range stops {
			stop()
		}
	}()
	return ctx, cancel
}

// failAll answers every request with err until Close.
func (m *Model) failAll(err error) {
	for {
		select {
		case r := <-m.reqs:
			m.answer(r, err)
		case <-m.quit:
			return
		}
	}
}

// drain answers the requests still queued when the loop ends.
func (m *Model) drain() {
	for {
		select {
		case r := <-m.reqs:
			m.answer(r, ErrClosed)
		default:
			return
		}
	}
}

// testHookForward, set by tests only, is called as a forward pass starts (start) and as it ends, with
// its error.
var testHookForward func(start bool, err error)

// run embeds one batch of examples and returns the embeddings on the host. A clip's embedding does
// not depend on the batch it runs in, to the bit (see tensor.Net).
//
// A panic (a bug) fails the batch's requests instead of the process, which may be embedding many
// other files.
func (m *Model) run(ctx context.Context, batch []float32) (_ []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in the inference loop: %v\n%s", r, debug.Stack())
		}
	}()
	// libtorch's OpenMP builds keep the thread count per OS thread: this one follows the process's
	// count, whoever set it since the last pass.
	if torch.Threads() != m.threads {
		if m.threads, err = torch.AdoptThreads(); err != nil {
			return nil, err
		}
	}
	per := preprocess.ExampleFrames * preprocess.MelBins
	n := int64(len(batch) / per)
	var s tensor.Scope
	defer s.Close()
	x, err := s.Own(tensor.To(m.device)(tensor.FromSlice(batch, n, 1, preprocess.ExampleFrames, preprocess.MelBins)))
	if err != nil {
		return nil, err
	}
	if testHookForward != nil {
		testHookForward(true, nil)
	}
	x, err = s.Own(m.net.forward(ctx, x))
	if testHookForward != nil {
		testHookForward(false, err)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ErrClosed // or every caller has gone: none reads it
		}
		return nil, err
	}
	if m.post != nil {
		if x, err = s.Own(m.post.apply(x, n)); err != nil {
			return nil, err
		}
	}
	return tensor.ToSlice[float32](x)
}

// Embeddings are the vectors of one input, a row per example.
type Embeddings struct {
	// Data holds Rows() vectors of 128 float32 values, row after row.
	Data []float32
	// Starts is each row's start in the audio, in seconds.
	Starts []float64
	// Channels is 0 for one stream of vectors (the channels mixed, or a single channel). With
	// Options.Channels Each it is the input's channel count, and the rows are channel 0's, then
	// channel 1's, and so on, the same number for each: Data is a C-order (Channels, Rows() /
	// Channels, 128) array. Channel(c) is channel c's stream.
	Channels int
	// SampleRate and Duration describe the source audio (zero for EmbedExamples; Duration is zero in
	// the blocks of EmbedBlocks, as the audio's length is known only at its end).
	SampleRate int
	Duration   float64
}

// Rows is the number of vectors (of every channel).
func (e *Embeddings) Rows() int { return len(e.Starts) }

// Channel is channel c's stream of vectors, sharing e's memory. It panics unless 0 <= c < e.Channels.
func (e *Embeddings) Channel(c int) *Embeddings {
	if c < 0 || c >= e.Channels {
		panic(fmt.Sprintf("vggish: channel %d of %d", c, e.Channels))
	}
	n := e.Rows() / e.Channels
	return &Embeddings{
		Data:       e.Data[c*n*EmbeddingSize : (c+1)*n*EmbeddingSize : (c+1)*n*EmbeddingSize],
		Starts:     e.Starts[c*n : (c+1)*n : (c+1)*n],
		SampleRate: e.SampleRate, Duration: e.Duration,
	}
}

// Row is vector i.
func (e *Embeddings) Row(i int) []float32 {
	return e.Data[i*EmbeddingSize : (i+1)*EmbeddingSize : (i+1)*EmbeddingSize]
}

// Mean is the element-wise mean of the rows: one vector for the whole input, all channels together
// (nil when there are no rows). Channel(c).Mean() is channel c's.
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
// row and the shape, (channels, rows, 128) for Options.Channels Each.
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
	if e.Channels > 0 {
		fmt.Fprintf(&b, "] shape=(%d, %d, %d)", e.Channels, e.Rows()/e.Channels, EmbeddingSize)
	} else {
		fmt.Fprintf(&b, "] shape=(%d, %d)", e.Rows(), EmbeddingSize)
	}
	return b.String()
}
