package weights

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"
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

// server serves content at /NAME for any name and counts the requests.
type server struct {
	*httptest.Server
	requests atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve sends content with its length, as release servers do.
func serve(content []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content)
	}
}

// leftovers lists files in dir other than f itself, its lock file and its verification stamp.
func leftovers(t *testing.T, dir string, f File) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var extra []string
	for _, e := range entries {
		if n := e.Name(); n != f.Name && n != f.Name+".lock" && n != f.Name+".sha256" {
			extra = append(extra, n)
		}
	}
	return extra
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

func TestFetch(t *testing.T) {
	content, f := payload(3 << 20)
	for _, tc := range []struct {
		name       string
		file       File
		handler    http.HandlerFunc
		errContain string // "" for success
		mismatch   bool
		progress   string // expected in the progress output on success
	}{
		{name: "good", file: f, handler: serve(content), progress: "100% of 3.1 MB\n"},
		{name: "good, size unknown", file: f, progress: ": 3 MB\n",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(content) }}, // chunked
		{name: "wrong hash", file: File{Name: "x-00000000.pth"}, handler: serve(content),
			errContain: "want prefix 00000000", mismatch: true},
		{name: "truncated body", file: f, errContain: "unexpected EOF",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(content)))
				w.Write(content[:len(content)/2])
			}},
		{name: "404", file: f, errContain: "HTTP 404", handler: http.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.handler)
			dir := t.TempDir()
			var progress bytes.Buffer
			path, err := Fetch(context.Background(), tc.file, Options{BaseURL: srv.URL, CacheDir: dir, Progress: &progress})
			assert.Empty(t, leftovers(t, dir, tc.file), "temporary files left")
			if tc.errContain == "" {
				require.NoError(t, err)
				assert.Equal(t, filepath.Join(dir, tc.file.Name), path)
				got, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(content, got), "cached content differs")
				assert.Contains(t, progress.String(), tc.progress)
				return
			}
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), tc.errContain)
			assert.Contains(t, err.Error(), srv.URL+"/"+tc.file.Name, "error names the URL")
			assert.Contains(t, err.Error(), "--weights FILE")
			assert.Equal(t, tc.mismatch, errors.Is(err, ErrMismatch))
			assert.NoFileExists(t, filepath.Join(dir, tc.file.Name))
		})
	}
}

func TestFetchUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, f := payload(10)
	_, err := Fetch(context.Background(), f, Options{BaseURL: url, CacheDir: t.TempDir(), Progress: io.Discard})
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), url+"/"+f.Name)
	assert.Contains(t, err.Error(), "--weights FILE")
}

func TestFetchCached(t *testing.T) {
	content, f := payload(1000)
	srv := newServer(t, serve(content))
	dir := t.TempDir()
	o := Options{BaseURL: srv.URL, CacheDir: dir, Progress: io.Discard}
	path := filepath.Join(dir, f.Name)

	for i := 0; i < 2; i++ {
		got, err := Fetch(context.Background(), f, o)
		require.NoError(t, err)
		assert.Equal(t, path, got)
	}
	assert.EqualValues(t, 1, srv.requests.Load(), "cached file was downloaded again")

	// A corrupt cached copy, and a partial download left by a killed
	// process, are replaced by a fresh download.
	require.NoError(t, os.WriteFile(path, []byte("corrupt"), 0o644))
	stale := filepath.Join(dir, f.Name+".12345"+tmpSuffix)
	require.NoError(t, os.WriteFile(stale, []byte("partial"), 0o600))
	_, err := Fetch(context.Background(), f, o)
	require.NoError(t, err)
	assert.EqualValues(t, 2, srv.requests.Load())
	require.NoError(t, Verify(path, f))
	assert.Empty(t, leftovers(t, dir, f))
}

func TestFetchConcurrent(t *testing.T) {
	content, f := payload(1 << 20)
	// The delay keeps the first download in flight while the others start,
	// so that without the lock each of them would download too.
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Write(content)
	})
	dir := t.TempDir()
	o := Options{BaseURL: srv.URL, CacheDir: dir, Progress: io.Discard}

	const n = 4
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = Fetch(context.Background(), f, o)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, filepath.Join(dir, f.Name), paths[i])
	}
	assert.EqualValues(t, 1, srv.requests.Load(), "downloads")
	require.NoError(t, Verify(paths[0], f))
	assert.Empty(t, leftovers(t, dir, f))
}

// cancelOn is a progress writer that cancels when a line containing substr
// is written.
type cancelOn struct {
	substr string
	cancel context.CancelFunc
}

func (c cancelOn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(c.substr)) {
		c.cancel()
	}
	return len(b), nil
}

func TestFetchCancel(t *testing.T) {
	content, f := payload(1 << 20)
	stop := make(chan struct{})
	// The server sends a little, then stalls until the client goes away.
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)

	for _, tc := range []struct {
		name     string
		cancelOn string // progress output that triggers the cancel
		holdLock bool   // another downloader holds the lock
	}{
		{name: "during download", cancelOn: "of 1.0 MB"},
		{name: "waiting for lock", cancelOn: "waiting for another download", holdLock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.holdLock {
				lock := flock.New(filepath.Join(dir, f.Name+".lock"))
				require.NoError(t, lock.Lock())
				defer lock.Unlock()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := Options{BaseURL: srv.URL, CacheDir: dir, Progress: cancelOn{tc.cancelOn, cancel}}
			done := make(chan error, 1)
			go func() {
				_, err := Fetch(ctx, f, o)
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
				t.Log(err)
			case <-time.After(20 * time.Second): // a hang guard, not a speed check
				t.Fatal("Fetch did not return after its context was cancelled")
			}
			assert.Empty(t, leftovers(t, dir, f), "temporary files left")
			assert.NoFileExists(t, filepath.Join(dir, f.Name))
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

	// Same size, new content and time: the stamp no longer applies.
	require.NoError(t, os.WriteFile(path, []byte("weights v2"), 0o644))
	require.NoError(t, os.Chtimes(path, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	assert.False(t, verifiedBefore(path, f))
	assert.ErrorIs(t, Verify(path, f), ErrMismatch)
}
