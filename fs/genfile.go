package fs

import (
	"bytes"
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// generator makes a read-only file's content.
type generator interface {
	Generate(ctx context.Context, buf *bytes.Buffer) error
}

// genFile is a read-only file whose content is generated on open: each
// open handle reads its own snapshot.
type genFile struct {
	fusefs.Inode
	t   *tree
	gen generator
	// openOnly: generating has an effect (clone creates a sandbox), so
	// stat must not generate and reports size 0.
	openOnly bool
}

var (
	_ = (fusefs.NodeOpener)((*genFile)(nil))
	_ = (fusefs.NodeGetattrer)((*genFile)(nil))
	_ = (fusefs.FileReader)((*genHandle)(nil))
)

func (f *genFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	var buf bytes.Buffer
	if err := f.gen.Generate(ctx, &buf); err != nil {
		return nil, 0, errnoOf(err)
	}
	return &genHandle{data: buf.Bytes()}, fuse.FOPEN_DIRECT_IO, 0
}

// Getattr reports the size of the open handle's snapshot, or of fresh
// content when there is no handle, so `tail` and `ls -l` see true sizes.
func (f *genFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeRead
	f.t.times(&out.Attr)
	if h, ok := fh.(*genHandle); ok {
		out.Size = uint64(len(h.data))
		return 0
	}
	if f.openOnly {
		return 0
	}
	var buf bytes.Buffer
	if err := f.gen.Generate(ctx, &buf); err != nil {
		return errnoOf(err)
	}
	out.Size = uint64(buf.Len())
	return 0
}

// genHandle is one open of a genFile.
type genHandle struct {
	data []byte
}

func (h *genHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(h.data)))
	return fuse.ReadResultData(h.data[off:end]), 0
}
