// Package resample converts the sample rate of a float64 signal the way resampy 0.4.2 does with its
// default kaiser_best filter (resampy.resample(x, inRate, outRate)), in pure Go and in a streaming
// fashion: the input may arrive in chunks of any size and the output is bit-identical to the
// whole-signal result.
//
// Like resampy, output sample t sits at input position t*inRate/outRate, computed in float64 exactly as
// resampy computes it, and the signal has int(n*outRate/inRate) output samples for n input samples. The
// result matches resampy to about 1e-15: the filter table is recomputed rather than loaded (a few 1e-16
// apart) and each output's dot product is summed in a different order.
package resample

import (
	"fmt"
	"math"
)

// maxCached bounds the per-phase weight cache. Rate pairs whose input step is a short binary fraction
// (48000, 32000, 24000, 8000 -> 16000) revisit a handful of filter phases; others (44100 -> 16000) hardly
// ever repeat one, and the cache stays small and useless for them.
const maxCached = 64

// Resampler resamples one stream. Its memory is bounded by the filter span (about 150 input samples each
// side at 48 kHz -> 16 kHz), the filter table, and the largest chunk passed to Write.
type Resampler struct {
	identity bool

	inRate, outRate float64
	scale           float64 // min(1, outRate/inRate): filter stretch when downsampling
	inc             float64 // input samples per output sample
	ratio           float64 // outRate/inRate
	step            int     // table stride between successive taps (resampy's index_step)
	nwin            int     // length of the filter wing table
	wing            int     // most taps on either side of an output position

	// tab holds resampy's interp_win[j] and interp_delta[j] grouped by phase j%step, so the taps of one
	// output are contiguous: phase p's entries j = p, p+step, ... start at rows[p].
	tab  []tap
	rows []int

	cache   map[uint64]weights // by the bits of the output position's fractional part
	scratch []float64

	buf  []float64 // input samples x[base:], zero before the start and, after Flush, past the end
	base int
	nIn  int // input samples written so far
	t    int // next output index
}

type tap struct{ win, delta float64 }

// weights of one output, in input order: x[n-left+1 .. n+len(w)-left].
type weights struct {
	w    []float64
	left int
}

// MaxRatio is how far apart New's rates may be, either way. Downsampling by more than the filter
// table's resolution leaves no table step between taps (resampy divides by zero there), and
// upsampling by more would turn each input sample into thousands of outputs.
const MaxRatio = numTable

// New returns a Resampler from inRate to outRate (Hz). Rates must be positive and at most MaxRatio
// apart.
func New(inRate, outRate int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 {
		return nil, fmt.Errorf("resample: invalid sample rates %d -> %d", inRate, outRate)
	}
	if inRate == outRate {
		return &Resampler{identity: true}, nil
	}
	// Same float64 expressions as resampy.core.resample.
	ratio := float64(outRate) / float64(inRate)
	if ratio*numTable < 1 || ratio > MaxRatio { // the first would make the table step 0
		return nil, fmt.Errorf("resample: sample rates %d -> %d Hz are more than %d times apart", inRate, outRate, MaxRatio)
	}
	scale := math.Min(1, ratio)
	win := kaiserBest()
	r := &Resampler{
		inRate:  float64(inRate),
		outRate: float64(outRate),
		ratio:   ratio,
		scale:   scale,
		inc:     1.0 / ratio,
		step:    int(scale * numTable),
		nwin:    len(win),
		cache:   make(map[uint64]weights),
	}
	r.wing = r.nwin / r.step
	r.buildTable(win)
	r.reset()
	return r, nil
}

// buildTable fills tab and rows from the filter wing, scaled by ratio when downsampling as resampy does
// (interp_win = sample_ratio * interp_win; interp_delta = np.diff(interp_win, append=interp_win[-1])).
func (r *Resampler) buildTable(win []float64) {
	at := func(j int) float64 {
		if r.ratio < 1 {
			return r.ratio * win[j]
		}
		return win[j]
	}
	r.tab = make([]tap, 0, r.nwin)
	r.rows = make([]int, r.step)
	for p := range r.step {
		r.rows[p] = len(r.tab)
		for j := p; j < r.nwin; j += r.step {
			delta := 0.0
			if j+1 < r.nwin {
				delta = at(j+1) - at(j)
			}
			r.tab = append(r.tab, tap{at(j), delta})
		}
	}
}

func (r *Resampler) reset() {
	r.buf = append(r.buf[:0], make([]float64, r.wing)...)
	r.base = -r.wing
	r.nIn, r.t = 0, 0
}

// outLen is resampy's output length for the input written so far: int(n * float(sr_new) / float(sr_orig)).
func (r *Resampler) outLen() int {
	return int(float64(r.nIn) * r.outRate / r.inRate)
}

// Write resamples the next chunk of input, appends the outputs that are now complete to out and returns
// it. Outputs are held back until the filter span to their right has arrived.
func (r *Resampler) Write(in []float64, out []float64) []float64 {
	if r.identity {
		return append(out, in...)
	}
	r.buf = append(r.buf, in...)
	r.nIn += len(in)
	out = r.produce(out, r.outLen(), r.nIn-r.wing)
	// Drop input no later output can reach, once that is at least half the buffer (amortised copying).
	drop := int(float64(r.t)*r.inc) - r.wing + 1 - r.base
	if drop > len(r.buf)/2 {
		r.buf = r.buf[:copy(r.buf, r.buf[drop:])]
		r.base += drop
	}
	return out
}

// Flush ends the input, appends the remaining outputs to out and returns it. r is then ready for a new
// stream. An input too short for one output (resampy raises an error for it) yields none.
func (r *Resampler) Flush(out []float64) []float64 {
	if r.identity {
		return out
	}
	r.buf = append(r.buf, make([]float64, r.wing)...) // resampy stops at the last sample: zeros add nothing
	out = r.produce(out, r.outLen(), math.MaxInt)
	r.reset()
	return out
}

// produce appends outputs r.t, r.t+1, ... up to limit (exclusive) whose input position is below nMax.
func (r *Resampler) produce(out []float64, limit, nMax int) []float64 {
	for ; r.t < limit; r.t++ {
		// resampy's time grid: t_out = np.arange(n_out) * time_increment.
		pos := float64(r.t) * r.inc
		n := int(pos)
		if n >= nMax {
			break
		}
		w := r.weights(r.scale * (pos - float64(n)))
		lo := n - w.left + 1 - r.base
		out = append(out, dot(w.w, r.buf[lo:lo+len(w.w)]))
	}
	return out
}

// weights returns the filter taps for an output whose position has fractional part frac (scaled), as
// resampy's _resample_loop computes them: weight = interp_win[j] + eta*interp_delta[j] with
// j = offset + i*index_step, for the left wing and for the right wing (at scale - frac).
func (r *Resampler) weights(frac float64) weights {
	key := math.Float64bits(frac)
	if w, ok := r.cache[key]; ok {
		return w
	}
	offL, etaL := split(frac)
	offR, etaR := split(r.scale - frac)
	left, right := (r.nwin-offL)/r.step, (r.nwin-offR)/r.step
	var w []float64
	if len(r.cache) < maxCached {
		w = make([]float64, left+right)
	} else {
		r.scratch = append(r.scratch[:0], make([]float64, left+right)...)
		w = r.scratch
	}
	// float64() keeps the multiply and add separate (no FMA), as in resampy.
	wl := w[:left]
	for i, e := range r.phase(offL)[:left] {
		wl[left-1-i] = e.win + float64(etaL*e.delta)
	}
	wr := w[left:]
	for k, e := range r.phase(offR)[:right] {
		wr[k] = e.win + float64(etaR*e.delta)
	}
	ws := weights{w: w, left: left}
	if len(r.cache) < maxCached {
		r.cache[key] = ws
	}
	return ws
}

// Taps returns the filter weights of output t and the index of the input sample the first weight
// multiplies: output t is the sum of w[i]*x[first+i], with x zero outside the signal. Outputs of rate
// pairs whose ratio reduces to a/b (out/in) repeat their weights every a outputs, shifted by b input
// samples, which is what lets a filter bank built from the first a outputs compute every other one.
func (r *Resampler) Taps(t int) (w []float64, first int) {
	if r.identity {
		return []float64{1}, t
	}
	pos := float64(t) * r.inc
	n := int(pos)
	ws := r.weights(r.scale * (pos - float64(n)))
	return append([]float64(nil), ws.w...), n - ws.left + 1
}

// MaxTaps is the most filter weights an output applies.
func (r *Resampler) MaxTaps() int {
	if r.identity {
		return 1
	}
	return 2*r.wing + 2
}

// split turns a scaled fractional position into a table offset and an interpolation factor.
func split(frac float64) (int, float64) {
	indexFrac := frac * numTable
	offset := int(indexFrac)
	return offset, indexFrac - float64(offset)
}

// phase returns the table entries for j = offset, offset+step, ...
func (r *Resampler) phase(offset int) []tap {
	return r.tab[r.rows[offset%r.step]+offset/r.step:]
}

// dot is the inner product of w and x[:len(w)], with four partial sums for speed.
func dot(w, x []float64) float64 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float64
	for len(w) >= 4 && len(x) >= 4 {
		s0 += w[0] * x[0]
		s1 += w[1] * x[1]
		s2 += w[2] * x[2]
		s3 += w[3] * x[3]
		w, x = w[4:], x[4:]
	}
	for i, v := range w {
		s0 += v * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Resample resamples the whole signal x from inRate to outRate, like resampy.resample(x, inRate, outRate)
// (a copy of x when the rates are equal).
func Resample(x []float64, inRate, outRate int) ([]float64, error) {
	r, err := New(inRate, outRate)
	if err != nil {
		return nil, err
	}
	out := make([]float64, 0, int(float64(len(x))*float64(outRate)/float64(inRate))+1)
	// Chunks keep the internal buffer small; the result does not depend on them.
	const chunk = 1 << 16
	for len(x) > 0 {
		c := min(chunk, len(x))
		out = r.Write(x[:c], out)
		x = x[c:]
	}
	return r.Flush(out), nil
}
