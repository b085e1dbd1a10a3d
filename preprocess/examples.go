package preprocess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/torch"
)

// Options choose how audio is cut into examples. The zero value is the reference: a new example every
// 0.96 s, and a partial example at the end dropped.
type Options struct {
	// Hop is the time between example starts in seconds, rounded to whole 10 ms log-mel frames
	// (half to even, as the reference script does); 0 means 0.96 s. Smaller values give overlapping
	// examples.
	Hop float64
	// Tail is what becomes of a last, partial example and of audio shorter than one example: dropped
	// (the zero value, as the reference), padded with silence, or filled by repeating its audio.
	Tail Tail
	// Device is where resampling and the log-mel run (the zero value is the CPU): a model's device,
	// so that on a GPU the CPU only decodes.
	Device torch.Device
}

// Hop bounds, in seconds: one log-mel frame, and one example every 2.8 hours.
const (
	MinHop = spec.MinHop
	MaxHop = spec.MaxHop
)

// Check reports whether the options are valid: a Hop of 0 or one that rounds to MinHop..MaxHop, and
// a Tail policy of those defined.
func (o Options) Check() error {
	if o.Tail < Drop || o.Tail > Repeat {
		return fmt.Errorf("tail policy %v: want Drop, Pad or Repeat", o.Tail)
	}
	_, err := o.hopFrames()
	return err
}

func (o Options) hopFrames() (int, error) {
	if o.Hop == 0 {
		return defaultHop, nil
	}
	return spec.HopFrames(o.Hop)
}

// Examples is a run of log-mel examples, the network's input.
type Examples struct {
	// Data holds Len() examples of 96 frames by 64 mel bins, in that order (float32, like the
	// reference's (N, 1, 96, 64) tensor).
	Data []float32
	// Starts is each example's start in the audio, in seconds.
	Starts []float64
}

// Len is the number of examples.
func (e *Examples) Len() int { return len(e.Starts) }

// Example is example i's 96×64 values.
func (e *Examples) Example(i int) []float32 {
	n := ExampleFrames * MelBins
	return e.Data[i*n : (i+1)*n : (i+1)*n]
}

// Info describes the audio behind a run of examples.
type Info struct {
	SampleRate int     // the source's rate, Hz
	Duration   float64 // seconds of source audio
	Examples   int
}

// BlockExamples is the most examples Stream computes at once (15 s of audio at the default hop; fewer
// with a longer hop, so that a block never spans more audio): memory stays flat however long the input
// is, whatever the hop, and a block's samples (2 MB) stay in the caches and in Go's free memory, where a
// minute's took a fault per page (a third of the time of preprocessing a 16 kHz file). Block
// boundaries depend only on the example index and the hop, so the result does not depend on how the
// source delivers its samples.
const BlockExamples = 16

// blockExamples is the examples per block for a hop of hop frames.
func blockExamples(hop int) int {
	return max(1, min(BlockExamples, (BlockExamples-1)*defaultHop/hop+1))
}

// readSamples is how many samples Stream asks its source for at a time.
const readSamples = 1 << 16

// Stream reads src to the end and calls fn with each block of examples, in order. Errors from src
// and fn are returned as they are; Stream's own errors name the source ("preprocess NAME: ...", with the
// name from a Name() string method when src has one); a nil src is "preprocess: nil Source".
func Stream(ctx context.Context, src decode.Source, opts Options, fn func(*Examples) error) (Info, error) {
	if src == nil {
		return Info{}, errors.New("preprocess: nil Source")
	}
	info := Info{SampleRate: src.SampleRate()}
	name := "audio"
	if n, ok := src.(interface{ Name() string }); ok {
		name = n.Name()
	}
	fail := func(err error) (Info, error) { return info, fmt.Errorf("preprocess %s: %w", name, err) }
	if fn == nil {
		return fail(errors.New("nil fn"))
	}
	if err := opts.Check(); err != nil {
		return fail(err)
	}
	hop, _ := opts.hopFrames()
	if err := decode.CheckSampleRate(src.SampleRate()); err != nil { // for Sources other than decode's
		return fail(err)
	}
	device := tensor.Device(opts.Device)
	rs, err := newResampler(src.SampleRate(), device)
	if err != nil {
		return fail(err)
	}
	defer rs.Close()
	stride := hop * FrameHop // samples between example starts at 16 kHz
	need := func(n int) int { return (n-1)*stride + ExampleSamples }
	block := blockExamples(hop)
	var (
		in      = slices.Grow(getSamples(), readSamples)[:readSamples]
		wave    = getSamples() // 16 kHz samples from example next's start on, once skip is dropped
		next    int            // index of the first example wave holds
		skip    int            // samples to drop from the front of wave before example next starts
		samples int64          // source samples read
	)
	defer func() {
		putSamples(in)
		putSamples(wave)
	}()
	// drop removes what it can of the skip: with a hop longer than an example, the samples between
	// two examples may not have arrived when the first is emitted.
	drop := func() {
		k := min(skip, len(wave))
		wave = wave[:copy(wave, wave[k:])]
		skip -= k
	}
	emit := func(n int) error {
		data, err := logMelExamples(wave[:need(n)], n, hop, device)
		if err == nil {
			err = checkFinite(data, wave, next, stride)
		}
		if err != nil {
			return fmt.Errorf("preprocess %s: %w", name, err)
		}
		ex := &Examples{Data: data, Starts: make([]float64, n)}
		for i := range ex.Starts {
			ex.Starts[i] = float64((next+i)*stride) / SampleRate
		}
		if err := fn(ex); err != nil {
			return err
		}
		next += n
		info.Examples += n
		skip += n * stride
		drop()
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := src.Read(in)
		samples += int64(n)
		if wave, err = rs.Write(in[:n], wave); err != nil {
			return fail(err)
		}
		drop()
		for len(wave) >= need(block) {
			if err := emit(block); err != nil {
				return info, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return info, rerr
		}
	}
	if wave, err = rs.Flush(wave); err != nil {
		return fail(err)
	}
	drop()
	info.Duration = float64(samples) / float64(info.SampleRate)
	n := 0
	if len(wave) >= ExampleSamples {
		n = 1 + (len(wave)-ExampleSamples)/stride
	}
	if opts.Tail != Drop {
		// The reference extends the whole waveform to the length that covers it with whole examples.
		if n = tailExamples(next*stride-skip+len(wave), stride) - next; n > 0 {
			wave = opts.Tail.fill(wave, (n-1)*stride, need(n))
		}
	}
	for n > 0 {
		k := min(n, block)
		if err := emit(k); err != nil {
			return info, err
		}
		n -= k
	}
	return info, nil
}

// checkFinite returns an error naming the first example of data, examples next, next+1, ... of wave
// (which starts at example next), that holds a NaN or an infinity. Finite samples give one when they are
// so large that the spectrum's squared magnitudes overflow float64 (about 1e154).
func checkFinite(data []float32, wave []float64, next, stride int) error {
	per := ExampleFrames * MelBins
	for i, v := range data {
		if v-v == 0 { // finite
			continue
		}
		k := i / per
		peak := 0.0
		for _, x := range wave[k*stride : k*stride+ExampleSamples] {
			peak = math.Max(peak, math.Abs(x))
		}
		return fmt.Errorf("example %d (at %.2f s): log-mel value %v: the samples overflow the spectrum (largest magnitude %.3g; audio samples lie within [-1, 1])",
			next+k, float64((next+k)*stride)/SampleRate, v, peak)
	}
	return nil
}

// Read returns all the examples of src.
func Read(ctx context.Context, src decode.Source, opts Options) (*Examples, Info, error) {
	all := &Examples{}
	info, err := Stream(ctx, src, opts, func(e *Examples) error {
		all.Data = append(all.Data, e.Data...)
		all.Starts = append(all.Starts, e.Starts...)
		return nil
	})
	if err != nil {
		return nil, info, err
	}
	return all, info, nil
}

// File returns the examples of an audio file: WAV natively, other formats through ffmpeg.
func File(ctx context.Context, path string, opts Options) (*Examples, Info, error) {
	src, err := decode.OpenContext(ctx, path)
	if err != nil {
		return nil, Info{}, err
	}
	defer src.Close()
	return Read(ctx, src, opts)
}
