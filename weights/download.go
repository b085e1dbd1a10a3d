package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/vggish-go/vggish/internal/atomicfile"
)

// lockRetry is how often a waiting process polls the lock of a download in
// progress elsewhere.
const lockRetry = 200 * time.Millisecond

// Fetch returns the path of f in the cache, downloading it first unless a
// copy that passes Verify is already there (a copy that does not is
// replaced). A download is written to a temporary file next to its
// destination, verified, and renamed into place, so the cache never holds a
// partial or corrupt file under f's name. Concurrent callers, in this or other
// processes, serialise on a lock file (f's path + ".lock", left in place) and
// all end up with the single verified copy. Cancelling ctx stops the wait or
// the download and removes the partial file. A failed download is a
// [*DownloadError].
func Fetch(ctx context.Context, f File, o Options) (string, error) {
	path, err := o.Path(f)
	if err != nil {
		return "", err
	}
	if f.SHA256Prefix() == "" {
		return "", fmt.Errorf("weights: cannot verify %q: name has no -SHA256PREFIX. part", f.Name)
	}
	if verifiedBefore(path, f) {
		return path, nil
	}
	cacheErr := Verify(path, f)
	if cacheErr == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("weights: cache directory: %w", err)
	}

	progress := o.progress()
	lock := flock.New(path + ".lock")
	ok, err := lock.TryLock()
	if err == nil && !ok {
		fmt.Fprintf(progress, "waiting for another download of %s (lock %s)\n", f.Name, lock.Path())
		ok, err = lock.TryLockContext(ctx, lockRetry)
	}
	if err != nil {
		return "", fmt.Errorf("weights: lock %s: %w", lock.Path(), err)
	}
	defer lock.Unlock()

	// Whoever held the lock may have fetched the file meanwhile.
	if Verify(path, f) == nil {
		return path, nil
	}
	// Holding the lock, any partial download left here is from a killed process.
	atomicfile.RemoveTemps(path)

	url := o.url(f)
	if err := download(ctx, url, path, f, o.client(), progress); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("weights: download %s: %w", url, ctx.Err())
		}
		if !errors.Is(cacheErr, os.ErrNotExist) {
			err = fmt.Errorf("%w (the cached copy failed too: %v)", err, cacheErr)
		}
		return "", &DownloadError{File: f, URL: url, Err: err}
	}
	return path, nil
}

// A DownloadError is a published file that could not be downloaded (the server, the network, or a
// download that fails verification), as opposed to a cache that cannot be written. A program can
// offer its own way round it, such as a path to a copy obtained elsewhere.
type DownloadError struct {
	File File
	URL  string
	Err  error
}

func (e *DownloadError) Error() string {
	return fmt.Sprintf("weights: download %s: %v (set %s to use a mirror)", e.URL, e.Err, EnvBaseURL)
}

func (e *DownloadError) Unwrap() error { return e.Err }

func (o Options) url(f File) string {
	base := o.BaseURL
	if base == "" {
		base = os.Getenv(EnvBaseURL)
	}
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimRight(base, "/") + "/" + f.Name
}

func (o Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o Options) progress() io.Writer {
	if o.Progress != nil {
		return o.Progress
	}
	return io.Discard
}

// download fetches url into path through a verified temporary file.
func download(ctx context.Context, url, path string, f File, client *http.Client, progress io.Writer) (err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}

	tmp, err := atomicfile.Create(path, 0o644) // the weights are public data
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Abort()
		}
	}()

	fmt.Fprintf(progress, "downloading %s\n", url)
	p := &meter{w: progress, name: f.Name, total: resp.ContentLength, last: -1}
	h := sha256.New()
	// net/http reports a body shorter than its Content-Length as an error.
	_, err = io.Copy(io.MultiWriter(tmp, h, p), resp.Body)
	p.done()
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := checkSum(sum, f); err != nil {
		return err
	}
	if err := tmp.Commit(); err != nil {
		return err
	}
	writeStamp(path, sum)
	return nil
}

// meter writes one self-overwriting progress line, updated per percent
// (or per MB when the size is unknown).
type meter struct {
	w     io.Writer
	name  string
	total int64 // -1 if unknown
	n     int64
	last  int64
}

func (m *meter) Write(b []byte) (int, error) {
	m.n += int64(len(b))
	step := m.n / 1e6
	if m.total > 0 {
		step = m.n * 100 / m.total
	}
	if step != m.last {
		m.last = step
		if m.total > 0 {
			fmt.Fprintf(m.w, "\r%s: %3d%% of %.1f MB", m.name, step, float64(m.total)/1e6)
		} else {
			fmt.Fprintf(m.w, "\r%s: %d MB", m.name, step)
		}
	}
	return len(b), nil
}

// done ends the progress line.
func (m *meter) done() {
	if m.last >= 0 {
		fmt.Fprintln(m.w)
	}
}
