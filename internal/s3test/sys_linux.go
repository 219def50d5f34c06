//go:build linux

package s3test

import (
	"os"
	"syscall"
)

// sysProcAttr has the kernel kill versitygw when the test binary dies
// without running its cleanups (a panic, -timeout, SIGKILL), instead of
// leaving it listening.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// xattrsSupported reports whether files in dir take user xattrs, the way
// versitygw stores object metadata by default.
func xattrsSupported(dir string) bool {
	f, err := os.CreateTemp(dir, "xattr-probe-")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	return syscall.Setxattr(name, "user.s3test.probe", []byte("1"), 0) == nil
}
