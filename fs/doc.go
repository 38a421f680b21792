// Package fs serves the Kata sandbox API as a FUSE file tree (go-fuse v2
// fs API). It parses ctl lines, renders status files, follows stream files
// and maps errors to errno; it calls the sandbox layer only through the
// small Backend and Sandbox interfaces declared in backend.go.
//
// # Shape
//
// Directories are tables (tree.go): each entry names a child and builds its
// node. Nodes hold no sandbox object, only the sandbox ID, and fetch the
// sandbox from the Backend on every operation, so a deleted sandbox makes
// its files fail with ENOENT and a sandbox made before a daemon restart is
// found. Read-only files get their content from one
// Generate(ctx, *bytes.Buffer) error, run once per open (a snapshot per
// handle), so they are unit tested without a mount.
//
// # Errors
//
// Below this package errors are Go errors wrapping the sandbox sentinels.
// errnoOf (errno.go) is the one place they become an errno. A failed ctl
// command is also appended to the errors file of its directory and logged.
// Plain VFS conditions (a write open of a read-only file) return their
// errno constant directly.
//
// # Kernel caches
//
// sandboxes/ID entries are returned with entry timeout 0, so every path
// walk asks the Backend again and a deleted sandbox's directory disappears
// without notify calls. Generated and stream files have attribute timeout
// 0 so st_size is current; file contents bypass the page cache
// (FOPEN_DIRECT_IO).
//
// # Locks
//
// Lock order: ctlHandle.mu, then errorLogs.mu, then errorLog.mu. No lock is
// held while calling the Backend except ctlHandle.mu, which serialises the
// commands written through one open file.
//
// # Contexts and interrupts
//
// Every Backend call gets the FUSE request's context, through
// callerContext (intr.go). go-fuse cancels a request's context when the
// kernel sends INTERRUPT, which it does once, for any signal the caller
// catches. callerContext passes the cancel on only when the caller has a
// signal pending other than SIGCHLD, SIGURG, SIGWINCH, SIGCONT or SIGPROF
// (so bash's SIGCHLD from a finished background job does not cancel a
// create) and keeps watching the caller's pending signals after a
// harmless interrupt. A canceled command returns EINTR. Contexts are
// never stored.
//
// # Shutdown
//
// When Mount's context is done, reads waiting at the end of a stream fail
// with EIO (so a `cat console` does not keep the mount busy), then the
// tree is unmounted, or detached if still busy.
//
// # Concurrency
//
// The kernel holds a file's inode lock during a write and during the
// truncate of `>`, so commands written to one ctl file run one at a time
// even from different processes; ctl files of different directories, and
// clone, do not wait for each other.
package fs
