package preprocess

import (
	"errors"
	"fmt"
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"golang.org/x/sync/singleflight"

	"github.com/vggish-go/vggish/internal/tensor"
	"github.com/vggish-go/vggish/preprocess/resample"
)

// A resampler converts a stream to SampleRate in chunks; the output never depends on the chunking.
type resampler interface {
	// Write appends the outputs that the input so far completes to out.
	Write(in, out []float64) ([]float64, error)
	// Flush ends the input and appends the remaining outputs.
	Flush(out []float64) ([]float64, error)
	// Close frees what the resampler holds.
	Close()
}

// newResampler resamples from rate to SampleRate on device: by a polyphase filter bank in torch where
// the rate pair has one within maxBank weights (every common rate), else by the pure-Go port.
func newResampler(rate int, device gotch.Device) (resampler, error) {
	if rate == SampleRate {
		return identity{}, nil
	}
	b, owned, err := bankFor(rate, device)
	if err != nil {
		return nil, err
	}
	if b == nil {
		rs, err := resample.New(rate, SampleRate)
		if err != nil {
			return nil, err
		}
		return goResampler{rs}, nil
	}
	return &polyphase{bank: b, owned: owned, buf: getSamples()}, nil
}

type identity struct{}

func (identity) Write(in, out []float64) ([]float64, error) { return append(out, in...), nil }
func (identity) Flush(out []float64) ([]float64, error)     { return out, nil }
func (identity) Close()                                     {}

type goResampler struct{ *resample.Resampler }

func (r goResampler) Write(in, out []float64) ([]float64, error) {
	return r.Resampler.Write(in, out), nil
}
func (r goResampler) Flush(out []float64) ([]float64, error) { return r.Resampler.Flush(out), nil }
func (goResampler) Close()                                   {}

// maxBank bounds a filter bank's weights (8 MB of float64). 44.1 kHz needs 160 phases of up to 360
// weights; a rate such as 44056 Hz (NTSC-locked 44.1 kHz) would need 2000 phases of 5782, and goes to
// the Go resampler instead.
const maxBank = 1 << 20

// minRowOutputs is the fewest outputs a bank row computes: rate pairs with few phases (48 kHz has
// one) get several periods per row, so that each matrix product has work enough. It is also the width
// of a bank's blocks.
const minRowOutputs = 32

// groupOutputs is about how many outputs one matrix product computes (1 s at 16 kHz: its input and
// output stay in the caches). Products always cover whole groups of rows at fixed positions, so every
// output is computed by the same product, with the same rounding, however the input is chunked.
const groupOutputs = 1 << 14

// bank is resampy's kaiser_best resampling from one rate to SampleRate as matrices: row r of outputs,
// y[r*outs : (r+1)*outs], reads x[r*step+base : r*step+base+width]. The row's outputs are cut into
// blocks of minRowOutputs, each a product with the taps of its own outputs (resample.Resampler.Taps),
// which repeat for every later row: a block reads only the inputs its outputs reach, where one matrix
// for the row would multiply mostly zeros (44.1 kHz: at most 360 against 712 weights per output).
type bank struct {
	rate   int
	outs   int // outputs per row: a multiple of the reduced ratio's numerator
	step   int // input samples per row
	base   int // offset of row 0's window (≤ 0: the filter reaches back before the first sample)
	width  int
	group  int // rows per matrix product
	device gotch.Device
	// Block j computes the next weights[j].size(1) outputs of each row from the row's inputs from
	// offsets[j] on (relative to base): weights[j] is (its width, its outputs), float64 on device,
	// living as long as the bank.
	weights []*ts.Tensor
	offsets []int64
}

type bankKey struct {
	rate   int
	device gotch.Device
}

// maxCachedBanks bounds the banks kept for the process: a corpus uses a few rates, but a stream of
// files with every rate under the sun must not grow the process.
const maxCachedBanks = 16

var (
	banksMu sync.Mutex
	banks   = map[bankKey]*bank{} // a nil *bank where the Go resampler serves the rate
	// building makes one bank per rate pair at a time: the inputs of a new rate that start together
	// (a corpus's first files, one per worker) wait for one build instead of each making the bank.
	building  singleflight.Group
	buildBank = newBank // replaced by tests, to count the builds
)

// errNoRoom says that the cache of banks filled up while a bank was being built.
var errNoRoom = errors.New("no room for another bank")

// bankFor returns the bank for rate on device, nil when the rate pair's bank would exceed maxBank.
// Banks are built on first use and kept for the process, up to maxCachedBanks; past that the caller
// owns the bank it gets and frees it.
func bankFor(rate int, device gotch.Device) (b *bank, owned bool, err error) {
	key := bankKey{rate, device}
	if b, ok, full := cachedBank(key); ok {
		return b, false, nil
	} else if !full {
		v, err, _ := building.Do(fmt.Sprintf("%d %v", rate, device), func() (any, error) {
			if b, ok, _ := cachedBank(key); ok { // built by the call this one followed
				return b, nil
			}
			b, err := buildBank(rate, device)
			if err != nil {
				return nil, err
			}
			banksMu.Lock()
			defer banksMu.Unlock()
			if len(banks) >= maxCachedBanks { // other rates' banks came first
				b.free()
				return nil, errNoRoom
			}
			banks[key] = b
			return b, nil
		})
		switch {
		case err == nil:
			return v.(*bank), false, nil
		case !errors.Is(err, errNoRoom):
			return nil, false, err
		}
	}
	// Past the cache's bound each caller builds and owns its bank.
	b, err = buildBank(rate, device)
	return b, b != nil, err
}

// cachedBank returns the cached bank for key, if there is one, and whether the cache is full.
func cachedBank(key bankKey) (b *bank, ok, full bool) {
	banksMu.Lock()
	defer banksMu.Unlock()
	b, ok = banks[key]
	return b, ok, len(banks) >= maxCachedBanks
}

func (b *bank) free() {
	if b != nil {
		for _, w := range b.weights {
			w.Drop()
		}
	}
}

func newBank(rate int, device gotch.Device) (*bank, error) {
	rs, err := resample.New(rate, SampleRate)
	if err != nil {
		return nil, err
	}
	g := gcd(rate, SampleRate)
	num, den := SampleRate/g, rate/g
	// A row is k periods of the rate pair: at least minRowOutputs outputs, and a step over at least
	// the inputs of one block (its outputs' stride plus the filter's span), so that a block's windows,
	// one per row, form a plain strided matrix that BLAS reads in place, with no copy.
	k := max(1, (minRowOutputs+num-1)/num)
	k = max(k, ((minRowOutputs-1)*den/num+rs.MaxTaps()+den)/den)
	b := &bank{rate: rate, outs: k * num, step: k * den, device: device}
	// Each row reads step samples plus the filter's span: refuse a large bank before computing it.
	if b.outs*(b.step+rs.MaxTaps()) > maxBank {
		return nil, nil
	}
	taps := make([][]float64, b.outs)
	firsts := make([]int, b.outs)
	end := 0
	for t := range taps {
		taps[t], firsts[t] = rs.Taps(t)
		if t == 0 || firsts[t] < b.base {
			b.base = firsts[t]
		}
		end = max(end, firsts[t]+len(taps[t]))
	}
	b.width = end - b.base
	b.group = max(1, groupOutputs/b.outs)
	for lo := 0; lo < b.outs; lo += minRowOutputs {
		hi := min(lo+minRowOutputs, b.outs)
		first, end := firsts[lo], 0
		for t := lo; t < hi; t++ {
			first = min(first, firsts[t])
			end = max(end, firsts[t]+len(taps[t]))
		}
		width, n := end-first, hi-lo
		w := make([]float64, width*n)
		for t := lo; t < hi; t++ {
			for i, v := range taps[t] {
				w[(firsts[t]-first+i)*n+t-lo] = v
			}
		}
		weights, err := tensor.To(device)(tensor.FromSlice(w, int64(width), int64(n)))
		if err != nil {
			b.free()
			return nil, err
		}
		b.weights, b.offsets = append(b.weights, weights), append(b.offsets, int64(first-b.base))
	}
	return b, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// polyphase streams one signal through a bank.
type polyphase struct {
	bank  *bank
	owned bool      // free the bank on Close
	buf   []float64 // input samples from index start on
	start int
	nIn   int
	row   int // next row to compute: a multiple of bank.group
}

// firstInput is the index of the first input sample row r reads.
func (p *polyphase) firstInput(r int) int { return r*p.bank.step + p.bank.base }

func (p *polyphase) Write(in, out []float64) ([]float64, error) {
	p.buf = append(p.buf, in...)
	p.nIn += len(in)
	b := p.bank
	n := 0 // groups whose input is all here
	for p.firstInput(p.row+(n+1)*b.group-1)+b.width <= p.nIn {
		n++
	}
	if n == 0 {
		return out, nil
	}
	out, err := p.rows(out, n*b.group)
	if err != nil {
		return out, err
	}
	// Keep what later rows read; copy down once that is at most half the buffer (amortised).
	if drop := p.firstInput(p.row) - p.start; drop > len(p.buf)/2 {
		p.buf = p.buf[:copy(p.buf, p.buf[drop:])]
		p.start += drop
	}
	return out, nil
}

func (p *polyphase) Close() {
	putSamples(p.buf)
	p.buf = nil
	if p.owned {
		p.bank.free()
		p.owned = false
	}
}

func (p *polyphase) Flush(out []float64) ([]float64, error) {
	b := p.bank
	total := int(float64(p.nIn) * float64(SampleRate) / float64(b.rate)) // resampy's output count
	done := p.row * b.outs
	if rows := (total - done + b.outs - 1) / b.outs; rows > 0 {
		groups := (rows + b.group - 1) / b.group
		var err error
		if out, err = p.rows(out, groups*b.group); err != nil {
			return out, err
		}
	}
	return out[:len(out)-(p.row*b.outs-max(total, done))], nil
}

// rows computes the next n rows (whole groups) and appends their outputs to out. Input outside the
// signal reads as zeros, as resampy sums only the samples that exist.
func (p *polyphase) rows(out []float64, n int) ([]float64, error) {
	b := p.bank
	for g := 0; g < n; g += b.group {
		lo := p.firstInput(p.row)
		size := (b.group-1)*b.step + b.width
		var x []float64
		if lo >= p.start && lo+size <= p.start+len(p.buf) {
			x = p.buf[lo-p.start : lo-p.start+size]
		} else { // the signal's edges: the part of [lo, lo+size) that the buffer holds, in zeros
			x = make([]float64, size)
			from, to := max(lo, p.start), min(lo+size, p.start+len(p.buf))
			if from < to {
				copy(x[from-lo:], p.buf[from-p.start:to-p.start])
			}
		}
		var err error
		if out, err = b.apply(out, x); err != nil {
			return out, fmt.Errorf("resampling from %d Hz: %w", b.rate, err)
		}
		p.row += b.group
	}
	return out, nil
}

// apply computes one group of rows from its input window x and appends their outputs to out.
func (b *bank) apply(out, x []float64) ([]float64, error) {
	var s tensor.Scope
	defer s.Close()
	t, err := s.Own(tensor.To(b.device)(tensor.FromSlice(x, int64(len(x)))))
	if err != nil {
		return nil, err
	}
	y, err := s.Apply(t, func(t *ts.Tensor) (*ts.Tensor, error) {
		return tensor.Polyphase(t, b.weights, b.offsets, b.group, b.step)
	})
	if err != nil {
		return out, err
	}
	return tensor.AppendSlice(out, y) // (group, outs)
}
