package stubs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommittedListsAreSorted(t *testing.T) {
	files, err := lists.ReadDir(".")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		version := strings.TrimSuffix(strings.TrimPrefix(f.Name(), "libtorch-"), ".txt")
		require.Equal(t, FileName(version), f.Name())
		names, ok := List(version)
		require.True(t, ok, f.Name())
		assert.IsIncreasing(t, names, f.Name())
	}
	_, ok := List("0.0.0")
	assert.False(t, ok, "no list for an unknown version")
}
