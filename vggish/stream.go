package vggish

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/vggish-go/vggish/decode"
)

// EmbedSource embeds the audio of src: a source from package decode (a file, a stream, a channel of
// decode.Split) or the caller's own. It reads src as EmbedFile reads a file, a block at a time, and
// gives the same numbers. src stays the caller's: close it afterwards. With Options.Channels Each, src
// must be one of decode's sources, which decode.Split can split.
func (m *Model) EmbedSource(ctx context.Context, src decode.Source) (*Embeddings, error) {
	return m.embed(ctx, sourceName(src), func() (decode.Source, error) { return src, checkSource(src) }, false)
}

// EmbedBlocks embeds the audio of src as it is read, yielding each block of embeddings as soon as the
// network has run it: for a live stream or a long recording, vectors as they come, in memory that does
// not grow with the length of the audio. Read to the end, the blocks hold the rows of EmbedSource's
// result, in order and to the bit.
//
// Each block holds up to preprocess.BlockExamples consecutive rows (fewer with a long hop) with their
// Starts, and SampleRate; its Duration is zero, as the length of the audio is known only at its end.
// With Options.Channels Each, a block holds the same stretch of every channel, laid out as EmbedSource's
// result: block.Channel(c) is channel c's part of it.
//
// An error ends the sequence: it is yielded once, with a nil block. Stopping early (break) stops the
// reading. src stays the caller's: close it afterwards. The sequence reads src once: range over it
// once. While the sequence runs it holds one of the model's Workers; a loop body that takes long holds
// it as long, and the reading waits for the body (back-pressure: at most a few blocks are held).
func (m *Model) EmbedBlocks(ctx context.Context, src decode.Source) iter.Seq2[*Embeddings, error] {
	if ctx == nil {
		panic("vggish: nil Context")
	}
	return func(yield func(*Embeddings, error) bool) {
		if err := m.blocks(ctx, src, yield); err != nil {
			yield(nil, err)
		}
	}
}

// queuedBlocks is how many blocks per channel a stream's reading may run ahead of its consumer. Two
// keep the network busy while a block is yielded; the channels of one input cannot drift apart by a
// block (decode.Split holds them within a fraction of one), so this cannot deadlock them.
const queuedBlocks = 2

// part is one channel's block on its way through the network.
type part struct {
	e    *Embeddings
	reqs []*request
}

// blocks runs EmbedBlocks's sequence: a goroutine reads, preprocesses and submits src's blocks, and
// this one waits for each in order and yields it. It returns the error to yield, nil at the end or
// when yield asks to stop.
func (m *Model) blocks(ctx context.Context, src decode.Source, yield func(*Embeddings, error) bool) error {
	if err := m.ready(ctx); err != nil {
		return err
	}
	if err := checkSource(src); err != nil {
		return err
	}
	name := sourceName(src)
	srcs, err := m.split(name, src)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queues := make([]chan part, len(srcs))
	for k := range queues {
		queues[k] = make(chan part, queuedBlocks)
	}
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for _, q := range queues {
				close(q)
			}
		}()
		release, err := m.acquire(ctx)
		if err != nil {
			readErr = err
			return
		}
		defer release()
		_, readErr = m.preprocessAll(ctx, name, srcs, func(k int, e *Embeddings, reqs []*request) error {
			select {
			case queues[k] <- part{e, reqs}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	// stop ends the reading and waits for it, so that nothing reads src after the sequence.
	stop := func() {
		cancel()
		for _, q := range queues {
			for range q {
			}
		}
		<-done
	}
	rows := 0 // rows yielded per channel, to number a bad value's example in the whole stream
	for {
		b := &Embeddings{SampleRate: src.SampleRate()}
		if m.opts.Channels == Each {
			b.Channels = len(srcs)
		}
		ended := false
		for _, q := range queues {
			p, ok := <-q
			if !ok {
				ended = true
				break
			}
			err := m.wait(p.reqs)
			if err == nil {
				err = checkFinite(p.e.Data, p.e.Starts, "embedding")
			}
			if err != nil {
				var nf *badValueError
				if errors.As(err, &nf) {
					nf.example += rows // number the channel's examples, not the block's
				}
				stop()
				return named(name, err)
			}
			b.Data = append(b.Data, p.e.Data...)
			b.Starts = append(b.Starts, p.e.Starts...)
		}
		if ended {
			stop()
			if readErr == nil && b.Rows() > 0 {
				readErr = fmt.Errorf("vggish %s: the channels ended apart", name) // decode.Split's channels are equally long
			}
			return readErr
		}
		rows += b.Rows() / max(1, b.Channels)
		if !yield(b, nil) {
			stop()
			return nil
		}
	}
}

// sourceName is a source's name for errors: its Name() when it has one, as package preprocess does.
func sourceName(src decode.Source) string {
	if n, ok := src.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "audio"
}

// checkSource refuses a nil Source with an error, as the other calls refuse nil input.
func checkSource(src decode.Source) error {
	if src == nil {
		return errors.New("vggish: nil Source")
	}
	return nil
}
