// Package relay carries process stdio between guest processes and the
// host: a Spool drains one output stream (stdout, stderr, console)
// continuously into a file under the state directory, so the guest never
// stalls on a slow or absent reader, and serves any number of readers the
// way the "Stream files" of the tree behave; a Stdin serialises the
// writers of one process's stdin stream and sends EOF when the last one
// is gone.
//
// # Spool files
//
// A spool's offsets are the stream's offsets: byte N of the stream is byte
// N of the file, for ever, so st_size of the file is Size and a reader's
// offset stays meaningful however long it waits. Fill appends with pwrite
// and publishes each chunk under Spool.mu; ReadAt reads with pread outside
// the lock, so readers never delay Fill. A reader at the end waits on a
// channel that Fill closes (and replaces) when it publishes, when the
// spool is done and on Close: no polling.
//
// Retention: past the limit the oldest bytes are dropped. Dropped moves
// first, then fallocate(PUNCH_HOLE|KEEP_SIZE) frees the head in 64 KiB
// units, so the disk holds at most limit+64 KiB while the apparent size
// keeps growing (a sparse file).
//
// Reading the dropped head: the bytes below Dropped read as NUL, exactly
// what the punched file itself holds. pread cannot move a reader's offset
// forward, and every alternative breaks something that matters more:
//   - returning the retained bytes for a lower offset would make one
//     offset mean two different byte sequences and break tail -f, dd skip=,
//     and any reader that resumes where it stopped;
//   - an error (EIO) would make a plain `cat stdout` fail outright once a
//     long-running process passes the limit, with nothing printed;
//   - a made-up text ("[N bytes dropped]") cannot fill a range of any size
//     and would be taken for process output.
//
// So `cat` prints the retained output preceded by NULs, which a terminal
// shows as nothing; `tail -c`, `tail -f` and `less +G` never touch the
// hole; `grep -a` (or `tr -d '\0'`) reads through it. Dropped says where
// the retained data starts, so a reader that cares can skip the hole with
// one seek. A read that straddles the boundary returns NULs then data, and
// a read that raced with a drop reports the newly dropped part as NUL too,
// never half-punched garbage.
//
// Restart: the data is not fsynced per chunk (it lives in the page cache,
// which outlives the daemon); a sidecar path+".meta" with Size and Dropped
// is written atomically (temp, fsync, rename, directory fsync) at most
// every second while filling, in the background, and at the end and on
// Close. OpenSpool of an existing file takes Size = max(file size,
// sidecar size) (a host crash may lose the unsynced tail: offsets already
// handed out are kept and the lost bytes read as NUL) and Dropped = the
// larger of the sidecar's and the first data byte of the file (holes
// punched after the last save). A reopened spool is not done; a new Fill
// continues appending, and Done closes when that Fill ends.
//
// # Lock order
//
// sidecar.mu (serialises sidecar saves) before Spool.mu. Spool.mu is held
// only to read or publish fields, never across I/O or while blocking.
// Stdin.turn (a one-token channel: the right to write to the stream) before
// Stdin.mu, which is a leaf.
//
// # Errors
//
// Errors wrap the sentinels of errors.go: ErrClosed (Close or Remove came
// first, or came while waiting), ErrBusy (a second concurrent Fill),
// ErrInvalid (a negative offset or limit, Fill of a done spool). A context
// end is returned as ctx.Err() itself; the end of a done stream is io.EOF
// itself. Anything else is an I/O error from the file or the stream, wrapped
// with the spool's path.
package relay
