//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

// openUnnamed: only Linux has O_TMPFILE; Create writes a named file elsewhere.
func openUnnamed(dir, name string) (*os.File, error) { return nil, errors.ErrUnsupported }

func linkUnnamed(f *os.File, name string) error { return errors.ErrUnsupported }
