package vggish_test

import (
	"context"
	"math"
	"testing"

	"github.com/go-audio/audio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// A nil context is a program's bug: every call that takes one panics at once with the same message,
// as the standard library's do, before any work or download.
func TestNilContextPanics(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	var nilCtx context.Context
	samples := make([]float32, 16000)
	for name, call := range map[string]func(){
		"New":           func() { vggish.New(nilCtx, vggish.Options{}) },
		"Embed":         func() { m.Embed(nilCtx, samples, 16000) },
		"EmbedFile":     func() { m.EmbedFile(nilCtx, "missing.wav") },
		"EmbedReader":   func() { m.EmbedReader(nilCtx, nil, "r") },
		"EmbedSource":   func() { m.EmbedSource(nilCtx, decode.FromFloat32(samples, 16000)) },
		"EmbedBlocks":   func() { m.EmbedBlocks(nilCtx, decode.FromFloat32(samples, 16000)) },
		"EmbedExamples": func() { m.EmbedExamples(nilCtx, &preprocess.Examples{}) },
	} {
		assert.PanicsWithValue(t, "vggish: nil Context", call, name)
	}
}

// Nil input is an error naming it, never a panic: the reader's (copied on a goroutine of its own) could
// not even be recovered.
func TestNilInputFails(t *testing.T) {
	m, err := vggish.New(t.Context(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"EmbedReader", func() error { _, err := m.EmbedReader(ctx, nil, "upload"); return err }, "nil reader"},
		{"EmbedSource", func() error { _, err := m.EmbedSource(ctx, nil); return err }, "vggish: nil Source"},
		{"EmbedBlocks", func() error {
			for _, err := range m.EmbedBlocks(ctx, nil) {
				return err
			}
			return nil
		}, "vggish: nil Source"},
		{"EmbedExamples", func() error { _, err := m.EmbedExamples(ctx, nil); return err }, "vggish: nil Examples"},
		{"EmbedBuffer", func() error { _, err := m.EmbedBuffer(ctx, nil); return err }, "nil audio buffer"},
		{"EmbedBuffer, a nil pointer", func() error { _, err := m.EmbedBuffer(ctx, (*audio.Float32Buffer)(nil)); return err }, "nil audio buffer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.call() })
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// New refuses options out of their range, rather than running something else (PCA for an unknown
// Postprocess) or failing every later call (a hop out of range).
func TestNewRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opts vggish.Options
		want string
	}{
		{"Postprocess 7", vggish.Options{Postprocess: 7}, "vggish: Postprocess(7): want NoPostprocess, PCA or PCAQuantize"},
		{"Postprocess -1", vggish.Options{Postprocess: -1}, "vggish: Postprocess(-1)"},
		{"a negative hop", vggish.Options{Preprocess: preprocess.Options{Hop: -1}}, "vggish: example hop -1 s"},
		{"a NaN hop", vggish.Options{Preprocess: preprocess.Options{Hop: math.NaN()}}, "vggish: example hop NaN s"},
		{"Tail 9", vggish.Options{Preprocess: preprocess.Options{Tail: 9}}, "vggish: tail policy Tail(9): want Drop, Pad or Repeat"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.WeightsPath, c.opts.Device = golden.Weights(t), "cpu"
			m, err := vggish.New(t.Context(), c.opts)
			if err == nil {
				m.Close()
			}
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// A Model declared rather than made by New fails every call with an error: it never blocks.
func TestZeroModelFails(t *testing.T) {
	var m vggish.Model
	ctx := context.Background()
	want := "vggish: the Model was not made by New"
	samples := make([]float32, 16000)
	_, err := m.Embed(ctx, samples, 16000)
	assert.EqualError(t, err, want)
	_, err = m.EmbedFile(ctx, "dog.wav")
	assert.EqualError(t, err, want)
	_, err = m.EmbedSource(ctx, decode.FromFloat32(samples, 16000))
	assert.EqualError(t, err, want)
	_, err = m.EmbedExamples(ctx, &preprocess.Examples{})
	assert.EqualError(t, err, want)
	n := 0
	for b, err := range m.EmbedBlocks(ctx, decode.FromFloat32(samples, 16000)) {
		assert.Nil(t, b)
		assert.EqualError(t, err, want)
		n++
	}
	assert.Equal(t, 1, n, "the error is yielded once")
	assert.EqualError(t, m.Close(), want)
}

// Close may be called twice (a deferred Close after an explicit one): the second does nothing. Every
// call after Close returns ErrClosed.
func TestCloseTwice(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	assert.NoError(t, m.Close())
	_, err = m.Embed(context.Background(), make([]float32, 16000), 16000)
	assert.ErrorIs(t, err, vggish.ErrClosed)
	n := 0
	for _, err := range m.EmbedBlocks(context.Background(), decode.FromFloat32(make([]float32, 16000), 16000)) {
		assert.ErrorIs(t, err, vggish.ErrClosed)
		n++
	}
	assert.Equal(t, 1, n, "the error is yielded once")
}

// Threads is libtorch's, for the whole process: every Model reports the count in force, whichever
// Model (or torch.SetThreads) set it last.
func TestThreadsAreProcessWide(t *testing.T) {
	old := torch.Threads()
	defer torch.SetThreads(old)
	a, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Threads: 1})
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, 1, a.Options().Threads)
	b, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Threads: 2})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, 2, torch.Threads())
	assert.Equal(t, 2, a.Options().Threads, "a's options report the count in force, not the one it was made with")
	assert.Equal(t, 2, b.Options().Threads)
}

// A CUDA device that this libtorch cannot give fails New with torch's typed error.
func TestNewCUDAError(t *testing.T) {
	_, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cuda:99"})
	var ce *torch.CUDAError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "cuda:99", ce.Device)
	if !torch.CUDABuild() {
		assert.ErrorIs(t, err, torch.ErrCPUOnly)
	} else {
		assert.ErrorIs(t, err, torch.ErrNoCUDADevice)
	}
}
