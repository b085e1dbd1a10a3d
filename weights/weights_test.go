package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// payload returns n bytes of test content and a hub-style File named after
// its sha256.
func payload(n int) ([]byte, File) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	sum := sha256.Sum256(b)
	return b, File{Name: "x-" + hex.EncodeToString(sum[:4]) + ".pth"}
}

func TestSHA256Prefix(t *testing.T) {
	for name, want := range map[string]string{
		Model.Name:            "10086976",
		PCA.Name:              "970ea276",
		"x-abc.tar.gz":        "abc",
		"my-model-beef.pth":   "beef", // "-model." is not hex: torch.hub takes the first match
		"plain.pth":           "",
		"x-.pth":              "",
		"x-ABCD.pth":          "", // torch.hub hashes are lower case
		"vggish-10086976":     "",
		"vggish-1008z976.pth": "",
	} {
		assert.Equal(t, want, File{Name: name}.SHA256Prefix(), name)
	}
}

func TestVerify(t *testing.T) {
	content, f := payload(1000)
	dir := t.TempDir()
	path := filepath.Join(dir, f.Name)
	require.NoError(t, os.WriteFile(path, content, 0o644))
	sum := sha256.Sum256(content)

	got, err := SHA256(path)
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(sum[:]), got)
	fifo := filepath.Join(dir, "fifo-"+f.SHA256Prefix()+".pth")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	for _, tc := range []struct {
		name, path string
		file       File
		errContain string
		mismatch   bool
	}{
		{name: "good", path: path, file: f},
		{name: "good full hash", path: path, file: File{Name: "y-" + hex.EncodeToString(sum[:]) + ".bin"}},
		{name: "wrong hash", path: path, file: File{Name: "x-00000000.pth"}, errContain: path, mismatch: true},
		{name: "no hash in name", path: path, file: File{Name: "x.pth"}, errContain: "no -SHA256PREFIX"},
		{name: "missing file", path: filepath.Join(dir, "nope"), file: f, errContain: "nope"},
		{name: "a named pipe, never opened", path: fifo, file: f, errContain: "not a regular file: it is a named pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.path, tc.file)
			if tc.errContain == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errContain)
			assert.Equal(t, tc.mismatch, errors.Is(err, ErrMismatch))
		})
	}
}

func TestEnv(t *testing.T) {
	content, f := payload(1000)
	srv := newServer(t, serve(content))

	t.Run("cache dir default", func(t *testing.T) {
		xdg := t.TempDir()
		t.Setenv("XDG_CACHE_HOME", xdg)
		t.Setenv(EnvCache, "")
		dir, err := CacheDir()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(xdg, "vggish"), dir)
	})

	t.Run("env used", func(t *testing.T) {
		cache := t.TempDir()
		t.Setenv(EnvCache, cache)
		t.Setenv(EnvBaseURL, srv.URL+"/") // a trailing slash is fine
		dir, err := CacheDir()
		require.NoError(t, err)
		assert.Equal(t, cache, dir)
		path, err := Fetch(context.Background(), f, Options{Progress: io.Discard})
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(cache, f.Name), path)
	})

	t.Run("options beat env", func(t *testing.T) {
		cache := t.TempDir()
		t.Setenv(EnvCache, filepath.Join(t.TempDir(), "unused"))
		t.Setenv(EnvBaseURL, "http://127.0.0.1:1/unused")
		path, err := Fetch(context.Background(), f, Options{BaseURL: srv.URL, CacheDir: cache, Progress: io.Discard})
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(cache, f.Name), path)
	})

	t.Run("default URL", func(t *testing.T) {
		t.Setenv(EnvBaseURL, "")
		assert.Equal(t, DefaultBaseURL+"/"+Model.Name, Options{}.url(Model))
	})
}

func TestPathInvalidName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b-1234.pth", "../x-1234.pth"} {
		_, err := Options{CacheDir: t.TempDir()}.Path(File{Name: name})
		assert.Error(t, err, "%q", name)
		_, err = Fetch(context.Background(), File{Name: name}, Options{CacheDir: t.TempDir()})
		assert.Error(t, err, "%q", name)
	}
	_, err := Fetch(context.Background(), File{Name: "nohash.pth"}, Options{CacheDir: t.TempDir()})
	assert.ErrorContains(t, err, "no -SHA256PREFIX")
}

// A verified file is not hashed again until it changes; a changed file is.
func TestStampSparesRehashing(t *testing.T) {
	dir := t.TempDir()
	content := []byte("weights v1")
	sum := sha256.Sum256(content)
	f := File{Name: "w-" + hex.EncodeToString(sum[:])[:8] + ".pth"}
	path := filepath.Join(dir, f.Name)
	require.NoError(t, os.WriteFile(path, content, 0o644))
	assert.False(t, verifiedBefore(path, f), "no stamp yet")
	require.NoError(t, Verify(path, f))
	assert.True(t, verifiedBefore(path, f))
	got, err := SHA256(path)
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(sum[:]), got)

	// A file of the user's where the stamp would go (sha256sum's checksum file, a link, a named pipe)
	// is neither read as a stamp nor replaced.
	for _, c := range []struct {
		name string
		make func(stamp string) error
	}{
		{"a checksum file", func(stamp string) error {
			return os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])+"  "+f.Name+"\n"), 0o644)
		}},
		{"a link", func(stamp string) error {
			if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("precious\n"), 0o644); err != nil {
				return err
			}
			return os.Symlink("precious", stamp)
		}},
		{"a named pipe", func(stamp string) error { return syscall.Mkfifo(stamp, 0o644) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			stamp := stampPath(path)
			os.Remove(stamp) // Verify's own, or none
			require.NoError(t, c.make(stamp))
			before, err := os.Lstat(stamp)
			require.NoError(t, err)
			assert.False(t, verifiedBefore(path, f))
			require.NoError(t, Verify(path, f))
			after, err := os.Lstat(stamp)
			require.NoError(t, err)
			assert.Equal(t, before.Mode(), after.Mode())
			assert.Equal(t, before.ModTime(), after.ModTime(), "not written")
			if b, err := os.ReadFile(filepath.Join(dir, "precious")); err == nil {
				assert.Equal(t, "precious\n", string(b))
			}
			require.NoError(t, os.Remove(stamp))
		})
	}
	require.NoError(t, Verify(path, f))
	assert.True(t, verifiedBefore(path, f), "stamped again once the place is free")

	// Same size, new content and time: the stamp no longer applies.
	require.NoError(t, os.WriteFile(path, []byte("weights v2"), 0o644))
	require.NoError(t, os.Chtimes(path, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	assert.False(t, verifiedBefore(path, f))
	assert.ErrorIs(t, Verify(path, f), ErrMismatch)
}
