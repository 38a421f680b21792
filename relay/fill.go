package relay

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

const (
	// fillBuf is the read size of Fill: large, so a fast producer costs
	// few syscalls.
	fillBuf = 256 << 10
	// punchAlign is the granularity of freeing the dropped head: holes
	// are punched in whole 64 KiB units, so the file holds at most this
	// much beyond the limit, and a punch is one syscall per 64 KiB or more.
	punchAlign = 64 << 10
)

// headState is what Fill's goroutine knows about freeing the head.
type headState struct {
	punched int64 // blocks below this offset are freed
	warned  bool  // a punch failure was logged
}

// Fill copies r into the spool until r ends, appending at Size. Each chunk
// written makes Size grow and wakes blocked readers at once; retention
// drops the oldest bytes past the limit. When r ends (EOF or error) the
// sidecar is saved and Done is closed. It returns r's error, nil at EOF,
// or the error that stopped the write (a full disk, ErrClosed): then the
// caller should close r, so the guest sees a broken stream rather than
// stalling.
//
// There is no fsync per chunk: the data reaches the page cache, which
// survives a daemon restart; the sidecar is saved at most every second and
// at the end.
func (s *Spool) Fill(r io.Reader) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("spool %s: fill: %w", s.path, ErrClosed)
	case s.filling:
		s.mu.Unlock()
		return fmt.Errorf("spool %s: fill: already filling: %w", s.path, ErrBusy)
	case s.done:
		s.mu.Unlock()
		return fmt.Errorf("spool %s: fill: spool is done: %w", s.path, ErrInvalid)
	}
	s.filling = true
	s.mu.Unlock()

	err := s.copyFrom(r)
	if serr := s.meta.save(s, false); serr != nil {
		s.log().WithError(serr).Warn("relay: saving spool sidecar")
	}
	s.mu.Lock()
	s.filling = false
	s.finishLocked()
	s.mu.Unlock()
	return err
}

func (s *Spool) copyFrom(r io.Reader) error {
	buf := make([]byte, fillBuf)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := s.append(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// append writes p at the end and publishes it.
func (s *Spool) append(p []byte) error {
	s.mu.Lock()
	off, closed := s.size, s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("spool %s: %w", s.path, ErrClosed)
	}
	if _, err := s.f.WriteAt(p, off); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("spool %s: %w", s.path, ErrClosed)
		}
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.mu.Lock()
	s.size = off + int64(len(p))
	s.wakeLocked()
	s.mu.Unlock()
	s.retain()
	s.meta.saveSoon(s)
	return nil
}

// retain drops the head past the limit: first dropped moves (so readers
// stop reading that range from the file), then the blocks are freed.
// Called by Fill's goroutine, or by OpenSpool before any Fill.
func (s *Spool) retain() {
	s.mu.Lock()
	if s.size-s.dropped > s.limit {
		s.dropped = s.size - s.limit
	}
	end := s.dropped &^ (punchAlign - 1)
	closed := s.closed
	s.mu.Unlock()
	if closed || end <= s.head.punched {
		return
	}
	err := punchHole(s.f, s.head.punched, end-s.head.punched)
	if err != nil && !errors.Is(err, os.ErrClosed) && !s.head.warned {
		// Not fatal: dropped bytes read as NUL whatever the disk holds;
		// only the space is not given back.
		s.head.warned = true
		s.log().WithError(err).Warn("relay: cannot free the dropped head of a spool")
	}
	s.head.punched = end
}

func (s *Spool) log() *logrus.Entry { return logrus.WithField("spool", s.path) }
