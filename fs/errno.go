package fs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/katafs/katafs/sandbox"
)

// errnoTable is checked in order; the first sentinel err wraps wins.
// Cancellation comes first: a command the caller interrupted reports
// EINTR even if the layer below wrapped it as a VM failure.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{context.Canceled, syscall.EINTR},
	{sandbox.ErrInvalid, syscall.EINVAL},
	{sandbox.ErrNotFound, syscall.ENOENT},
	{sandbox.ErrExists, syscall.EEXIST},
	{sandbox.ErrBusy, syscall.EBUSY},
	{sandbox.ErrNoSpace, syscall.ENOSPC},
	{sandbox.ErrVM, syscall.EIO},
	// A write to the stdin of a process that no longer reads it.
	{io.ErrClosedPipe, syscall.EPIPE},
	{syscall.EPIPE, syscall.EPIPE},
}

// errnoOf is the one place a Go error becomes an errno. Errors wrapping
// no known sentinel are EIO, never ENOSYS.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			return e.errno
		}
	}
	return syscall.EIO
}
