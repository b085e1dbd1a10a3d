package batch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/batch"
	"github.com/vggish-go/vggish/internal/batch/batchtest"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/vggish"
)

func TestMain(m *testing.M) { reftest.Main(m) }

// A run over the reference's fixtures (every rate, sample format and length class), FLAC, MP3 and
// Ogg conversions and three corrupt files, with seeded full-size weights: every good file's output
// is byte for byte the output of a run on that file alone, the corrupt ones are listed, and a rerun
// skips everything that is done.
func TestEndToEnd(t *testing.T) {
	c := batchtest.Make(t, filepath.Join(t.TempDir(), "corpus"), 0)
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: reftest.Weights(t, "zip"), Device: "cpu", BatchSize: 8})
	require.NoError(t, err)
	defer m.Close()
	inputs, err := batch.Expand(context.Background(), []string{c.Root}, nil, nil)
	require.NoError(t, err)
	require.Len(t, inputs, len(c.Good)+len(c.Corrupt))
	rec := &batch.Record{Settings: batch.Settings{WeightsSHA256: "seeded", Variant: "towhee", Postprocess: "none", Hop: 0.96}}

	out := t.TempDir()
	var log bytes.Buffer
	sum, err := batch.Run(context.Background(), m, inputs, batch.Options{OutDir: out, Workers: 4, Record: rec, Progress: &log})
	require.NoError(t, err)
	t.Logf("%d files (%d corrupt): %d clips in %s, %.1f clips/s", sum.Inputs, len(c.Corrupt), sum.Clips, sum.Elapsed, float64(sum.Clips)/sum.Elapsed.Seconds())
	assert.Equal(t, len(c.Good), sum.Embedded)
	var failed []string
	for _, f := range sum.Failures {
		failed = append(failed, f.Path)
		assert.Contains(t, f.Error, f.Path, "the reason names the file")
		assert.Equal(t, batch.KindFormat, f.Kind, f.Error)
	}
	var corrupt []string
	for _, rel := range c.Corrupt {
		corrupt = append(corrupt, filepath.Join(c.Root, rel))
	}
	assert.ElementsMatch(t, corrupt, failed)
	assert.ElementsMatch(t, corrupt, errorList(t, filepath.Join(out, batch.ErrorsName(batch.Shard{}))))
	assert.Contains(t, log.String(), "shorter than one clip", "short fixtures are warned about")

	// libtorch computes a batch of one example (a matrix-vector product in the linear layers) with
	// a different float32 rounding than a larger batch, in which each row is independent of the
	// others: a file of one clip, alone in its single-file run, may differ in the last bits from the
	// same clip batched with other files' clips. Files of two clips or more are batched whole, in
	// batches of two or more either way, and must match bit for bit.
	identical, maxRel := 0, 0.0
	for _, in := range inputs {
		if slices.Contains(failed, in.Path) {
			assert.NoFileExists(t, npyOf(out, in))
			continue
		}
		single := filepath.Join(t.TempDir(), "single.npy")
		_, err := batch.Run(context.Background(), m, []batch.Input{in}, batch.Options{Output: single})
		require.NoError(t, err)
		want, wantShape, err := npyfile.Read(single)
		require.NoError(t, err)
		got, shape, err := npyfile.Read(npyOf(out, in))
		require.NoError(t, err, in.Rel)
		require.Equal(t, wantShape, shape, in.Rel)
		if slices.Equal(want, got) {
			identical++
			continue
		}
		require.Equal(t, 1, shape[0], "%s: a file of %d clips differs from its single-file run", in.Rel, shape[0])
		rel := maxRelDiff(want, got)
		maxRel = max(maxRel, rel)
		assert.LessOrEqual(t, rel, 1e-6, in.Rel)
	}
	t.Logf("%d of %d outputs identical to the single-file run; one-clip files differ by at most %.2g relative to their largest value", identical, len(c.Good), maxRel)
	assertNoTemps(t, out)

	sum, err = batch.Run(context.Background(), m, inputs, batch.Options{OutDir: out, Workers: 4, Record: rec})
	require.NoError(t, err)
	assert.Equal(t, []int{len(c.Good), 0, len(c.Corrupt)}, []int{sum.Skipped, sum.Embedded, len(sum.Failures)})
}

// maxRelDiff is max |a - b| / max |a|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		m = max(m, math.Abs(float64(a[i])))
	}
	return d / m
}

func npyOf(out string, in batch.Input) string {
	return filepath.Join(out, filepath.FromSlash(strings.TrimSuffix(in.Rel, path.Ext(in.Rel))+".npy"))
}

// errorList reads the paths of a failure list.
func errorList(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fail batch.Failure
		require.NoError(t, json.Unmarshal(sc.Bytes(), &fail))
		require.NotEmpty(t, fail.Error)
		paths = append(paths, fail.Path)
	}
	require.NoError(t, sc.Err())
	return paths
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	}))
}
