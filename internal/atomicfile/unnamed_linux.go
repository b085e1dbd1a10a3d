package atomicfile

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed file in dir (O_TMPFILE), which os names name in its errors; linkUnnamed
// gives it a name.
func openUnnamed(dir, name string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	// It is named through /proc: without /proc (a bare chroot) it never could be.
	if _, err := os.Lstat(procPath(f)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// linkUnnamed gives f, opened by openUnnamed, the name name.
func linkUnnamed(f *os.File, name string) error {
	proc := procPath(f)
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: proc, New: name, Err: err}
	}
	return nil
}

func procPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
