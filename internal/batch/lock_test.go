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

// Shards of different counts split the inputs otherwise: while a job of one count writes a folder, a
// shard of another count is refused, naming that job's shards; shards of the same count are not.
func TestLockOutDirShardCounts(t *testing.T) {
	dir := t.TempDir()
	var held []*dirLock
	for _, s := range []Shard{{0, 2}, {1, 2}} {
		l, err := lockOutDir(dir, s)
		require.NoError(t, err, "the shards of one count run side by side")
		held = append(held, l)
	}
	for _, s := range []Shard{{0, 3}, {2, 3}, {5, 8}} {
		t.Run(s.String(), func(t *testing.T) {
			_, err := lockOutDir(dir, s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "is being written by another run (pid ")
			assert.Contains(t, err.Error(), "shard 0/2")
			assert.Contains(t, err.Error(), "shard 1/2")
		})
	}
	for _, l := range held {
		l.unlock()
	}
	l, err := lockOutDir(dir, Shard{0, 3})
	require.NoError(t, err, "released")
	_, err = lockOutDir(dir, Shard{1, 2})
	assert.ErrorContains(t, err, "shard 0/3", "and the other way round")
	l.unlock()
}
