package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/pth"
)

// The formula here gives the tensors the Python script computed, to the bit.
func TestFormulaMatchesGoldens(t *testing.T) {
	meta := ReadMeta(t)
	tensors := Tensors()
	require.Len(t, meta.WeightsSHA256, len(tensors))
	for _, tt := range tensors {
		assert.Equal(t, meta.WeightsSHA256[tt.Key], SHA256(tt.Values()), tt.Key)
	}
	assert.Equal(t, meta.ExamplesSHA256, SHA256(Examples()), "examples")
}

// The weights file is a torch.save zip archive that internal/pth reads back as the formula's tensors.
func TestWeightsFile(t *testing.T) {
	path := Weights(t)
	f, err := pth.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var keys []string
	for _, tt := range Tensors() {
		keys = append(keys, tt.Key)
		got, ok := f.Tensors[tt.Key]
		require.True(t, ok, tt.Key)
		assert.Equal(t, pth.Float32, got.DType, tt.Key)
		assert.Equal(t, tt.Shape, got.Shape, tt.Key)
		if tt.Len() < 1<<20 { // the large ones are compared by TestFormulaMatchesGoldens's checksums
			v, err := got.Float32()
			require.NoError(t, err)
			assert.Equal(t, tt.Values(), v, tt.Key)
		}
	}
	assert.Equal(t, keys, f.Keys)
}

// A small state dict written and read back, byte for byte the values given.
func TestWritePth(t *testing.T) {
	tensors := []Tensor{{"a", []int64{2, 3}, 5, 1}, {"b.c", []int64{4}, 6, 0.5}}
	var buf bytes.Buffer
	require.NoError(t, writePth(&buf, tensors))
	path := filepath.Join(t.TempDir(), "small.pth")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	f, err := pth.Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, []string{"a", "b.c"}, f.Keys)
	for _, tt := range tensors {
		v, err := f.Tensors[tt.Key].Float32()
		require.NoError(t, err)
		assert.Equal(t, tt.Values(), v)
		assert.Equal(t, tt.Shape, f.Tensors[tt.Key].Shape)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
