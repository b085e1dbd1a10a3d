package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/vggish"
)

func TestTailAndChannelsFlags(t *testing.T) {
	wav := reftest.Corpus(t, 1, 16000, 1, 1.0)[0]
	none := filepath.Join(t.TempDir(), "w.pth") // never loaded: every case is refused before
	require.NoError(t, os.WriteFile(none, nil, 0o644))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"embed", "--weights", none, "--tail", "loop", wav}, `tail policy "loop": want drop, pad or repeat`},
		{[]string{"embed", "--weights", none, "--pad-tail", "--tail", "repeat", wav}, "--pad-tail and --tail repeat disagree"},
		{[]string{"embed", "--weights", none, "--channels", "both", wav}, `channels "both": want mix or each`},
		{[]string{"embed", "--weights", none, "--format", "npz", wav}, "npz needs an output"},
		{[]string{"logmel", "--tail", "zero", "--output", "x.npy", wav}, `tail policy "zero"`},
	} {
		code, _, stderr := runArgs(tt.args...)
		assert.Equal(t, 2, code, tt.args)
		assert.Contains(t, stderr, tt.want, tt.args)
	}
}

// `embed --channels each --tail repeat --output x.npz` on a 0.6 s stereo file: one looped clip per
// channel, (2, 1, 128) beside its timestamps, the model's numbers.
func TestEmbedChannelsTailNPZ(t *testing.T) {
	w := golden.Weights(t)
	wav := reftest.Corpus(t, 1, 22050, 2, 0.6)[0]
	out := filepath.Join(t.TempDir(), "x.npz")
	code, _, stderr := runArgs("embed", "--weights", w, "--channels", "each", "--tail", "repeat", "--output", out, wav)
	require.Equal(t, 0, code, stderr)

	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu", Channels: vggish.Each,
		Preprocess: preprocess.Options{Tail: preprocess.Repeat}})
	require.NoError(t, err)
	defer m.Close()
	want, err := m.EmbedFile(context.Background(), wav)
	require.NoError(t, err)
	require.Equal(t, 2, want.Channels)

	emb, shape, err := readNPZArray(out, "embedding")
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1, 128}, shape)
	assert.Equal(t, want.Data, emb)
	r, err := npz.Open(out)
	require.NoError(t, err)
	defer r.Close()
	var ts []float64
	require.NoError(t, r.Read("timestamps.npy", &ts))
	assert.Equal(t, []float64{0}, ts)
}
