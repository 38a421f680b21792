package fs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var errShutdown = errors.New("katafs is shutting down")

// streamFile serves a Stream (stdout, stderr, console): st_size is what
// has been produced so far, reads below it return at once, a read at the
// end waits for more data or for the end (then EOF), and is interrupted
// by the caller's Ctrl-C or by shutdown.
type streamFile struct {
	fusefs.Inode
	t *tree
	// open fetches the stream; it is held by the open handle.
	open func(ctx context.Context) (Stream, error)
}

var (
	_ = (fusefs.NodeOpener)((*streamFile)(nil))
	_ = (fusefs.NodeGetattrer)((*streamFile)(nil))
	_ = (fusefs.FileReader)((*streamHandle)(nil))
	_ = (fusefs.FileReleaser)((*streamHandle)(nil))
)

// modTimer is a Stream that knows when it last grew.
type modTimer interface {
	ModTime() time.Time
}

func (f *streamFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	s, err := f.open(ctx)
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	return &streamHandle{t: f.t, s: s}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *streamFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeStream
	f.t.times(&out.Attr)
	var s Stream
	if h, ok := fh.(*streamHandle); ok {
		s = h.s
	} else {
		var err error
		if s, err = f.open(ctx); err != nil {
			return errnoOf(err)
		}
	}
	out.Size = uint64(max(s.Size(), 0))
	if m, ok := s.(modTimer); ok {
		if mt := m.ModTime(); !mt.IsZero() {
			out.SetTimes(nil, &mt, &mt)
		}
	}
	return 0
}

// streamHandle is one open of a stream file.
type streamHandle struct {
	t *tree
	s Stream
}

func (h *streamHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	var (
		n   int
		err error
	)
	if off < h.s.Size() {
		n, err = h.s.ReadAt(ctx, dest, off)
	} else {
		wctx, stop := h.t.waitContext(ctx)
		n, err = h.s.ReadAt(wctx, dest, off)
		err = h.t.cause(wctx, err)
		stop()
	}
	if n > 0 || err == io.EOF {
		return fuse.ReadResultData(dest[:n]), 0
	}
	return nil, errnoOf(err)
}

func (h *streamHandle) Release(ctx context.Context) syscall.Errno {
	// Only a stream made for this open is closed with it; a process's
	// spool is shared by every reader and lives on.
	if c, ok := h.s.(perOpenStream); ok {
		c.Close()
	}
	return 0
}

// perOpenStream is a Stream made anew for each open (the console's log
// file), closed when that open is released.
type perOpenStream interface {
	Stream
	io.Closer
	perOpen()
}

func (s *fileStream) perOpen() {}

// waitContext is the context of an operation that waits for the guest
// (a read at the end of a stream, wait, a stdin write): it is canceled
// by the caller's stop request (callerContext) and, with cause
// errShutdown, when the daemon shuts down, so that a waiting reader does
// not keep the mount busy. Call stop when the operation is done.
func (t *tree) waitContext(ctx context.Context) (_ context.Context, stop func()) {
	cctx, cstop := callerContext(ctx)
	wctx, cancel := context.WithCancelCause(cctx)
	go func() {
		select {
		case <-t.stopping:
			cancel(errShutdown)
		case <-wctx.Done():
		}
	}()
	return wctx, func() {
		cancel(nil)
		cstop()
	}
}

// cause turns the cancellation of a waitContext by shutdown into
// errShutdown (EIO), not EINTR.
func (t *tree) cause(wctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(wctx), errShutdown) {
		return errShutdown
	}
	return err
}

// streamPoll is how often a reader blocked at the end of a fileStream
// checks the file for growth.
const streamPoll = 50 * time.Millisecond

// fileStream is a Stream over a log file some producer appends to (the
// console QEMU writes), and a channel closed when the producer is gone
// for good (nil: never). The file may not exist yet: it reads as empty.
type fileStream struct {
	path string
	done <-chan struct{}

	mu sync.Mutex
	f  *os.File // opened on first read
}

var _ Stream = (*fileStream)(nil)

func (s *fileStream) Size() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *fileStream) ModTime() time.Time {
	fi, err := os.Stat(s.path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// ReadAt polls the file while it has nothing at off.
func (s *fileStream) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	var tick *time.Ticker
	for {
		n, err := s.readAt(p, off)
		if n > 0 || err != nil {
			return n, err
		}
		if tick == nil {
			tick = time.NewTicker(streamPoll)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.done:
			// Take what was appended before the end, then EOF.
			n, err := s.readAt(p, off)
			if n == 0 && err == nil {
				err = io.EOF
			}
			return n, err
		case <-tick.C:
		}
	}
}

// readAt reads what is there at off; no file yet reads as empty.
func (s *fileStream) readAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	if s.f == nil {
		f, err := os.Open(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			s.mu.Unlock()
			return 0, nil
		}
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		s.f = f
	}
	f := s.f
	s.mu.Unlock()
	n, err := f.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (s *fileStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
