package relay

import (
	"os"

	"golang.org/x/sys/unix"
)

// punchHole frees the blocks of [off, off+n) and keeps the file size, so
// logical offsets stay file offsets. It goes through SyscallConn, never
// Fd, so a concurrent Close cannot hand the number to another file first.
func punchHole(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	if err := rc.Control(func(fd uintptr) {
		perr = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}); err != nil {
		return err
	}
	return perr
}

// firstData is the offset of the first data (not hole) byte at or after
// off, or size when there is none.
func firstData(f *os.File, off, size int64) int64 {
	rc, err := f.SyscallConn()
	if err != nil {
		return off
	}
	pos := off
	_ = rc.Control(func(fd uintptr) {
		p, err := unix.Seek(int(fd), off, unix.SEEK_DATA)
		switch {
		case err == unix.ENXIO: // nothing but hole up to the end
			pos = size
		case err != nil: // no SEEK_DATA here: assume data from off
		default:
			pos = min(p, size)
		}
	})
	return pos
}
