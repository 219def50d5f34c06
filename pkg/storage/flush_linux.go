package storage

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing a file's dirty pages to
// disk now, without waiting (sync_file_range SYNC_FILE_RANGE_WRITE). Called
// while a large body streams in, it overlaps the disk's work with the
// transfer, so the fsync at the end of the PATCH (--file-sync) has little
// left to wait for. It is a hint: errors are ignored, and nothing but the
// final fsync promises durability.
func startWriteback(w io.Writer) {
	if f, ok := w.(*os.File); ok {
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
}
