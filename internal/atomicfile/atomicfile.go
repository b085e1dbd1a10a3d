// Package atomicfile writes files that appear whole or not at all: a killed or failing writer leaves
// at most a hidden temporary file beside the destination, never a partial file under its name.
package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
)

const suffix = ".tmp"

// File is a file being written under a temporary name in its destination's folder
// (".NAME.RANDOM.tmp"). Commit puts it in place; Abort, or a failed Commit, removes it.
type File struct {
	*os.File
	path string
	perm os.FileMode
}

// Create starts writing the file that Commit will put at path with permissions perm.
func Create(path string, perm os.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+suffix)
	if err != nil {
		return nil, err
	}
	return &File{File: tmp, path: path, perm: perm}, nil
}

// Commit flushes the file to disk, closes it and renames it to its path.
func (f *File) Commit() error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), f.perm) // CreateTemp makes it private
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Abort closes and removes the temporary file; after Commit it does nothing.
func (f *File) Abort() {
	f.Close()
	os.Remove(f.Name()) // gone after Commit
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
