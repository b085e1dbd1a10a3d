package vggish_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/internal/npyfile"
	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
	"github.com/vggish-go/vggish/weights"
)

// TestMain removes the weights files the tests wrote. The tests that compare with the Python reference
// live are skipped without it (VGGISH_SKIP_REFERENCE=1); the others, the goldens' among them, run
// with the formula weights of internal/golden. The examples read their weights from VGGISH_WEIGHTS, as
// a program would: unless it is set, it names the formula weights here.
func TestMain(m *testing.M) {
	if os.Getenv("VGGISH_WEIGHTS") == "" {
		p, err := golden.WeightsPath()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("VGGISH_WEIGHTS", p)
	}
	reftest.Main(m)
}

// refCase is a configuration run on the fixtures by the reference and by vggish-go, with the same
// seeded He-initialised weights.
type refCase struct {
	format  string
	variant vggish.Variant
	post    vggish.Postprocess
	pca     string
	refArgs []string
}

func (c refCase) name() string {
	return fmt.Sprintf("%s_%s_post%d_%s", c.format, c.variant, c.post, c.pca)
}

// options are vggish-go's options for c.
func (c refCase) options(t *testing.T, device string, p vggish.Precision) vggish.Options {
	opts := vggish.Options{WeightsPath: reftest.Weights(t, c.format), Variant: c.variant, Postprocess: c.post, Device: device, Precision: p}
	if c.pca != "" {
		opts.PCAPath = reftest.PCAParams(t, c.pca)
	}
	return opts
}

var (
	referenceMu   sync.Mutex
	referenceDirs = map[string]string{}
)

// reference runs the reference's embed on the fixtures for c, once per test binary, and returns its
// output folder.
func (c refCase) reference(t *testing.T) string {
	referenceMu.Lock()
	defer referenceMu.Unlock()
	if dir, ok := referenceDirs[c.name()]; ok {
		return dir
	}
	manifest, _ := reftest.Fixtures(t)
	w := reftest.Weights(t, c.format)
	args := []string{"embed", "--weights", w, "--variant", string(c.variant), "--manifest", manifest}
	if c.pca != "" {
		args = append(args, append([]string{"--pca", reftest.PCAParams(t, c.pca)}, c.refArgs...)...)
	}
	dir := filepath.Join(reftest.WorkDir(t), "embed-"+c.name())
	reftest.Run(t, "reference.py", append(args, "--out", dir)...)
	referenceDirs[c.name()] = dir
	return dir
}

// embedFixtures embeds every fixture with vggish-go at opts and returns its rows beside the
// reference's, all fixtures' rows one after another.
func (c refCase) embedFixtures(t *testing.T, opts vggish.Options) (got, want []float32) {
	_, fx := reftest.Fixtures(t)
	dir := c.reference(t)
	m, err := vggish.New(context.Background(), opts)
	require.NoError(t, err)
	defer m.Close()
	for _, f := range fx {
		w, shape, err := npyfile.Read(filepath.Join(dir, f.Stem()+".npy"))
		require.NoError(t, err, f.Name)
		e, err := m.EmbedFile(context.Background(), f.Path)
		require.NoError(t, err, f.Name)
		require.Equal(t, shape[0], e.Rows(), f.Name)
		got, want = append(got, e.Data...), append(want, w...)
	}
	require.NotEmpty(t, got)
	return got, want
}

// TestEmbeddingsMatchReference runs the reference network and vggish-go on the synthesised fixtures
// with the same seeded He-initialised weights, in both torch formats, both variants, and with PCA.
// Tolerance: max |diff| <= 1e-4 × max |reference|.
func TestEmbeddingsMatchReference(t *testing.T) {
	for _, c := range []refCase{
		{format: "zip", variant: vggish.Towhee},
		{format: "legacy", variant: vggish.TorchVGGish},
		{format: "legacy", variant: vggish.Towhee, post: vggish.PCA, pca: "pth", refArgs: []string{"--no-quantize"}},
		{format: "zip", variant: vggish.Towhee, post: vggish.PCAQuantize, pca: "npz"},
	} {
		t.Run(c.name(), func(t *testing.T) {
			got, want := c.embedFixtures(t, c.options(t, "cpu", vggish.FP32))
			var maxDiff, maxRef float64
			differing := 0
			for i := range want {
				d := math.Abs(float64(got[i]) - float64(want[i]))
				maxDiff, maxRef = math.Max(maxDiff, d), math.Max(maxRef, math.Abs(float64(want[i])))
				if d > 0 {
					differing++
				}
			}
			rows := len(want) / vggish.EmbeddingSize
			if c.post == vggish.PCAQuantize {
				// Quantised values are whole numbers: a float32 rounding difference before round()
				// can move a value by one level, rarely.
				t.Logf("%d rows: %d of %d quantised values differ, by at most %g", rows, differing, len(want), maxDiff)
				assert.LessOrEqual(t, maxDiff, 1.0)
				assert.LessOrEqual(t, float64(differing), 0.001*float64(len(want)))
				return
			}
			t.Logf("%d rows: max |go - reference| = %.3g, max |reference| = %.3g, ratio %.2g (tolerance 1e-4)", rows, maxDiff, maxRef, maxDiff/maxRef)
			assert.LessOrEqual(t, maxDiff, 1e-4*maxRef)
		})
	}
}

// The TensorFlow release's PCA parameters as numpy may save them: a transposed view (Fortran order),
// float32, means of shape (128,). Each gives the same bits as the goldens' C-order float64 file.
func TestPCAInNumpysLayouts(t *testing.T) {
	reftest.Require(t)
	dir := t.TempDir()
	require.NoError(t, exec.Command(reftest.Interpreter(), "-c", `import sys,numpy as np
p=np.load(sys.argv[1]); v, m = p["pca_eigen_vectors"], p["pca_means"]
np.savez(sys.argv[2]+"/fortran.npz", pca_eigen_vectors=np.asfortranarray(v), pca_means=m)
np.savez(sys.argv[2]+"/float32.npz", pca_eigen_vectors=v.astype(np.float32), pca_means=m.astype(np.float32).ravel())
np.savez(sys.argv[2]+"/fortran32.npz", pca_eigen_vectors=np.asfortranarray(v.astype(np.float32)), pca_means=m)`,
		golden.Path("pca.npz"), dir).Run())
	ex := goldenExamples()
	ex.Data, ex.Starts = ex.Data[:16*preprocess.ExampleFrames*preprocess.MelBins], ex.Starts[:16]
	embed := func(pca string) []float32 {
		m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu",
			Postprocess: vggish.PCA, PCAPath: pca})
		require.NoError(t, err, pca)
		defer m.Close()
		e, err := m.EmbedExamples(context.Background(), ex)
		require.NoError(t, err, pca)
		return e.Data
	}
	want := embed(golden.Path("pca.npz"))
	for _, name := range []string{"fortran", "float32", "fortran32"} {
		assert.Equal(t, want, embed(filepath.Join(dir, name+".npz")), name)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	w := golden.Weights(t)
	other := filepath.Join(t.TempDir(), "other.pth")
	require.NoError(t, golden.Write(other, []golden.Tensor{{Key: "fc.weight", Shape: []int64{2, 2}, Scale: 1}}))
	for _, c := range []struct {
		name string
		opts vggish.Options
		want string
	}{
		{"variant", vggish.Options{WeightsPath: w, Variant: "vgg16"}, `variant "vgg16"`},
		{"device", vggish.Options{WeightsPath: w, Device: "tpu"}, `device "tpu"`},
		{"missing weights", vggish.Options{WeightsPath: "/nonexistent.pth"}, "/nonexistent.pth"},
		{"not weights", vggish.Options{WeightsPath: other}, `not a VGGish state dict: unexpected key "fc.weight"; missing key "embeddings.0.bias"`},
		{"not a torch file", vggish.Options{WeightsPath: golden.Path("pca.npz")}, "not a torch.save file"},
		{"pca missing", vggish.Options{WeightsPath: w, Postprocess: vggish.PCA, PCAPath: w}, `missing key "pca_eigen_vectors"`},
		{"precision", vggish.Options{WeightsPath: w, Precision: "fp8"}, `precision "fp8": want fp32, bf16, fp16, tf32`},
		{"fp16 on the CPU", vggish.Options{WeightsPath: w, Device: "cpu", Precision: vggish.FP16}, "fp16 runs on CUDA only"},
		{"queue delay", vggish.Options{WeightsPath: w, Device: "cpu", MaxQueueDelay: -time.Second}, "vggish: max queue delay -1s"},
		// Sizes that would have exhausted memory in New, or been cut to a C int by libtorch.
		{"batch size", vggish.Options{WeightsPath: w, Device: "cpu", BatchSize: 1 << 40}, "vggish: batch size 1099511627776: want 1 to 4096"},
		{"threads", vggish.Options{WeightsPath: w, Device: "cpu", Threads: 1<<32 + 1}, "vggish: threads 4294967297: want 1 to"},
		{"workers", vggish.Options{WeightsPath: w, Device: "cpu", Workers: 1 << 20}, "vggish: workers 1048576: want 1 to 1024"},
		{"negative workers", vggish.Options{WeightsPath: w, Device: "cpu", Threads: 3, Workers: -1}, "vggish: workers -1"},
		{"weights after threads", vggish.Options{WeightsPath: other, Threads: 3}, "not a VGGish state dict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := torch.Threads()
			m, err := vggish.New(context.Background(), c.opts)
			if err == nil {
				m.Close()
			}
			assert.ErrorContains(t, err, c.want)
			assert.Equal(t, before, torch.Threads(), "a failed New left libtorch's thread count changed")
		})
	}
}

// Concurrent callers get their own rows while the loop batches them together.
func TestConcurrentCallers(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", BatchSize: 5})
	require.NoError(t, err)
	defer m.Close()
	signal := func(f float64) []float32 {
		x := make([]float32, 16000*3)
		for i := range x {
			x[i] = float32(0.5 * math.Sin(2*math.Pi*f*float64(i)/16000))
		}
		return x
	}
	alone := map[int][]float32{}
	for k := 0; k < 4; k++ {
		e, err := m.Embed(context.Background(), signal(200+float64(k)*300), 16000)
		require.NoError(t, err)
		alone[k] = e.Data
	}
	var wg sync.WaitGroup
	for k := 0; k < 4; k++ {
		for rep := 0; rep < 3; rep++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e, err := m.Embed(context.Background(), signal(200+float64(k)*300), 16000)
				if assert.NoError(t, err) {
					assert.InDeltaSlice(t, toF64(alone[k]), toF64(e.Data), 1e-5, "caller %d", k)
				}
			}()
		}
	}
	wg.Wait()
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func TestClosedModel(t *testing.T) {
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu"})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
	_, err = m.Embed(context.Background(), make([]float32, 16000), 16000)
	assert.ErrorIs(t, err, vggish.ErrClosed)
}

func TestPooling(t *testing.T) {
	e := &vggish.Embeddings{Data: make([]float32, 2*vggish.EmbeddingSize), Starts: []float64{0, 0.96}}
	e.Data[0], e.Data[vggish.EmbeddingSize] = 1, 3
	e.Data[1], e.Data[vggish.EmbeddingSize+1] = -2, -4
	assert.Equal(t, float32(2), e.Mean()[0])
	assert.Equal(t, float32(-3), e.Mean()[1])
	assert.Equal(t, float32(3), e.Max()[0])
	assert.Equal(t, float32(-2), e.Max()[1])
	assert.Nil(t, (&vggish.Embeddings{}).Mean())
	_, err := e.Uint8()
	assert.ErrorContains(t, err, "not quantised")
	assert.Equal(t, "[1, -2, ...] shape=(2, 128)", e.String())
}

// testExamples are n log-mel examples of deterministic pseudo-random values.
func testExamples(n int) *preprocess.Examples {
	per := preprocess.ExampleFrames * preprocess.MelBins
	ex := &preprocess.Examples{Data: make([]float32, n*per), Starts: make([]float64, n)}
	for i := range ex.Data {
		ex.Data[i] = float32(math.Sin(float64(i)*0.001) + math.Cos(float64(i%7919)*0.37))
	}
	return ex
}

// Options() has every default filled in.
func TestOptionsDefaults(t *testing.T) {
	w := golden.Weights(t)
	m, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu"})
	require.NoError(t, err)
	defer m.Close()
	cpus, _ := torch.UsableCPUs()
	assert.Equal(t, vggish.Options{
		WeightsPath: w, Device: "cpu", Variant: vggish.Towhee, BatchSize: vggish.DefaultBatchSize, Threads: cpus, Workers: cpus,
		Preprocess: preprocess.Options{Hop: 0.96, Tail: preprocess.Drop, Device: torch.CPU},
		Precision:  vggish.FP32, Channels: vggish.Mix,
	}, m.Options())

	pca, err := vggish.New(context.Background(), vggish.Options{WeightsPath: w, Device: "cpu", Postprocess: vggish.PCA, PCAPath: golden.Path("pca.npz")})
	require.NoError(t, err)
	defer pca.Close()
	assert.Equal(t, golden.Path("pca.npz"), pca.Options().PCAPath)
}

// New downloads the published weights when no WeightsPath is given, reporting progress only to
// Options.Progress, and a failed download says so with a *weights.DownloadError that names no flag.
func TestNewDownloadsQuietly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the weights"))
	}))
	defer srv.Close()
	t.Setenv(weights.EnvBaseURL, srv.URL)
	t.Setenv(weights.EnvCache, t.TempDir())
	for _, progress := range []bool{false, true} {
		var buf bytes.Buffer
		opts := vggish.Options{Device: "cpu"}
		if progress {
			opts.Progress = &buf
		}
		stderr := captureStderr(t, func() {
			_, err := vggish.New(context.Background(), opts)
			var de *weights.DownloadError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, weights.Model, de.File)
			assert.NotContains(t, err.Error(), "--")
		})
		assert.Empty(t, stderr, "the package prints nothing")
		if progress {
			assert.Contains(t, buf.String(), "downloading "+srv.URL+"/"+weights.Model.Name)
		}
	}
}

// captureStderr returns what fn writes to os.Stderr.
func captureStderr(t *testing.T, fn func()) string {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = saved }()
	fn()
	require.NoError(t, w.Close())
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
