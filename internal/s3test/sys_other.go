//go:build !linux

package s3test

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

// xattrsSupported leaves the check to versitygw, which names the problem
// when it refuses to start.
func xattrsSupported(string) bool { return true }
