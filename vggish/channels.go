package vggish

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/spec"
	"github.com/vggish-go/vggish/preprocess"
)

// Channels chooses how an input with several channels is embedded.
type Channels int

const (
	// Mix averages the channels to mono, as the reference does (the default): one stream of vectors.
	Mix Channels = iota
	// Each embeds every channel on its own: one stream of vectors per channel (see
	// Embeddings.Channels). The streams' clips are batched with all the others. An input of more than
	// 64 channels is a *decode.UnsupportedError: its channels are preprocessed at once.
	Each
)

var channelsNames = []string{Mix: spec.Mix, Each: spec.Each}

// String is the mode's name: mix or each.
func (c Channels) String() string {
	if c < 0 || int(c) >= len(channelsNames) {
		return fmt.Sprintf("Channels(%d)", int(c))
	}
	return channelsNames[c]
}

// ParseChannels reads a mode's name.
func ParseChannels(s string) (Channels, error) {
	for i, name := range channelsNames {
		if s == name {
			return Channels(i), nil
		}
	}
	return 0, fmt.Errorf("vggish: channels %q: want mix or each", s)
}

// Set makes *Channels a flag.Value.
func (c *Channels) Set(s string) error { return set(c, s, ParseChannels) }

// preprocessAll preprocesses each source and submits its examples, the sources concurrently (they are
// the channels of one input and share its decoder), and hands emit each block's embeddings (filled
// once its requests are answered) and requests, with the source's index: emit is called in order for a
// source, concurrently for several. The first failure stops the others. It returns each source's Info.
func (m *Model) preprocessAll(ctx context.Context, name string, srcs []decode.Source, emit func(k int, e *Embeddings, reqs []*request) error) ([]preprocess.Info, error) {
	infos := make([]preprocess.Info, len(srcs))
	// pctx stops the preprocessing; the requests keep ctx, as they outlive this call.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	one := func(k int) error {
		var err error
		submitted := 0
		infos[k], err = preprocess.Stream(pctx, srcs[k], m.opts.Preprocess, func(ex *preprocess.Examples) error {
			e, rs, err := m.submit(ctx, ex)
			if err != nil {
				var nf *badValueError
				if errors.As(err, &nf) {
					nf.example += submitted // number the source's examples, not the block's
				}
				return named(name, err)
			}
			submitted += ex.Len()
			return emit(k, e, rs)
		})
		return err
	}
	if len(srcs) == 1 {
		return infos, one(0)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error // the first failure, not the others' cancellation that follows it
	)
	for k, src := range srcs {
		wg.Go(func() {
			defer src.Close() // a channel that stops early must not hold the others back
			if err := one(k); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return infos, first
}
