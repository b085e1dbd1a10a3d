//go:build !linux

package libav

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere a worker ends when its input does.
func childAttr() *syscall.SysProcAttr { return nil }
