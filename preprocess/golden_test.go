package preprocess_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/decode"
	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
)

// TestLogMelMatchesGoldens compares the examples of the committed WAV files (16 kHz mono, 22.05 kHz
// stereo, 8 kHz 8-bit) with the reference's, computed once by testdata/make_goldens.py: no Python
// needed. Tolerances as TestLogMelMatchesReference: 1e-4 at 16 kHz, 5e-4 resampled.
func TestLogMelMatchesGoldens(t *testing.T) {
	for _, name := range golden.Fixtures {
		t.Run(name, func(t *testing.T) {
			want, shape := golden.Read(t, name+".logmel.npy")
			src, err := decode.Open(golden.Path(name + ".wav"))
			require.NoError(t, err)
			defer src.Close()
			rate := src.SampleRate()
			got, _, err := preprocess.Read(context.Background(), src, preprocess.Options{})
			require.NoError(t, err)
			require.Equal(t, shape[0], got.Len(), "examples")
			require.Len(t, got.Data, len(want))
			tol := map[bool]float64{false: 1e-4, true: 5e-4}[rate != preprocess.SampleRate]
			d := maxAbsDiff(got.Data, want)
			t.Logf("%d Hz: max |go - golden| = %.3g (tolerance %g)", rate, d, tol)
			assert.LessOrEqual(t, d, tol)
		})
	}
}
