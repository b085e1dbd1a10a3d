package torch_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/vggish-go/vggish/internal/reftest"
	"github.com/vggish-go/vggish/torch"
)

func TestParseDevice(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    torch.Device
		wantErr string
	}{
		{in: "cpu", want: torch.CPU},
		{in: " CPU ", want: torch.CPU},
		{in: "gpu", wantErr: "want auto, cpu, cuda or cuda:N"},
		{in: "cuda:x", wantErr: "want cuda:N"},
		{in: "cuda:-1", wantErr: "want cuda:N"},
		{in: "cuda:99", wantErr: `device "cuda:99": libtorch`},
	} {
		got, err := torch.ParseDevice(c.in)
		if c.wantErr != "" {
			assert.ErrorContains(t, err, c.wantErr, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		assert.Equal(t, "cpu", got.String())
	}
	auto, err := torch.ParseDevice("auto")
	require.NoError(t, err)
	assert.Equal(t, torch.CUDAAvailable(), auto.IsCUDA())
	assert.Equal(t, "cuda:3", torch.CUDA(3).String())
}

func TestThreads(t *testing.T) {
	old := torch.Threads()
	defer torch.SetThreads(old)
	require.NoError(t, torch.SetThreads(2))
	assert.Equal(t, 2, torch.Threads())
	cpus, _ := torch.UsableCPUs()
	// Out of range, the count stays: a C int would have taken 1<<32+1 as 1.
	for _, n := range []int{0, -1, 8*cpus + 1, 1<<32 + 1} {
		assert.ErrorContains(t, torch.SetThreads(n), fmt.Sprintf("thread count %d: want 1 to %d", n, 8*cpus))
		assert.Equal(t, 2, torch.Threads())
	}
	assert.NotEmpty(t, torch.Version())
}

func TestUsableCPUs(t *testing.T) {
	n, source := torch.UsableCPUs()
	assert.Equal(t, runtime.GOMAXPROCS(0), n)
	assert.NotEmpty(t, source)
	t.Setenv("GOMAXPROCS", "1")
	_, source = torch.UsableCPUs()
	assert.Equal(t, "GOMAXPROCS=1", source)
}

func TestComputeCapability(t *testing.T) {
	_, _, err := torch.ComputeCapability(torch.CPU)
	assert.ErrorContains(t, err, "cpu has no compute capability")
	major, minor, err := torch.ComputeCapability(torch.CUDA(0))
	if !torch.CUDAAvailable() {
		var ce *torch.CUDAError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "cuda:0", ce.Device)
		return
	}
	require.NoError(t, err)
	t.Logf("cuda:0: compute capability %d.%d", major, minor)
	assert.GreaterOrEqual(t, major, 3, "libtorch supports no older GPU")
}

// A CUDA device that libtorch cannot give is a *CUDAError saying which: a CPU-only libtorch, or one
// with CUDA that does not see the device.
func TestCUDAError(t *testing.T) {
	_, err := torch.ParseDevice("cuda:99")
	var ce *torch.CUDAError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "cuda:99", ce.Device)
	assert.Equal(t, torch.Version(), ce.Version)
	assert.Equal(t, torch.CUDABuild(), ce.CUDABuild)
	assert.Equal(t, torch.DeviceCount(), ce.Devices)
	if !torch.CUDABuild() {
		assert.ErrorIs(t, err, torch.ErrCPUOnly)
		assert.NotErrorIs(t, err, torch.ErrNoCUDADevice)
		assert.ErrorContains(t, err, "is a CPU-only build")
		assert.ErrorContains(t, err, "go run github.com/vggish-go/vggish/torch/adapt")
		assert.False(t, torch.CUDAAvailable())
		_, err = torch.ParseDevice("cuda")
		assert.ErrorIs(t, err, torch.ErrCPUOnly)
	} else {
		assert.ErrorIs(t, err, torch.ErrNoCUDADevice)
		assert.ErrorContains(t, err, "(CUDA) sees")
	}
	// The two cases' messages, whichever this machine has.
	cpu := &torch.CUDAError{Device: "cuda", Version: "1.13.0"}
	assert.EqualError(t, cpu, `torch: device "cuda": libtorch 1.13.0 is a CPU-only build (no libtorch_cuda): use the CPU, or a CUDA libtorch (LIBTORCH=...) adapted by go run github.com/vggish-go/vggish/torch/adapt`)
	gpu := &torch.CUDAError{Device: "cuda:1", Version: "2.1.0", CUDABuild: true, Devices: 1}
	assert.EqualError(t, gpu, `torch: device "cuda:1": libtorch 2.1.0 (CUDA) sees 1 CUDA device(s)`)
	assert.ErrorIs(t, gpu, torch.ErrNoCUDADevice)
}

// make setup installs OpenBLAS: libtorch's products never run on the reference BLAS there (Debian 13's
// libtorch, built against the generic libblas.so.3, would otherwise; the network was 3x to 10x slower).
func TestBLAS(t *testing.T) {
	desc, reference := torch.BLAS()
	t.Logf("BLAS: %s", desc)
	assert.NotEmpty(t, desc)
	assert.False(t, reference, "libtorch runs on the reference BLAS (%s): apt install libopenblas0", desc)
}

// The cache of freed CPU tensor memory keeps a large freed block until trimmed.
func TestTrimCPUCache(t *testing.T) {
	if os.Getenv("VGGISH_CPU_ALLOCATOR") == "libtorch" {
		t.Skip("VGGISH_CPU_ALLOCATOR=libtorch: libtorch's own allocator, no cache")
	}
	torch.TrimCPUCache()
	before := reftest.RSSMB(t)
	x, err := ts.Empty([]int64{64 << 20}, gotch.Float, gotch.CPU) // 256 MB, filled in as it is mapped
	require.NoError(t, err)
	x.MustDrop()
	kept := reftest.RSSMB(t)
	assert.Greater(t, kept-before, 200.0, "the freed block is kept for reuse")
	torch.TrimCPUCache()
	assert.Less(t, reftest.RSSMB(t)-before, 20.0, "and given back")
}
