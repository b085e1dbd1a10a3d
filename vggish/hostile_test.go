package vggish_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/pth"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

// examples returns n examples of a smooth pattern starting at 0, 0.96, ... s.
func examples(n int) *preprocess.Examples {
	per := preprocess.ExampleFrames * preprocess.MelBins
	ex := &preprocess.Examples{Data: make([]float32, n*per), Starts: make([]float64, n)}
	for i := range ex.Data {
		ex.Data[i] = float32(math.Sin(float64(i) * 0.001))
	}
	for i := range ex.Starts {
		ex.Starts[i] = 0.96 * float64(i)
	}
	return ex
}

// A Model never returns a NaN or an infinity: a log-mel input that no audio gives (non-finite, or outside
// [log(0.01), log(MaxFloat64)]) fails naming the example; overflowing weights are TestOverflowingWeights.
func TestEmbedExamplesNeverReturnsNonFinite(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 2})
	require.NoError(t, err)
	defer m.Close()
	per := preprocess.ExampleFrames * preprocess.MelBins
	tests := []struct {
		name  string
		value float32
		at    int // index in Data
		err   string
	}{
		{"NaN", float32(math.NaN()), 2*per + 17, "vggish: example 2 (at 1.92 s): log-mel input value NaN: log-mel values of audio lie in [-4.62, 709.8]"},
		{"-Inf", float32(math.Inf(-1)), 3 * per, "vggish: example 3 (at 2.88 s): log-mel input value -Inf"},
		{"no audio's log-mel", 3e38, per + 5, "vggish: example 1 (at 0.96 s): log-mel input value 3e+38"},
		{"below log(0.01)", -5, per, "vggish: example 1 (at 0.96 s): log-mel input value -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := examples(4)
			ex.Data[tt.at] = tt.value
			e, err := m.EmbedExamples(context.Background(), ex)
			assert.Nil(t, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			t.Log(err)
		})
	}
	e, err := m.EmbedExamples(context.Background(), examples(4))
	require.NoError(t, err, "the model goes on")
	assert.Equal(t, 4, e.Rows())
}

// scaledWeights writes a copy of the weights file src to dst with the float32 tensor key multiplied by
// scale.
func scaledWeights(t *testing.T, src, dst, key string, scale float32) {
	t.Helper()
	f, err := pth.Open(src)
	require.NoError(t, err)
	defer f.Close()
	old := f.Tensors[key].Data
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	at := bytes.Index(b, old[:256])
	require.Positive(t, at, "tensor %s found in %s", key, src)
	for i := at; i < at+len(old); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:])) * scale
		binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
	}
	require.NoError(t, os.WriteFile(dst, b, 0o644))
}

// maxAbs is the largest magnitude of rows [from, to) of e.
func maxAbs(e *vggish.Embeddings, from, to int) float64 {
	m := 0.0
	for _, v := range e.Data[from*vggish.EmbeddingSize : to*vggish.EmbeddingSize] {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// Weights that overflow the network on loud clips only: the first such clip of a long input fails the
// input, named by its index among all the input's clips (it is in the second block of 64 examples) and
// its start. NaN weights are refused when the model loads, naming the tensor.
func TestOverflowingWeights(t *testing.T) {
	w := golden.Weights(t)
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	// 66 s of quiet noise, then 4 s so loud (float32 samples of 1e30) that the log-mel values are about
	// 20 times larger, and so, the network being nearly homogeneous, are the embeddings.
	rng := rand.New(rand.NewSource(1))
	x := make([]float32, 70*16000)
	for i := range x {
		a := 0.001
		if i >= 66*16000 {
			a = 1e30
		}
		x[i] = float32(a * (2*rng.Float64() - 1))
	}
	e, err := m.Embed(context.Background(), x, 16000)
	require.NoError(t, err)
	const firstLoud = 68 // starts at 65.28 s: its 0.975 s reach past 66 s
	quiet, loud := maxAbs(e, 0, firstLoud), maxAbs(e, firstLoud, e.Rows())
	require.Greater(t, loud, 10*quiet)
	t.Logf("largest embedding value %.3g over quiet clips, %.3g over loud ones", quiet, loud)

	// The last layer scaled so that quiet clips reach a quarter of float32's range, loud ones overflow it.
	scaled := filepath.Join(t.TempDir(), "scaled.pth")
	scaledWeights(t, w, scaled, "embeddings.4.weight", float32(math.MaxFloat32/(4*quiet)))
	ms, err := vggish.New(context.Background(), vggish.Options{WeightsPath: scaled, Device: "cpu"})
	require.NoError(t, err)
	defer ms.Close()
	_, err = ms.Embed(context.Background(), x[:66*16000], 16000)
	require.NoError(t, err, "quiet clips stay finite")
	_, err = ms.Embed(context.Background(), x, 16000)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("vggish samples: example %d (at 65.28 s): embedding value ", firstLoud))
	assert.Contains(t, err.Error(), "the network's arithmetic overflowed")
	t.Log(err)

	scaledWeights(t, w, scaled, "features.6.bias", float32(math.NaN()))
	_, err = vggish.New(context.Background(), vggish.Options{WeightsPath: scaled, Device: "cpu"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf(`pth %s: tensor "features.6.bias": element 0 is NaN`, scaled))
}
