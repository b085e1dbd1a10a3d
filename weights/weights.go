// Package weights locates, downloads and verifies the published VGGish weight
// files (the torchvggish v0.1 release): [Model] and [PCA].
//
// Files are named the torch.hub way, NAME-HASH.EXT, where HASH is a prefix of
// the file's sha256 in hex; every file is checked against it ([Verify]).
// [Fetch] downloads to a per-user cache directory ([CacheDir]), safely against
// interruption and against several processes fetching the same file at once;
// a failed download is a [*DownloadError]. The package prints nothing: download
// progress goes to [Options.Progress] when a program asks for it.
package weights

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vggish-go/vggish/internal/regfile"
)

// DefaultBaseURL is where the torchvggish project publishes its weights.
const DefaultBaseURL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1"

// Environment variables that change the defaults of Options.
const (
	// EnvCache names the cache directory (see CacheDir).
	EnvCache = "VGGISH_CACHE"
	// EnvBaseURL replaces DefaultBaseURL, for mirrors and air-gapped sites.
	EnvBaseURL = "VGGISH_WEIGHTS_URL"
)

// File is a weight file published under a torch.hub style name.
type File struct {
	Name string // base name, e.g. "vggish-10086976.pth"
}

// The files of the torchvggish v0.1 release.
var (
	// Model holds the VGGish network parameters.
	Model = File{Name: "vggish-10086976.pth"}
	// PCA holds the PCA whitening parameters applied to the embeddings.
	PCA = File{Name: "vggish_pca_params-970ea276.pth"}
)

// hubHash is torch.hub's HASH_REGEX, except that an empty prefix (which
// would verify anything) is not accepted.
var hubHash = regexp.MustCompile(`-([0-9a-f]+)\.`)

// SHA256Prefix returns the hex sha256 prefix encoded in the name, the first
// "-HEX." group as torch.hub reads it, or "" if the name has none.
func (f File) SHA256Prefix() string {
	m := hubHash.FindStringSubmatch(f.Name)
	if m == nil {
		return ""
	}
	return m[1]
}

// ErrMismatch is returned (wrapped) when a file's sha256 does not start with
// the prefix in its name.
var ErrMismatch = errors.New("sha256 mismatch")

// Options say where weights are cached and fetched from. The zero value uses
// the defaults described on each field.
type Options struct {
	// BaseURL is the directory URL the file names are appended to.
	// Default: $VGGISH_WEIGHTS_URL, else DefaultBaseURL.
	BaseURL string
	// CacheDir is where downloaded files are kept. Default: CacheDir().
	CacheDir string
	// Client makes the download requests. Default: http.DefaultClient.
	Client *http.Client
	// Progress receives human-readable download progress: a line redrawn
	// with carriage returns, meant for a terminal. Default: none.
	Progress io.Writer
}

// CacheDir returns the default cache directory: $VGGISH_CACHE if set, else
// "vggish" in os.UserCacheDir().
func CacheDir() (string, error) {
	if dir := os.Getenv(EnvCache); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("weights: no cache directory (set %s): %w", EnvCache, err)
	}
	return filepath.Join(dir, "vggish"), nil
}

// Path returns where f is, or would be, cached. It does not touch the file.
func (o Options) Path(f File) (string, error) {
	if f.Name == "" || f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." {
		return "", fmt.Errorf("weights: invalid file name %q", f.Name)
	}
	dir := o.CacheDir
	if dir == "" {
		var err error
		if dir, err = CacheDir(); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, f.Name), nil
}

// Verify checks that the sha256 of the file at path starts with the prefix in
// f's name. To check an arbitrary hub-named file, pass
// File{Name: filepath.Base(path)}.
func Verify(path string, f File) error {
	if f.SHA256Prefix() == "" {
		return fmt.Errorf("weights: verify %s: name %q has no -SHA256PREFIX. part to check against", path, f.Name)
	}
	sum, err := hashFile(path)
	if err != nil {
		return err
	}
	if err := checkSum(sum, f); err != nil {
		return fmt.Errorf("weights: verify %s: %w", path, err)
	}
	writeStamp(path, sum)
	return nil
}

// verifiedBefore reports whether a stamp shows that path, unchanged since, passed Verify: it spares
// every start of a program the hashing of a 275 MB file.
func verifiedBefore(path string, f File) bool {
	sum, ok := stampedSum(path)
	return ok && checkSum(sum, f) == nil
}

func checkSum(sum string, f File) error {
	if want := f.SHA256Prefix(); !strings.HasPrefix(sum, want) {
		return fmt.Errorf("%w: got %s, want prefix %s from %s", ErrMismatch, sum, want, f.Name)
	}
	return nil
}

// SHA256 returns the hex sha256 of the file at path. For a file Verify has checked and that has not
// changed since (same size and modification time), the recorded sum is returned without reading it.
func SHA256(path string) (string, error) {
	if sum, ok := stampedSum(path); ok {
		return sum, nil
	}
	return hashFile(path)
}

func hashFile(path string) (string, error) {
	r, err := regfile.Open(path) // a named pipe would block, a device never end
	if err != nil {
		return "", fmt.Errorf("weights: sha256: %w", err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("weights: sha256 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// A stamp, path + ".sha256", records a verified file's sum with its size and modification time. That
// name is also sha256sum's for a user's checksum file: whatever is there and is not a stamp (a regular
// file of stampForm, not a link) is neither trusted nor replaced.
func stampPath(path string) string { return path + ".sha256" }

var stampForm = regexp.MustCompile(`^[0-9a-f]{64} [0-9]+ -?[0-9]+\n$`)

func stampLine(fi os.FileInfo, sum string) string {
	return fmt.Sprintf("%s %d %d\n", sum, fi.Size(), fi.ModTime().UnixNano())
}

// readStamp returns the stamp beside path: ok is false when nothing is there, and mine false when
// something other than a stamp is.
func readStamp(path string) (stamp string, ok, mine bool) {
	sp := stampPath(path)
	fi, err := os.Lstat(sp)
	if err != nil {
		return "", false, true
	}
	if !fi.Mode().IsRegular() {
		return "", false, false
	}
	f, err := regfile.Open(sp) // a file swapped for a named pipe since cannot make it wait
	if err != nil {
		return "", false, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil || !stampForm.Match(b) {
		return "", false, false
	}
	return string(b), true, true
}

// writeStamp is best effort: without a stamp the next start hashes the file again.
func writeStamp(path, sum string) {
	fi, err := os.Stat(path)
	if _, _, mine := readStamp(path); err != nil || !mine {
		return
	}
	_ = os.WriteFile(stampPath(path), []byte(stampLine(fi, sum)), 0o644)
}

func stampedSum(path string) (string, bool) {
	b, ok, _ := readStamp(path)
	if !ok {
		return "", false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	sum, _, _ := strings.Cut(b, " ")
	return sum, b == stampLine(fi, sum)
}
