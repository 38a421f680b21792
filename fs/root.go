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
	modeStream = syscall.S_IFREG | 0o444
)

// rootEntries is /kata. factory/ slots in here.
func rootEntries(t *tree) []entry {
	return []entry{
		{"clone", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: cloneFile{t}, openOnly: true}
		}},
		{"ctl", modeCtl, func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, cmds: topCommands(t)}
		}},
		{"errors", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: errorsFile{t: t}}
		}},
		{"sandboxes", modeDir, func() fusefs.InodeEmbedder {
			return &sandboxesDir{t: t}
		}},
		{"version", modeRead, func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: versionFile{t.backend}}
		}},
	}
}
