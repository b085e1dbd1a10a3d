// Package atomicfile writes files that appear whole or not at all: a killed or failing writer leaves
// at most a hidden temporary file beside the destination, never a partial file under its name.
package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
)

const suffix = ".tmp"

// Write writes data to path through a temporary file in the same folder (".NAME.RANDOM.tmp"), flushed
// to disk before it is renamed to path.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+suffix)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm) // CreateTemp makes it private
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

// Target returns the name a temporary file of Write was to be renamed to, or "" if name is not one:
// a rerun uses it to clear what a killed run left.
func Target(name string) string {
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
