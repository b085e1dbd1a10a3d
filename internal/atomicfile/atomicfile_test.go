package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vggish-go/vggish/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.npy")
	require.NoError(t, atomicfile.Write(path, []byte("one"), 0o644))
	require.NoError(t, atomicfile.Write(path, []byte("two"), 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
	assert.Error(t, atomicfile.Write(filepath.Join(dir, "missing", "b"), nil, 0o644))
}

func TestTarget(t *testing.T) {
	for name, want := range map[string]string{
		".a.npy.123.tmp":         "a.npy",
		".a.b.jsonl.9.tmp":       "a.b.jsonl",
		"a.npy.123.tmp":          "",
		".a.npy":                 "",
		".x.tmp":                 "",
		".vggish-run.json.1.tmp": "vggish-run.json",
	} {
		assert.Equal(t, want, atomicfile.Target(name), name)
	}
}

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.npy")
	f, err := atomicfile.Create(path, 0o640)
	require.NoError(t, err)
	_, err = f.WriteString("streamed")
	require.NoError(t, err)
	assert.NoFileExists(t, path, "not before Commit")
	require.NoError(t, f.Commit())
	f.Abort() // after Commit: nothing to do
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "streamed", string(b))

	g, err := atomicfile.Create(path, 0o644)
	require.NoError(t, err)
	_, err = g.WriteString("half")
	require.NoError(t, err)
	g.Abort()
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "streamed", string(b), "an aborted write leaves the old file")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
}
