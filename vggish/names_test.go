package vggish_test

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/vggish"
)

// Each option with names reads them (Parse, Set as a flag.Value) and writes them (String) alike, and
// a bad name is an error listing the good ones that leaves the value as it was.
func TestNames(t *testing.T) {
	var (
		variant   vggish.Variant
		precision vggish.Precision
		post      vggish.Postprocess
		channels  vggish.Channels
	)
	for _, c := range []struct {
		value   flag.Value
		names   []string
		bad     string
		wantErr string
	}{
		{&variant, []string{"towhee", "torchvggish"}, "vgg", `vggish: variant "vgg": want "towhee" or "torchvggish"`},
		{&precision, []string{"fp32", "bf16", "fp16", "tf32"}, "int8", `vggish: precision "int8": want fp32, bf16, fp16, tf32`},
		{&post, []string{"none", "pca", "pca-quantize"}, "quantize", `vggish: postprocess "quantize": want none, pca or pca-quantize`},
		{&channels, []string{"mix", "each"}, "left", `vggish: channels "left": want mix or each`},
	} {
		for _, name := range c.names {
			require.NoError(t, c.value.Set(name))
			assert.Equal(t, name, c.value.String())
		}
		last := c.value.String()
		assert.EqualError(t, c.value.Set(c.bad), c.wantErr)
		assert.Equal(t, last, c.value.String(), "a bad name changes nothing")
	}
	assert.Equal(t, "Postprocess(7)", vggish.Postprocess(7).String())
	p, err := vggish.ParsePrecision("bf16")
	require.NoError(t, err)
	assert.Equal(t, vggish.BF16, p)
	v, err := vggish.ParseVariant("torchvggish")
	require.NoError(t, err)
	assert.Equal(t, vggish.TorchVGGish, v)
	q, err := vggish.ParsePostprocess("pca")
	require.NoError(t, err)
	assert.Equal(t, vggish.PCA, q)
}
