package weights

import (
	"bytes"
	"context"
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
			var de *DownloadError
			if assert.ErrorAs(t, err, &de) {
				assert.Equal(t, tc.file, de.File)
			}
			assert.Contains(t, err.Error(), EnvBaseURL, "error says how to use a mirror")
			assert.NotContains(t, err.Error(), "--", "no command-line vocabulary in a library's error")
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
	var de *DownloadError
	assert.ErrorAs(t, err, &de)
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
	stale := filepath.Join(dir, "."+f.Name+".12345.tmp")
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
