package fs

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/katafs/katafs/sandbox"
)

// pickStream returns a process's stdout or stderr; a nil one (stderr of
// a tty process) is absent.
func pickStream(p Process, pick func(Process) Stream) (Stream, error) {
	s := pick(p)
	if s == nil {
		return nil, fmt.Errorf("%w: process %s has no such stream (tty)", sandbox.ErrNotFound, p.ID())
	}
	// A nil pointer in a Stream is no stream either.
	if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("%w: process %s has no such stream (tty)", sandbox.ErrNotFound, p.ID())
	}
	return s, nil
}

// signalLine is what a line written to procs/PID/signal does: a signal
// name or number to the process.
func signalLine(t *tree, at ref) func(ctx context.Context, words []string) error {
	return func(ctx context.Context, words []string) error {
		if len(words) != 1 {
			return fmt.Errorf("%w: want one signal name or number, got %q", sandbox.ErrInvalid, words)
		}
		sig, err := sandbox.ParseSignal(words[0])
		if err != nil {
			return err
		}
		p, err := at.process(ctx, t.backend)
		if err != nil {
			return err
		}
		return p.Signal(ctx, sig)
	}
}

// winsizeLine is what a line written to procs/PID/winsize does: resize
// the process's tty to ROWS COLS.
func winsizeLine(t *tree, at ref) func(ctx context.Context, words []string) error {
	return func(ctx context.Context, words []string) error {
		rows, cols, err := parseWinsize(words)
		if err != nil {
			return err
		}
		p, err := at.process(ctx, t.backend)
		if err != nil {
			return err
		}
		return p.Resize(ctx, rows, cols)
	}
}

// winsizeFile is what reading procs/PID/winsize shows: "ROWS COLS".
type winsizeFile struct {
	b  Backend
	at ref
}

func (f winsizeFile) Generate(ctx context.Context, buf *bytes.Buffer) error {
	p, err := f.at.process(ctx, f.b)
	if err != nil {
		return err
	}
	rows, cols := p.Winsize()
	fmt.Fprintf(buf, "%d %d\n", rows, cols)
	return nil
}

// stdinFile is procs/PID/stdin. Each open for writing is a writer of the
// process's stdin (OpenStdin), each write(2) goes on in order
// (WriteStdin), and the release of the open (its last close) ends the
// writer (ReleaseStdin); when the last writer is gone the process reads
// EOF. The kernel sends the release after close(2) returns, so the EOF
// follows the close shortly, not at once.
type stdinFile struct {
	fusefs.Inode
	t  *tree
	at ref
}

var (
	_ = (fusefs.NodeOpener)((*stdinFile)(nil))
	_ = (fusefs.NodeGetattrer)((*stdinFile)(nil))
	_ = (fusefs.NodeSetattrer)((*stdinFile)(nil))
	_ = (fusefs.FileWriter)((*stdinHandle)(nil))
	_ = (fusefs.FileReleaser)((*stdinHandle)(nil))
)

func (f *stdinFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		return nil, 0, syscall.EACCES
	}
	p, err := f.at.process(ctx, f.t.backend)
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	p.OpenStdin()
	return &stdinHandle{f: f, p: p}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *stdinFile) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeCtl
	f.t.times(&out.Attr)
	return 0
}

// Setattr accepts the truncation to 0 of `cat file > stdin`.
func (f *stdinFile) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && sz != 0 {
		return syscall.EINVAL
	}
	return f.Getattr(ctx, fh, out)
}

// stdinHandle is one writer of a process's stdin. mu keeps its writes in
// order (the kernel also serializes writes to one file).
type stdinHandle struct {
	f        *stdinFile
	p        Process
	mu       sync.Mutex
	released bool
}

// Write blocks while the guest takes no more input; Ctrl-C ends it.
func (h *stdinHandle) Write(ctx context.Context, data []byte, _ int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wctx, stop := h.f.t.waitContext(ctx)
	defer stop()
	n, err := h.p.WriteStdin(wctx, data)
	if err != nil && n == 0 {
		err = h.f.t.cause(wctx, err)
		h.f.t.log.WithFields(h.f.at.fields()).WithError(err).Debug("stdin write failed")
		return 0, errnoOf(err)
	}
	return uint32(n), 0
}

func (h *stdinHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return 0
	}
	h.released = true
	if err := h.p.ReleaseStdin(); err != nil {
		h.f.t.log.WithFields(h.f.at.fields()).WithError(err).Warn("stdin release")
	}
	return 0
}

// waitFile is procs/PID/wait: the first read blocks until the process
// has ended and its output is drained, then reads `exit CODE` or `signal
// NAME`. Open does not block, so `cat wait` can be interrupted in read,
// and once the process is gone every read returns at once. st_size is 0
// until the handle knows the result; readers go to EOF anyway.
type waitFile struct {
	fusefs.Inode
	t  *tree
	at ref
}

var (
	_ = (fusefs.NodeOpener)((*waitFile)(nil))
	_ = (fusefs.NodeGetattrer)((*waitFile)(nil))
	_ = (fusefs.FileReader)((*waitHandle)(nil))
)

func (f *waitFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	p, err := f.at.process(ctx, f.t.backend)
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	return &waitHandle{t: f.t, p: p}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *waitFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeRead
	f.t.times(&out.Attr)
	if h, ok := fh.(*waitHandle); ok {
		h.mu.Lock()
		out.Size = uint64(len(h.data))
		h.mu.Unlock()
	}
	return 0
}

type waitHandle struct {
	t    *tree
	p    Process
	mu   sync.Mutex
	data []byte // nil until Wait returned
}

func (h *waitHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.data == nil {
		wctx, stop := h.t.waitContext(ctx)
		es, err := h.p.Wait(wctx)
		err = h.t.cause(wctx, err)
		stop()
		if err != nil {
			return nil, errnoOf(err)
		}
		h.data = []byte(es.String() + "\n")
	}
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(h.data)))
	return fuse.ReadResultData(h.data[off:end]), 0
}
