package fs

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/katafs/katafs/sandbox"
	"github.com/sirupsen/logrus"
)

// ctlFile is a control file: each line written is a command. A ctl
// file has a verb table (cmds); a file that takes one kind of line
// (signal, winsize) has line instead. A file with a name (winsize, the
// list files devices, interfaces, routes) is named by it in errors lines. With gen it can be read too, and read opens get gen's content.
type ctlFile struct {
	fusefs.Inode
	t *tree
	// at is what the file acts on: its failures go to at's errors file
	// (ref.errorsDir) and log with at's fields.
	at   ref
	cmds commands
	line func(ctx context.Context, words []string) error
	name string
	gen  generator
}

var (
	_ = (fusefs.NodeOpener)((*ctlFile)(nil))
	_ = (fusefs.NodeGetattrer)((*ctlFile)(nil))
	_ = (fusefs.NodeSetattrer)((*ctlFile)(nil))
	_ = (fusefs.FileWriter)((*ctlHandle)(nil))
	_ = (fusefs.FileFlusher)((*ctlHandle)(nil))
)

func (c *ctlFile) mode() uint32 {
	if c.gen != nil {
		return modeRW
	}
	return modeCtl
}

func (c *ctlFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		if c.gen == nil {
			return nil, 0, syscall.EACCES
		}
		var buf bytes.Buffer
		if err := c.gen.Generate(ctx, &buf); err != nil {
			return nil, 0, errnoOf(err)
		}
		return &genHandle{data: buf.Bytes()}, fuse.FOPEN_DIRECT_IO, 0
	}
	return &ctlHandle{c: c}, fuse.FOPEN_DIRECT_IO, 0
}

func (c *ctlFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = c.mode()
	c.t.times(&out.Attr)
	if h, ok := fh.(*genHandle); ok {
		out.Size = uint64(len(h.data))
	} else if c.gen != nil {
		var buf bytes.Buffer
		if err := c.gen.Generate(ctx, &buf); err != nil {
			return errnoOf(err)
		}
		out.Size = uint64(buf.Len())
	}
	return 0
}

// Setattr accepts truncation to 0, the O_TRUNC of `echo cmd > ctl`, and
// ignores mode and time changes.
func (c *ctlFile) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && sz != 0 {
		return syscall.EINVAL
	}
	return c.Getattr(ctx, fh, out)
}

// fileName names the file in errors lines about the text as a whole.
func (c *ctlFile) fileName() string {
	if c.name != "" {
		return c.name
	}
	return "ctl"
}

// report records a failure of the file's command cmd; subject adds log
// fields (the object a create names).
func (c *ctlFile) report(cmd string, subject logrus.Fields, err error) {
	f := c.at.fields()
	maps.Copy(f, subject)
	c.t.report(c.at.errorsDir(), f, cmd, err)
}

// run executes one line and reports its failure.
func (c *ctlFile) run(ctx context.Context, line []byte) error {
	ctx, stop := callerContext(ctx)
	defer stop()
	words, err := c.split(string(line))
	if err != nil {
		c.report(c.fileName(), nil, err)
		return err
	}
	if len(words) == 0 {
		return nil
	}
	if c.line != nil {
		if err := c.line(ctx, words); err != nil {
			c.report(c.name+" "+commandText(words), nil, err)
			return err
		}
		return nil
	}
	var subject logrus.Fields
	cmd, err := c.cmds.lookup(words[0])
	if err == nil {
		if cmd.names != "" && len(words) > 1 {
			subject = logrus.Fields{cmd.names: words[1]}
		}
		err = cmd.run(ctx, words[1:])
	}
	if err != nil {
		c.report(c.prefix()+commandText(words), subject, err)
	}
	return err
}

// prefix starts the errors line of a command written to a list file
// (devices add ...), as the sandbox's errors file is shared by its ctl,
// devices, interfaces and routes files.
func (c *ctlFile) prefix() string {
	if c.name == "" {
		return ""
	}
	return c.name + " "
}

// split checks that line is text and splits it into words. For a verb
// with jsonTail, a line `VERB ID {...}` keeps everything from the brace
// on as one word, so a JSON object needs no quoting.
func (c *ctlFile) split(line string) ([]string, error) {
	if err := checkText(line); err != nil {
		return nil, err
	}
	verb, rest, ok := cutBlank(line)
	if cmd, known := c.cmds[verb]; ok && known && cmd.jsonTail {
		id, tail, ok := cutBlank(rest)
		if ok && strings.HasPrefix(tail, "{") {
			return []string{verb, id, strings.TrimRight(tail, " \t")}, nil
		}
	}
	return tokenize(line)
}

// cutBlank returns the first blank-separated word of s and what follows
// it, both without surrounding blanks.
func cutBlank(s string) (word, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeft(s[i:], " \t"), true
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
			h.c.report(h.c.fileName(), nil, err)
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
