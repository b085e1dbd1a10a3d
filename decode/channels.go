package decode

import (
	"fmt"
	"math"
	"sync"
)

// interleaved is a source of this package that can hand out its frames unmixed.
type interleaved interface {
	Source
	Name() string
	channelCount() int
	// frames returns up to limit (> 0) frames, interleaved, valid until the next call; the end of the
	// stream or an error comes once no samples are left.
	frames(limit int) ([]float64, error)
}

// maxAhead is how many samples one channel may hold that its reader has not taken: the others wait
// for it beyond that, so that memory stays flat however long the input is.
const maxAhead = 4 * maxChunk

// Split returns a Source for each channel of src, which must come from this package (Open, NewWAV,
// NewFFmpeg, FromBuffer, FromFloat32, FromFloat64) and not have been read. Channel k yields the
// samples of channel k alone, scaled as Source describes but not averaged; a NaN or infinite sample in
// any channel is an error for every channel. A mono source is its own channel.
//
// The channels share src, which is decoded once: read them concurrently, one goroutine each, and
// Close a channel when done with it, as a channel that runs far ahead of another waits for it. src
// stays the caller's: close it once every channel is closed.
func Split(src Source) ([]Source, error) {
	s, ok := src.(interleaved)
	if !ok {
		return nil, fmt.Errorf("decode: %T cannot be split into channels", src)
	}
	c := s.channelCount()
	if c == 1 {
		return []Source{keepOpen{s}}, nil
	}
	d := &demux{src: s, queued: make([]queue, c), open: make([]bool, c)}
	d.cond.L = &d.mu
	out := make([]Source, c)
	for k := range out {
		d.open[k] = true
		out[k] = &channelSource{d: d, k: k, name: fmt.Sprintf("%s channel %d", s.Name(), k)}
	}
	return out, nil
}

// keepOpen is a mono source's channel: the source itself, which the channel's Close leaves open.
type keepOpen struct{ interleaved }

func (keepOpen) Close() error { return nil }

// demux deals the frames of one source out to its channels.
type demux struct {
	src interleaved

	mu      sync.Mutex
	cond    sync.Cond
	queued  []queue // per channel, samples decoded and not yet read
	open    []bool
	reading bool  // a channel is decoding the next frames, with mu released
	frames  int64 // frames dealt out, for error messages
	err     error // the end of the source (io.EOF) or its failure, after the queued samples
}

func (d *demux) read(k int, p []float64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if q := &d.queued[k]; q.len() > 0 {
			n := q.take(p)
			d.cond.Broadcast() // a channel may be waiting for this one to catch up
			return n, nil
		}
		if len(p) == 0 {
			return 0, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		if d.reading || d.waitFor(k) {
			d.cond.Wait()
			continue
		}
		d.reading = true
		d.mu.Unlock()
		samples, err := d.src.frames(maxChunk)
		d.mu.Lock()
		d.reading = false
		d.deal(samples, err)
		d.cond.Broadcast()
	}
}

// waitFor reports whether another open channel holds so many samples that channel k must wait.
func (d *demux) waitFor(k int) bool {
	for j, q := range d.queued {
		if j != k && d.open[j] && q.len() >= maxAhead {
			return true
		}
	}
	return false
}

// deal appends interleaved samples to the channels' queues, up to the first frame with a non-finite
// sample, and records the source's error, if any, or that one.
func (d *demux) deal(samples []float64, err error) {
	c := len(d.queued)
	frames := len(samples) / c
check:
	for i := range frames {
		for k, v := range samples[i*c : (i+1)*c] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				frames = i
				err = formatError(d.src.Name(), "channel %d, sample %d is %v", k, d.frames+int64(i), v)
				break check
			}
		}
	}
	for k := range d.queued {
		if !d.open[k] {
			continue
		}
		q := &d.queued[k]
		for i := range frames {
			q.buf = append(q.buf, samples[i*c+k])
		}
	}
	d.frames += int64(frames)
	if err != nil {
		d.err = err
	}
}

func (d *demux) close(k int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.open[k], d.queued[k] = false, queue{}
	d.cond.Broadcast()
}

// queue holds samples of one channel; its buffer is reused from the start once drained.
type queue struct {
	buf []float64
	off int // samples taken
}

func (q *queue) len() int { return len(q.buf) - q.off }

func (q *queue) take(p []float64) int {
	n := copy(p, q.buf[q.off:])
	if q.off += n; q.off == len(q.buf) {
		q.buf, q.off = q.buf[:0], 0
	}
	return n
}

// channelSource is one channel of a split source.
type channelSource struct {
	d    *demux
	k    int
	name string
}

func (c *channelSource) SampleRate() int               { return c.d.src.SampleRate() }
func (c *channelSource) Read(p []float64) (int, error) { return c.d.read(c.k, p) }

// Name is what errors call the channel: "NAME channel K".
func (c *channelSource) Name() string { return c.name }

// Close stops the channel from holding the others back; it does not close the shared source.
func (c *channelSource) Close() error {
	c.d.close(c.k)
	return nil
}
