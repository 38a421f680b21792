package fs

import (
	"context"
	"slices"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/katafs/katafs/sandbox"
)

// objectsDir is a directory of the backend's objects of one kind
// (sandboxes/, containers/, procs/) beside fixed entries (ctl): readdir
// lists the objects, a lookup fetches one, so objects made before a
// restart are found. Object entries are not cached, so a deleted object
// is gone from the next path walk on.
type objectsDir struct {
	fusefs.Inode
	t     *tree
	path  string
	kind  string // log field of the objects' IDs
	fixed []entry
	list  func(ctx context.Context) ([]string, error)
	// child fetches the object name (ENOENT if none) and returns its
	// directory.
	child func(ctx context.Context, name string) (*tableDir, error)
}

var (
	_ = (fusefs.NodeLookuper)((*objectsDir)(nil))
	_ = (fusefs.NodeReaddirer)((*objectsDir)(nil))
	_ = (fusefs.NodeGetattrer)((*objectsDir)(nil))
)

// Lookup finds a fixed entry or an object. A name that is no valid ID
// names nothing (ENOENT, as for any absent name; EINVAL is for commands).
func (d *objectsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if d.fixedEntry(name) {
		return lookupEntry(ctx, &d.Inode, d.t, d.path, d.fixed, name, out)
	}
	if sandbox.ValidID(name) != nil {
		return nil, syscall.ENOENT
	}
	dir, err := d.child(ctx, name)
	if err != nil {
		return nil, errnoOf(err)
	}
	out.Mode = modeDir
	d.t.times(&out.Attr)
	out.SetEntryTimeout(0)
	return d.NewInode(ctx, dir, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoOf(dir.path)}), 0
}

func (d *objectsDir) fixedEntry(name string) bool {
	return slices.ContainsFunc(d.fixed, func(e entry) bool { return e.name == name })
}

func (d *objectsDir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	ids, err := d.list(ctx)
	if err != nil {
		return nil, errnoOf(err)
	}
	slices.Sort(ids)
	list := make([]fuse.DirEntry, 0, len(d.fixed)+len(ids))
	for _, e := range d.fixed {
		list = append(list, fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: inoOf(d.path + "/" + e.name)})
	}
	for _, id := range ids {
		if sandbox.ValidID(id) != nil || d.fixedEntry(id) {
			d.t.log.WithField(d.kind, id).Warnf("backend listed an invalid %s ID; not shown", d.kind)
			continue
		}
		list = append(list, fuse.DirEntry{Name: id, Mode: syscall.S_IFDIR, Ino: inoOf(d.path + "/" + id)})
	}
	return fusefs.NewListDirStream(list), 0
}

func (d *objectsDir) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeDir
	d.t.times(&out.Attr)
	return 0
}
