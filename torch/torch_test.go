package torch_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		{in: "cuda:99", wantErr: "CUDA device(s)"},
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
	assert.Error(t, torch.SetThreads(0))
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
		assert.ErrorContains(t, err, "has no CUDA device")
		return
	}
	require.NoError(t, err)
	t.Logf("cuda:0: compute capability %d.%d", major, minor)
	assert.GreaterOrEqual(t, major, 3, "libtorch supports no older GPU")
}
