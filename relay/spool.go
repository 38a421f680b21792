package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/sirupsen/logrus"
)

// DefaultLimit is the retention of a spool opened with limit 0.
const DefaultLimit int64 = 64 << 20

// Spool is one output stream (stdout or stderr) of one process, kept in a
// file whose offsets are the stream's offsets: byte N of the stream is byte
// N of the file, for ever. See the package doc for the behaviour.
type Spool struct {
	path  string
	limit int64
	f     *os.File
	meta  sidecar

	mu      sync.Mutex // guards the fields below; a leaf
	size    int64      // bytes produced (logical, including dropped)
	dropped int64      // bytes below this offset read as NUL
	filling bool       // a Fill is running
	done    bool       // doneCh is closed
	closed  bool       // Close was called
	armed   bool       // a reader waits on notify
	notify  chan struct{}
	doneCh  chan struct{}

	head headState // Fill's goroutine only (OpenSpool before it)
}

// OpenSpool creates the spool file at path (and its parent directories) or
// reopens the one left there by an earlier daemon: Size and Dropped then
// come back from the file and its sidecar path+".meta", and the spool is
// not done, so a new Fill continues appending. limit is the retention in
// bytes, 0 for DefaultLimit.
func OpenSpool(path string, limit int64) (*Spool, error) {
	if limit < 0 {
		return nil, fmt.Errorf("spool %s: limit %d: %w", path, limit, ErrInvalid)
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	s := &Spool{
		path:   path,
		limit:  limit,
		f:      f,
		meta:   sidecar{path: path + ".meta"},
		notify: make(chan struct{}),
		doneCh: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	return s, nil
}

// recover sets size and dropped from the file and the sidecar and applies
// the retention limit to what is there.
func (s *Spool) recover() error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	m, err := s.meta.load()
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		// Written atomically, so this is damage from outside; the file
		// alone still gives a usable spool.
		logrus.WithField("spool", s.path).WithError(err).Warn("relay: ignoring unreadable spool sidecar")
	default:
		if m.Size > size {
			// The sidecar is fsynced, the data is not: after a host
			// crash the file can be shorter than offsets already
			// handed out. Keep them: the lost tail reads as NUL.
			if err := s.f.Truncate(m.Size); err != nil {
				return err
			}
			size = m.Size
		}
		s.dropped = min(m.Dropped, size)
	}
	// Holes punched after the last sidecar save are dropped too.
	if d := firstData(s.f, s.dropped, size); d > s.dropped {
		s.dropped = d
	}
	s.size = size
	s.retain() // punched is 0: frees the head again, whatever was done before

	return nil
}

// Path is the spool file's path.
func (s *Spool) Path() string { return s.path }

// Size is the number of bytes produced so far, dropped ones included; it
// is the file's size.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Dropped is the number of bytes at the head that are no longer retained;
// they read as NUL.
func (s *Spool) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Done is closed when the source has ended and every byte is in the file.
func (s *Spool) Done() <-chan struct{} { return s.doneCh }

// MarkDone says no Fill will come (a stream without a source, such as the
// stderr of a tty process). It closes Done at once, unless a Fill is
// running: then Done closes when that Fill ends, as it would anyway.
func (s *Spool) MarkDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.filling {
		s.finishLocked()
	}
}

// finishLocked closes Done once and wakes every waiting reader.
func (s *Spool) finishLocked() {
	if !s.done {
		s.done = true
		close(s.doneCh)
		s.wakeLocked()
	}
}

// wakeLocked wakes the readers waiting for a change (growth, done, close).
func (s *Spool) wakeLocked() {
	if s.armed {
		close(s.notify)
		s.notify = make(chan struct{})
		s.armed = false
	}
}

// Close saves the sidecar and releases the file. Blocked and later readers
// get ErrClosed; a running Fill fails at its next write. Done is not
// closed: the stream has not ended, this daemon just lets go of it.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wakeLocked()
	s.mu.Unlock()

	merr := s.meta.save(s, true)
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	if merr != nil {
		return fmt.Errorf("spool %s: %w", s.path, merr)
	}
	return nil
}

// Remove closes the spool and deletes its file and sidecar.
func (s *Spool) Remove() error {
	cerr := s.Close()
	var errs []error
	for _, p := range []string{s.path, s.meta.path} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("spool %s: remove: %w", s.path, errors.Join(errs...))
	}
	return cerr
}
