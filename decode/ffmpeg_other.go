//go:build !linux

package decode

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere ffmpeg ends with Close or the context.
func childAttr() *syscall.SysProcAttr { return nil }
