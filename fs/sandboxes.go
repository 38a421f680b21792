package fs

import (
	"context"
	"sort"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/katafs/katafs/sandbox"
)

// sandboxesDir is /kata/sandboxes: readdir is Backend.List, a lookup is
// Backend.Sandbox, so sandboxes made before a restart are found.
type sandboxesDir struct {
	fusefs.Inode
	t *tree
}

var (
	_ = (fusefs.NodeLookuper)((*sandboxesDir)(nil))
	_ = (fusefs.NodeReaddirer)((*sandboxesDir)(nil))
	_ = (fusefs.NodeGetattrer)((*sandboxesDir)(nil))
)

// Lookup finds a sandbox. A name that is no valid ID names nothing
// (ENOENT, as for any absent name; EINVAL is for commands). The entry is
// not cached, so a deleted sandbox is gone from the next path walk on.
func (d *sandboxesDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if sandbox.ValidID(name) != nil {
		return nil, syscall.ENOENT
	}
	if _, err := d.t.backend.Sandbox(ctx, name); err != nil {
		return nil, errnoOf(err)
	}
	out.Mode = modeDir
	d.t.times(&out.Attr)
	out.SetEntryTimeout(0)
	dir := newSandboxDir(d.t, name)
	return d.NewInode(ctx, dir, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoOf(dir.path)}), 0
}

func (d *sandboxesDir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	ids, err := d.t.backend.List(ctx)
	if err != nil {
		return nil, errnoOf(err)
	}
	sort.Strings(ids)
	list := make([]fuse.DirEntry, 0, len(ids))
	for _, id := range ids {
		if sandbox.ValidID(id) != nil {
			d.t.log.WithField("sandbox", id).Warn("backend listed an invalid sandbox ID; not shown")
			continue
		}
		list = append(list, fuse.DirEntry{Name: id, Mode: syscall.S_IFDIR, Ino: inoOf(sandboxPath(id))})
	}
	return fusefs.NewListDirStream(list), 0
}

func (d *sandboxesDir) Getattr(ctx context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = modeDir
	d.t.times(&out.Attr)
	return 0
}

func sandboxPath(id string) string { return "/sandboxes/" + id }

// sandboxEntries is sandboxes/ID. events, containers/, devices,
// interfaces and routes slot in here.
func sandboxEntries(t *tree, id string) []entry {
	sf := sandboxFile{t.backend, id}
	return []entry{
		{"config", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: configFile{sf}}
		}},
		{"console", modeStream, func() fusefs.InodeEmbedder {
			return &streamFile{t: t, open: func(ctx context.Context) (stream, error) {
				s, err := t.backend.Sandbox(ctx, id)
				if err != nil {
					return stream{}, err
				}
				return stream{path: s.ConsolePath(), done: s.Done()}, nil
			}}
		}},
		{"ctl", modeCtl, func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, dir: id, cmds: sandboxCommands(t, id)}
		}},
		{"errors", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: errorsFile{t: t, dir: id}}
		}},
		{"status", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: statusFile{sandboxFile: sf}}
		}},
		{"status.json", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: statusFile{sandboxFile: sf, asJSON: true}}
		}},
	}
}

func newSandboxDir(t *tree, id string) *tableDir {
	return &tableDir{
		t:       t,
		path:    sandboxPath(id),
		entries: sandboxEntries(t, id),
		exists: func(ctx context.Context) error {
			_, err := t.backend.Sandbox(ctx, id)
			return err
		},
	}
}
