package fs

import (
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// File modes of the tree's kinds of node.
const (
	modeDir    = syscall.S_IFDIR | 0o555
	modeRead   = syscall.S_IFREG | 0o444
	modeCtl    = syscall.S_IFREG | 0o200
	modeRW     = syscall.S_IFREG | 0o644
	modeStream = syscall.S_IFREG | 0o444
)

// rootEntries is /kata. factory/ slots in here.
func rootEntries(t *tree) []entry {
	return []entry{
		{name: "clone", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: cloneFile{t}, openOnly: true}
		}},
		{name: "ctl", mode: modeCtl, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, cmds: topCommands(t)}
		}},
		{name: "errors", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: errorsFile{t: t}}
		}},
		{name: "sandboxes", mode: modeDir, make: func() fusefs.InodeEmbedder {
			return newSandboxesDir(t)
		}},
		{name: "version", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: versionFile{t.backend}}
		}},
	}
}
