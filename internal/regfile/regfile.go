// Package regfile opens files for reading only when they are regular files. Opening a named pipe
// blocks until something writes to it, and reading a device or a socket may never end: a program
// that reads the files its users name must not do either by mistake.
package regfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is wrapped by the errors of Open and Check for anything but a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens the file name for reading if it is a regular file (symbolic links followed). The kind is
// checked before the file is opened, and again on the opened file, which is opened without blocking:
// no name, nor a file swapped for a named pipe in between, can make Open wait.
func Open(name string) (*os.File, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := Check(info); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	// Reads of a regular file ignore O_NONBLOCK; it is cleared so that os treats it as a plain file.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	if info, err = f.Stat(); err == nil {
		err = Check(info)
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// Require returns nil if path is a regular file (links followed), else why not: the error does not
// name path, which callers name once in their own message.
func Require(path string) error {
	info, err := os.Stat(path)
	if err == nil {
		return Check(info)
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Check returns nil for a regular file's info and otherwise ErrNotRegular, saying what the file is.
func Check(info fs.FileInfo) error {
	m := info.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "an irregular file"
	switch {
	case m.IsDir():
		kind = "a folder"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	case m&fs.ModeSymlink != 0:
		kind = "a symbolic link"
	}
	return fmt.Errorf("%w: it is %s", ErrNotRegular, kind)
}
