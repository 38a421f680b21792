// Package fs serves the Kata sandbox API as a FUSE file tree (go-fuse v2
// fs API). It parses ctl lines, renders status files, follows stream files
// and maps errors to errno; it calls the sandbox layer only through the
// small Backend and Sandbox interfaces declared in backend.go.
//
// # Shape
//
// Directories are tables (tree.go): each entry names a child and builds its
// node. The directories of objects (sandboxes/, containers/, procs/) are
// objectsDirs (objects.go): fixed entries (ctl) beside one directory per
// object the Backend lists. Nodes hold no sandbox, container or process
// object, only its IDs (a ref, ref.go), and fetch it from the Backend on
// every operation, so a deleted object makes its files fail with ENOENT
// and one made before a daemon restart is found. Read-only files get their content from one
// Generate(ctx, *bytes.Buffer) error, run once per open (a snapshot per
// handle), so they are unit tested without a mount.
//
// # List files
//
// sandboxes/ID/devices, interfaces and routes are ctlFiles with both a
// verb table and a generator (hotplug_cmds.go, lists.go): a read open
// renders the backend's list once (a snapshot per handle), a write runs
// commands as on any ctl file. fs checks syntax (kinds, absolute paths,
// IDs, interface names, CIDRs, MACs, MTUs, IPs) and passes canonical
// values on (a route's DEST as net.IPNet prints it, so `del` matches
// the list); whether a name is taken or a port free is the backend's
// call. List lines omit empty fields and single-quote values holding
// blanks or quotes, so they split back with the ctl tokenizer. Errors
// lines of these files start with the file's name (`devices add ...`),
// as they share the sandbox's errors file with its ctl.
//
// # Errors
//
// Below this package errors are Go errors wrapping the sandbox sentinels.
// errnoOf (errno.go) is the one place they become an errno. A failed ctl
// command is also appended to an errors file and logged: top-level and
// sandbox ctl to their directory's, containers/ctl to the sandbox's,
// CID/ctl, procs/ctl and a process's signal and winsize to the
// container's (ref.errorsDir). A failed stdin write only returns its
// errno (EPIPE once the process no longer reads).
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
// held while calling the Backend except the mutex of one open file handle:
// ctlHandle.mu serialises the commands written through one open file,
// stdinHandle.mu the writes of one stdin writer, waitHandle.mu the reads
// of one open wait file.
//
// # Processes
//
// stdin: each open for writing is OpenStdin, each write(2) one WriteStdin,
// the release of the open ReleaseStdin. The kernel sends the release
// after close(2) has returned, so the process sees EOF shortly after the
// last writer closed, not before close returns. wait blocks in its first
// read (not in open), so `cat wait` can be interrupted and a later open
// after the end reads at once; its st_size is 0 until a handle knows the
// result. A tty process has no stderr file.
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
// When Mount's context is done, reads waiting at the end of a stream, wait
// reads and blocked stdin writes fail with EIO (waitContext, stream.go), so
// a `cat console` does not keep the mount busy; then the tree is unmounted,
// or detached if still busy.
//
// # Concurrency
//
// The kernel holds a file's inode lock during a write and during the
// truncate of `>`, so commands written to one ctl file run one at a time
// even from different processes; ctl files of different directories, and
// clone, do not wait for each other.
package fs
