package vggish_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/cpu"

	"github.com/vggish-go/vggish/internal/golden"
	"github.com/vggish-go/vggish/preprocess"
	"github.com/vggish-go/vggish/torch"
	"github.com/vggish-go/vggish/vggish"
)

// kernelPath is a choice of kernels that the CPU's libraries make by themselves, forced through the
// environment variable they read when they load: OpenBLAS's core type (the linear layers and the
// PCA) or the most oneDNN may use of the instruction set (the convolutions, and bfloat16 products).
type kernelPath struct {
	env  []string
	have bool // the CPU runs it
}

func (p kernelPath) name() string {
	if len(p.env) == 0 {
		return "default"
	}
	return p.env[0]
}

var avx512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512CD

// kernelPaths are the paths an x86-64 CPU may take: every core type of Debian's OpenBLAS from the
// oldest to the newest with kernels of its own, and every oneDNN ISA level (DNNL_MAX_CPU_ISA is
// oneDNN 2's name, ONEDNN_MAX_CPU_ISA oneDNN 3's). A CPU runs those its instructions allow.
func kernelPaths() []kernelPath {
	blas := func(core string, have bool) kernelPath {
		return kernelPath{[]string{"OPENBLAS_CORETYPE=" + core}, have}
	}
	isa := func(level string, have bool) kernelPath {
		return kernelPath{[]string{"ONEDNN_MAX_CPU_ISA=" + level, "DNNL_MAX_CPU_ISA=" + level}, have}
	}
	x := cpu.X86
	return []kernelPath{
		{nil, true},
		blas("Prescott", true),
		blas("Nehalem", x.HasSSE42),
		blas("Sandybridge", x.HasAVX),
		blas("Haswell", x.HasAVX2 && x.HasFMA),
		blas("Zen", x.HasAVX2 && x.HasFMA),
		blas("SkylakeX", avx512),
		blas("Cooperlake", avx512 && x.HasAVX512BF16),
		isa("avx2", x.HasAVX2),
		isa("avx512_core", avx512),
		isa("avx512_core_bf16", avx512 && x.HasAVX512BF16),
		isa("avx512_core_amx", avx512 && x.HasAMXTile && x.HasAMXBF16),
	}
}

// invarianceChild marks the process that TestBatchInvariance runs on one kernel path.
const invarianceChild = "VGGISH_TEST_INVARIANCE_CHILD"

// A clip's embedding is the same to the bit whatever batch it runs in (its size, the clip's place in
// it, its neighbours), whatever the thread count, on every kernel path this CPU can take: each path
// is a subtest, run in a process of its own since the libraries read their switches when they load.
// Paths the CPU cannot run are skipped, saying so.
func TestBatchInvariance(t *testing.T) {
	if os.Getenv(invarianceChild) != "" {
		batchInvariance(t)
		return
	}
	for _, p := range kernelPaths() {
		t.Run(p.name(), func(t *testing.T) {
			if !p.have {
				t.Skipf("this CPU lacks the instructions of %s", p.name())
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBatchInvariance$", "-test.count=1", "-test.v")
			cmd.Env = append(slices.Clone(os.Environ()), append([]string{invarianceChild + "=1"}, p.env...)...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), "--- PASS: TestBatchInvariance", "%s", out)
		})
	}
}

// batchInvariance checks one kernel path, in this process.
func batchInvariance(t *testing.T) {
	for _, c := range []struct {
		precision vggish.Precision
		post      vggish.Postprocess
		n         int   // examples
		sizes     []int // batches of the last examples, checked against all of them at once
	}{
		{vggish.FP32, vggish.NoPostprocess, 37, []int{1, 2, 3, 5, 16, 17, 33}},
		{vggish.FP32, vggish.PCAQuantize, 37, []int{1, 3, 17}},
		{vggish.BF16, vggish.NoPostprocess, 37, []int{1, 2, 3, 5, 16, 17, 33}},
	} {
		t.Run(fmt.Sprintf("%s/postprocess=%d", c.precision, c.post), func(t *testing.T) {
			if c.precision == vggish.BF16 && os.Getenv("DNNL_MAX_CPU_ISA") == "avx2" {
				// libtorch sends bfloat16 convolutions to oneDNN by the CPU's flags, which the cap
				// does not change, and oneDNN then has no kernel: nothing runs (a CPU without
				// AVX-512 takes another path, which the cap cannot show).
				t.Skip("bf16 does not run with oneDNN capped below AVX-512 on an AVX-512 CPU")
			}
			if runs, _, _ := c.precision.Resolve(torch.CPU); runs != c.precision {
				t.Skipf("this CPU runs %s as %s (TestPrecisionOnCPU)", c.precision, runs)
			}
			// One model per case, loaded once (loading dominates the test's time): the thread count is
			// the process's, which the model's next pass follows.
			opts := vggish.Options{WeightsPath: golden.Weights(t), Device: "cpu", Precision: c.precision, Threads: 2}
			if c.post != vggish.NoPostprocess {
				opts.Postprocess, opts.PCAPath = c.post, golden.Path("pca.npz")
			}
			m, err := vggish.New(context.Background(), opts)
			require.NoError(t, err)
			defer m.Close()
			embed := func(threads int, ex *preprocess.Examples) *vggish.Embeddings {
				require.NoError(t, torch.SetThreads(threads))
				e, err := m.EmbedExamples(context.Background(), ex)
				require.NoError(t, err)
				return e
			}
			per := preprocess.ExampleFrames * preprocess.MelBins
			all := testExamples(c.n)
			whole := embed(2, all)
			same := func(i int, got []float32, how string) {
				t.Helper()
				require.Equal(t, whole.Row(i), got, "example %d %s", i, how)
			}
			for _, size := range c.sizes {
				part := &preprocess.Examples{Data: all.Data[(c.n-size)*per:], Starts: all.Starts[c.n-size:]}
				got := embed(2, part)
				for k := range size {
					same(c.n-size+k, got.Row(k), fmt.Sprintf("in a batch of %d", size))
				}
			}
			// Reversed: every example at another place, with other neighbours.
			rev := &preprocess.Examples{Data: make([]float32, 0, len(all.Data)), Starts: make([]float64, c.n)}
			for i := c.n - 1; i >= 0; i-- {
				rev.Data = append(rev.Data, all.Data[i*per:(i+1)*per]...)
			}
			got := embed(2, rev)
			for i := range c.n {
				same(i, got.Row(c.n-1-i), "reversed")
			}
			for _, threads := range []int{1, 3} {
				got := embed(threads, all)
				for i := range c.n {
					same(i, got.Row(i), fmt.Sprintf("on %d threads", threads))
				}
			}
		})
	}
}
