package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Without a CUDA runtime in the process the lookup fails cleanly (with one, it is the CUDA tests').
func TestComputeCapabilityWithoutCUDARuntime(t *testing.T) {
	if CUDAAvailable() {
		t.Skip("libtorch has CUDA here")
	}
	_, _, err := computeCapability(0)
	assert.EqualError(t, err, "no CUDA runtime is loaded to ask its compute capability")
}
