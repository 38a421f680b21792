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

// streamPoll is how often a reader blocked at the end of a stream checks
// the spool file for growth.
const streamPoll = 50 * time.Millisecond

var errShutdown = errors.New("katafs is shutting down")

// stream is a growing log: a spool file some producer appends to, and a
// channel closed when the producer is gone for good (nil: never).
type stream struct {
	path string
	done <-chan struct{}
}

// streamFile serves a stream: st_size is what has been produced so far,
// reads below it return at once, a read at the end waits for more data
// or for the end (then EOF), and is interrupted with the request.
type streamFile struct {
	fusefs.Inode
	t    *tree
	open func(ctx context.Context) (stream, error)
}

var (
	_ = (fusefs.NodeOpener)((*streamFile)(nil))
	_ = (fusefs.NodeGetattrer)((*streamFile)(nil))
	_ = (fusefs.FileReader)((*streamHandle)(nil))
	_ = (fusefs.FileReleaser)((*streamHandle)(nil))
)

func (f *streamFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	s, err := f.open(ctx)
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	return &streamHandle{s: s, stopping: f.t.stopping}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *streamFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeStream
	f.t.times(&out.Attr)
	path := ""
	if h, ok := fh.(*streamHandle); ok {
		path = h.s.path
	} else {
		s, err := f.open(ctx)
		if err != nil {
			return errnoOf(err)
		}
		path = s.path
	}
	if fi, err := os.Stat(path); err == nil {
		out.Size = uint64(fi.Size())
		mt := fi.ModTime()
		out.SetTimes(nil, &mt, &mt)
	}
	return 0
}

// streamHandle is one open of a stream file.
type streamHandle struct {
	s        stream
	stopping <-chan struct{}
	mu       sync.Mutex
	f        *os.File // opened on first read: the producer may not have made it yet
}

func (h *streamHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	var tick *time.Ticker
	for {
		n, err := h.readAt(dest, off)
		if n > 0 || err != nil {
			return fuse.ReadResultData(dest[:n]), errnoOf(err)
		}
		if tick == nil {
			var stop context.CancelFunc
			ctx, stop = callerContext(ctx)
			defer stop()
			tick = time.NewTicker(streamPoll)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return nil, errnoOf(ctx.Err())
		case <-h.stopping:
			return nil, errnoOf(errShutdown)
		case <-h.s.done:
			// Take what was appended before the end, then EOF.
			n, err := h.readAt(dest, off)
			return fuse.ReadResultData(dest[:n]), errnoOf(err)
		case <-tick.C:
		}
	}
}

// readAt reads what is there at off; no file yet reads as empty.
func (h *streamHandle) readAt(dest []byte, off int64) (int, error) {
	h.mu.Lock()
	if h.f == nil {
		f, err := os.Open(h.s.path)
		if errors.Is(err, fs.ErrNotExist) {
			h.mu.Unlock()
			return 0, nil
		}
		if err != nil {
			h.mu.Unlock()
			return 0, err
		}
		h.f = f
	}
	f := h.f
	h.mu.Unlock()
	n, err := f.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (h *streamHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
	return 0
}
