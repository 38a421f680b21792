package fs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/katafs/katafs/sandbox"
)

// ctlFile is a write-only control file: each line written is a command.
type ctlFile struct {
	fusefs.Inode
	t    *tree
	dir  string // errors file: "" top level, else the sandbox ID
	cmds commands
}

var (
	_ = (fusefs.NodeOpener)((*ctlFile)(nil))
	_ = (fusefs.NodeGetattrer)((*ctlFile)(nil))
	_ = (fusefs.NodeSetattrer)((*ctlFile)(nil))
	_ = (fusefs.FileWriter)((*ctlHandle)(nil))
	_ = (fusefs.FileFlusher)((*ctlHandle)(nil))
)

func (c *ctlFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	return &ctlHandle{c: c}, fuse.FOPEN_DIRECT_IO, 0
}

func (c *ctlFile) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeCtl
	c.t.times(&out.Attr)
	return 0
}

// Setattr accepts truncation to 0, the O_TRUNC of `echo cmd > ctl`, and
// ignores mode and time changes.
func (c *ctlFile) Setattr(ctx context.Context, _ fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && sz != 0 {
		return syscall.EINVAL
	}
	return c.Getattr(ctx, nil, out)
}

// run executes one line and reports its failure.
func (c *ctlFile) run(ctx context.Context, line []byte) error {
	ctx, stop := callerContext(ctx)
	defer stop()
	words, err := splitLine(string(line))
	if err != nil {
		c.t.report(c.dir, c.dir, "ctl", err)
		return err
	}
	if len(words) == 0 {
		return nil
	}
	subject := c.dir
	cmd, err := c.cmds.lookup(words[0])
	if err == nil {
		if cmd.names && len(words) > 1 && subject == "" {
			subject = words[1]
		}
		err = cmd.run(ctx, words[1:])
	}
	if err != nil {
		c.t.report(c.dir, subject, commandText(words), err)
	}
	return err
}

// maxCommandText bounds how much of a failed command its errors line repeats.
const maxCommandText = 120

// commandText is the command as its errors line names it: the words as
// written (so `create s9 memory=lots`, not just `create`), cut if long.
func commandText(words []string) string {
	s := strings.Join(words, " ")
	if len(s) > maxCommandText {
		s = s[:maxCommandText] + "..."
	}
	return s
}

// ctlHandle is one open of a ctl file. It keeps the unfinished last line
// between writes; mu also makes the commands written through one open
// run one at a time, in order.
type ctlHandle struct {
	c  *ctlFile
	mu sync.Mutex
	// partial is the line being written, without newline.
	partial []byte
	// skipping: the current line overflowed maxLine and was reported;
	// drop the rest of it.
	skipping bool
}

// Write runs every complete line in data in order; the first failure
// stops the rest and fails the write with its errno. An unfinished last
// line waits for more data or for Flush (close).
func (h *ctlHandle) Write(ctx context.Context, data []byte, _ int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := uint32(len(data))
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		seg := data
		if i >= 0 {
			seg, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if h.skipping {
			// The writer already got EINVAL for this line.
			h.skipping = i < 0
			return 0, syscall.EINVAL
		}
		if len(h.partial)+len(seg) > maxLine {
			err := fmt.Errorf("%w: line longer than %d bytes", sandbox.ErrInvalid, maxLine)
			h.c.t.report(h.c.dir, h.c.dir, "ctl", err)
			h.partial = nil
			h.skipping = i < 0
			return 0, errnoOf(err)
		}
		if i < 0 {
			h.partial = append(h.partial, seg...)
			break
		}
		line := append(h.partial, seg...)
		h.partial = nil
		if err := h.c.run(ctx, line); err != nil {
			return 0, errnoOf(err)
		}
	}
	return n, 0
}

// Flush runs a last line written without newline (printf 'start' > ctl),
// so its error reaches the writer's close.
func (h *ctlHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.skipping = false
	if len(h.partial) == 0 {
		return 0
	}
	line := h.partial
	h.partial = nil
	return errnoOf(h.c.run(ctx, line))
}
