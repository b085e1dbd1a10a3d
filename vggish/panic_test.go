package vggish

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/vggish-go/vggish/preprocess"
)

// A panic in the inference loop (here: a network without parameters) fails the requests of its
// batch with the stack, and the loop serves the next ones.
func TestPanicInForwardFailsTheBatch(t *testing.T) {
	m := &Model{opts: Options{BatchSize: 4}, device: gotch.CPU, net: &network{}}
	m.start()
	defer m.Close()
	ex := &preprocess.Examples{Data: make([]float32, 2*preprocess.ExampleFrames*preprocess.MelBins), Starts: []float64{0, 0.96}}
	for range 2 {
		_, err := m.EmbedExamples(context.Background(), ex)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "vggish: panic in the inference loop: runtime error: invalid memory address or nil pointer dereference")
		assert.Contains(t, err.Error(), "vggish.(*network).forward", "the stack")
	}
}
