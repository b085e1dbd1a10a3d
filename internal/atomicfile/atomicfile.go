// Package atomicfile writes files that appear whole or not at all, never a partial file under the
// destination's name. On Linux a file is written unnamed (O_TMPFILE) in the destination's folder and
// named only when committed, so a killed writer leaves nothing behind (except in the instant between
// naming and renaming); where the file system refuses that, it is written under a hidden temporary
// name beside the destination, which a killed writer leaves (see RemoveTemps).
package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vggish-go/vggish/internal/regfile"
)

const (
	suffix = ".tmp"
	// overhead is the most a temporary name adds to its stem: "." before it, then "." and a random
	// decimal uint32 (up to 10 digits), as os.CreateTemp and tempName write them, and the suffix.
	overhead = 1 + 1 + 10 + len(suffix)
	// plainMax bounds the temporary names that hold their target's name whole; a longer target's
	// temporary name is shortened to at most the target's own length (see Stem), so that it fits
	// wherever the target does, whatever the file system's name limit.
	plainMax = 100
	// hashLen is the hex digits of sha256(name) that stand for the cut part of a long name.
	hashLen = 16
)

// File is a file being written for its destination: unnamed until Commit where the file system allows,
// else under a temporary name in its destination's folder (".STEM.RANDOM.tmp", STEM as Stem gives
// it); Name is that name, or the one Commit will try first. Commit puts it in place; Abort, or a
// failed Commit, removes it.
type File struct {
	*os.File
	path string
	perm os.FileMode
	tmp  string // the temporary name: "" while the file is unnamed, and once committed or aborted
}

// unnamed lets Create write unnamed files; tests turn it off to check the named ones.
var unnamed = true

// Create starts writing the file that Commit will put at path with permissions perm. What is at path
// must be a regular file or nothing: a device, a named pipe or a folder there is refused, never
// replaced (as root, --output /dev/null would otherwise swap the device for a file). A symbolic link is
// followed: the file it points to is replaced, and the link stays.
func Create(path string, perm os.FileMode) (*File, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if info, err := os.Stat(path); err == nil {
		if err := regfile.Check(info); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if unnamed {
		// Any failure falls back on a named file, which reports a real fault (a missing folder, a
		// full disk) as it always has.
		if f, err := openUnnamed(filepath.Dir(path), tempName(path)); err == nil {
			return &File{File: f, path: path, perm: perm}, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+Stem(filepath.Base(path))+".*"+suffix)
	if err != nil {
		return nil, err
	}
	return &File{File: tmp, path: path, perm: perm, tmp: tmp.Name()}, nil
}

// tempName is a random temporary name for path, as os.CreateTemp makes them.
func tempName(path string) string {
	name := "." + Stem(filepath.Base(path)) + "." + strconv.FormatUint(uint64(rand.Uint32()), 10) + suffix
	return filepath.Join(filepath.Dir(path), name)
}

// Commit flushes the file to disk, names it if it is unnamed, closes it and renames it to its path.
func (f *File) Commit() error {
	err := f.Sync()
	if err == nil {
		err = f.Chmod(f.perm) // it was made private
	}
	if err == nil && f.tmp == "" {
		err = f.link()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp, f.path)
	}
	if err != nil && f.tmp != "" {
		os.Remove(f.tmp)
	}
	f.tmp = ""
	return err
}

// link gives an unnamed file a temporary name, to be renamed to its path: its Name, or where another
// writer took that, another.
func (f *File) link() error {
	name := f.Name()
	for tries := 1; ; tries++ {
		err := linkUnnamed(f.File, name)
		if err == nil {
			f.tmp = name
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || tries == 100 {
			return err
		}
		name = tempName(f.path)
	}
}

// Abort closes and removes the file; after Commit it does nothing.
func (f *File) Abort() {
	f.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
		f.tmp = ""
	}
}

// Write writes data to path through a temporary file, flushed to disk before it is renamed to path.
func Write(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.File.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// Stem is the part of the temporary files' names that stands for their target, the file name name:
// name itself when short, else a prefix of it with "~" and a hash of the whole name, short enough that
// a temporary name is never longer than name (file names are limited to 255 bytes on most file
// systems: a long name plus a temporary suffix would not fit).
func Stem(name string) string {
	if len(name)+overhead <= plainMax {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	cut := len(name) - overhead - 1 - hashLen
	for cut > 0 && !utf8.RuneStart(name[cut]) { // keep the prefix valid UTF-8
		cut--
	}
	return name[:cut] + "~" + hex.EncodeToString(sum[:])[:hashLen]
}

// RemoveTemps removes the temporary files of path's writers, those that a killed process left; call
// it only where no other process writes path (under a lock). Failures are harmless and ignored.
func RemoveTemps(path string) {
	dir, stem := filepath.Dir(path), Stem(filepath.Base(path))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if TempStem(e.Name()) == stem {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// TempStem returns the stem of a temporary file's name (compare it with Stem of a target's name), or
// "" if name is not one: a rerun uses it to clear what a killed run left.
func TempStem(name string) string {
	if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, suffix) {
		return ""
	}
	stem := strings.TrimSuffix(name[1:], suffix)
	i := strings.LastIndex(stem, ".")
	if i <= 0 {
		return ""
	}
	return stem[:i]
}
