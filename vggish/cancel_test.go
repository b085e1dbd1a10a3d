package vggish

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
)

// A forward pass whose callers have all gone, or whose Model closes, stops at its next chunk of clips:
// the next caller does not wait for a whole batch of abandoned work, nor Close for a long call. The
// order of events is asserted (the pass started, then was cancelled, then ended with the
// cancellation rather than a result), not a duration.
func TestCancelledBatchStops(t *testing.T) {
	m, err := New(context.Background(), Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 256})
	require.NoError(t, err)
	defer m.Close()
	started, ended := make(chan struct{}, 4), make(chan error, 4)
	testHookForward = func(start bool, err error) {
		if start {
			started <- struct{}{}
		} else {
			ended <- err
		}
	}
	defer func() { testHookForward = nil }()
	per := preprocess.ExampleFrames * preprocess.MelBins
	ex := &preprocess.Examples{Data: make([]float32, 256*per), Starts: make([]float64, 256)}

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := m.EmbedExamples(ctx, ex)
		errs <- err
	}()
	<-started
	cancel()
	assert.ErrorIs(t, <-ended, context.Canceled, "the pass stops, not finishes")
	require.ErrorIs(t, <-errs, context.Canceled)
	one := &preprocess.Examples{Data: make([]float32, per), Starts: []float64{0}}
	_, err = m.EmbedExamples(context.Background(), one)
	require.NoError(t, err, "the network serves the next caller")
	<-started
	require.NoError(t, <-ended)

	go func() {
		_, err := m.EmbedExamples(context.Background(), ex)
		errs <- err
	}()
	<-started
	require.NoError(t, m.Close())
	assert.ErrorIs(t, <-ended, context.Canceled, "Close stops the pass running now")
	require.ErrorIs(t, <-errs, ErrClosed)
}
