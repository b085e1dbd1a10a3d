//go:build !linux

package child

import "syscall"

// attr: only Linux has a parent-death signal; elsewhere a child ends when its input does, or with
// Close or the context of whoever started it.
func attr() *syscall.SysProcAttr { return nil }
