package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func TestErrnoOf(t *testing.T) {
	wrap := func(e error) error { return fmt.Errorf("create s1: %w", e) }
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{wrap(sandbox.ErrInvalid), syscall.EINVAL},
		{wrap(sandbox.ErrNotFound), syscall.ENOENT},
		{wrap(sandbox.ErrExists), syscall.EEXIST},
		{wrap(sandbox.ErrBusy), syscall.EBUSY},
		{wrap(sandbox.ErrNoSpace), syscall.ENOSPC},
		{wrap(sandbox.ErrVM), syscall.EIO},
		{wrap(context.Canceled), syscall.EINTR},
		{fmt.Errorf("%w: qmp: %w", sandbox.ErrVM, context.Canceled), syscall.EINTR},
		{context.DeadlineExceeded, syscall.EIO},
		{errors.New("something odd"), syscall.EIO},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.ENOSYS}, syscall.EIO},
		{sandbox.ValidID(".."), syscall.EINVAL},
	} {
		if got := errnoOf(tc.err); got != tc.want {
			t.Errorf("errnoOf(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}
