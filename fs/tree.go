package fs

import (
	"context"
	"fmt"
	"hash/fnv"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
)

// tree is what every node shares. Immutable after NewRoot; the error logs
// lock themselves.
type tree struct {
	backend Backend
	log     *logrus.Entry
	errs    *errorLogs
	now     func() time.Time
	mounted time.Time
	// stopping is closed when the daemon shuts down: waiting stream
	// reads end.
	stopping chan struct{}
}

// report records a failed command in the errors file of dir (a
// ref.errorsDir) and in the log, with fields naming what the command was
// about.
func (t *tree) report(dir string, fields logrus.Fields, cmd string, err error) {
	t.errs.get(dir).add(fmt.Sprintf("%s %s: %s", t.now().Format(time.RFC3339), cmd, err))
	t.log.WithFields(fields).WithFields(logrus.Fields{"command": cmd, "errno": errnoOf(err).Error()}).
		WithError(err).Warn("command failed")
}

// Cache lifetimes handed to the kernel.
const (
	// staticEntry is for names that exist as long as their directory.
	staticEntry = time.Second
	// A sandbox directory's entry is not cached (timeout 0) so that a
	// deleted sandbox disappears at once.
)

// entry is one row of a directory table.
type entry struct {
	name string
	mode uint32 // S_IFxxx | permissions
	make func() fusefs.InodeEmbedder
	// present, when set, says whether the entry is there now (a tty
	// process has no stderr); such an entry is not cached.
	present func(ctx context.Context) (bool, error)
}

// shown reports whether e is in its directory now.
func (e entry) shown(ctx context.Context) (bool, error) {
	if e.present == nil {
		return true, nil
	}
	return e.present(ctx)
}

// tableDir is a directory whose children come from a table. exists, when
// set, tells whether the directory is still there (a deleted sandbox).
type tableDir struct {
	fusefs.Inode
	t       *tree
	path    string // names the directory for inode numbers
	entries []entry
	exists  func(ctx context.Context) error
}

var (
	_ = (fusefs.NodeLookuper)((*tableDir)(nil))
	_ = (fusefs.NodeReaddirer)((*tableDir)(nil))
	_ = (fusefs.NodeGetattrer)((*tableDir)(nil))
)

func (d *tableDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return lookupEntry(ctx, &d.Inode, d.t, d.path, d.entries, name, out)
}

// lookupEntry finds name in the table entries of the directory parent,
// whose tree path is path.
func lookupEntry(ctx context.Context, parent *fusefs.Inode, t *tree, path string, entries []entry, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	for _, e := range entries {
		if e.name != name {
			continue
		}
		if ok, err := e.shown(ctx); err != nil || !ok {
			if err != nil {
				return nil, errnoOf(err)
			}
			return nil, syscall.ENOENT
		}
		out.Mode = e.mode
		t.times(&out.Attr)
		if e.present == nil {
			out.SetEntryTimeout(staticEntry)
		}
		return parent.NewInode(ctx, e.make(), fusefs.StableAttr{Mode: e.mode & syscall.S_IFMT, Ino: inoOf(path + "/" + name)}), 0
	}
	return nil, syscall.ENOENT
}

func (d *tableDir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	if d.exists != nil {
		if err := d.exists(ctx); err != nil {
			return nil, errnoOf(err)
		}
	}
	list := make([]fuse.DirEntry, 0, len(d.entries))
	for _, e := range d.entries {
		if ok, err := e.shown(ctx); err != nil {
			return nil, errnoOf(err)
		} else if !ok {
			continue
		}
		list = append(list, fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: inoOf(d.path + "/" + e.name)})
	}
	return fusefs.NewListDirStream(list), 0
}

func (d *tableDir) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeDir
	d.t.times(&out.Attr)
	return 0
}

// times stamps attributes with the mount time.
func (t *tree) times(a *fuse.Attr) {
	a.SetTimes(&t.mounted, &t.mounted, &t.mounted)
}

// inoOf derives a stable inode number from a path in the tree, below the
// range go-fuse numbers automatically (from 2^63), so that looking a name
// up again yields the node the kernel already knows.
func inoOf(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	ino := h.Sum64() &^ (1 << 63)
	if ino < 2 {
		ino += 2
	}
	return ino
}
