package vggish_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/vggish"
)

// A stream that cannot seek (a pipe, standard input) gives the numbers of the file it carries.
func TestEmbedReader(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: reftest.Weights(t, "zip"), Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	wav := reftest.Corpus(t, 1, 22050, 2, 2.5)[0]
	want, err := m.EmbedFile(context.Background(), wav)
	require.NoError(t, err)
	f, err := os.Open(wav)
	require.NoError(t, err)
	defer f.Close()
	got, err := m.EmbedReader(context.Background(), struct{ io.Reader }{f}, "stdin")
	require.NoError(t, err)
	assert.Equal(t, want.Data, got.Data)
	assert.Equal(t, want.Starts, got.Starts)
	assert.Equal(t, want.Duration, got.Duration)
}
