package batch

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One writer per output folder: the shards of a job side by side, nothing beside an unsharded run,
// and a refusal that names the holder.
func TestLockOutDir(t *testing.T) {
	dir := t.TempDir()
	pid := fmt.Sprintf("pid %d on ", os.Getpid())

	s0, err := lockOutDir(dir, Shard{0, 2})
	require.NoError(t, err)
	s1, err := lockOutDir(dir, Shard{1, 2})
	require.NoError(t, err, "the shards of a job run side by side")

	_, err = lockOutDir(dir, Shard{0, 2})
	require.Error(t, err, "one writer per shard")
	assert.Contains(t, err.Error(), "is being written by another run ("+pid)
	assert.Contains(t, err.Error(), "shard 0/2")
	assert.NotContains(t, err.Error(), "shard 1/2", "only the shard in the way")

	_, err = lockOutDir(dir, Shard{})
	require.Error(t, err, "no unsharded run beside shards")
	assert.Contains(t, err.Error(), "shard 0/2")
	assert.Contains(t, err.Error(), "shard 1/2")

	s0.unlock()
	s1.unlock()
	whole, err := lockOutDir(dir, Shard{})
	require.NoError(t, err, "released")
	for _, s := range []Shard{{}, {1, 4}} {
		_, err = lockOutDir(dir, s)
		require.Error(t, err, "nothing beside an unsharded run")
		assert.Contains(t, err.Error(), pid)
		assert.Contains(t, err.Error(), "started ")
	}
	whole.unlock()
	_, err = os.Stat(dir)
	require.NoError(t, err)
}
