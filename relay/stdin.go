package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Stdin serialises writes from several file handles to one process stdin
// stream and closes it when the last writer is gone, as a pipe would.
type Stdin struct {
	w     io.WriteCloser
	turn  chan struct{} // holds a token while a Write (or the final close) runs
	gone  chan struct{} // closed by Close
	once  sync.Once     // closes gone
	mu    sync.Mutex    // guards the fields below; a leaf
	users int           // open writers
	shut  bool          // w was closed (EOF sent or forced)
}

// NewStdin wraps w, the stream to the guest process's stdin; w.Close is
// EOF for the process. Nothing is closed until a writer has opened and
// released, or Close is called.
func NewStdin(w io.WriteCloser) *Stdin {
	return &Stdin{w: w, turn: make(chan struct{}, 1), gone: make(chan struct{})}
}

// Open counts a writer that opened the stdin file.
func (s *Stdin) Open() {
	s.mu.Lock()
	s.users++
	s.mu.Unlock()
}

// deadliner is what yamux streams and net.Conn offer to cut a blocked
// write short.
type deadliner interface {
	SetWriteDeadline(time.Time) error
}

// Write writes all of p to the process, after any Write that started
// before it and before any that starts after it. A ctx end while waiting
// for the turn returns ctx.Err() with nothing written; a ctx end while
// the guest is not reading returns ctx.Err() with the count written so
// far, if w supports write deadlines (yamux streams and net.Conn do);
// otherwise the write finishes first.
func (s *Stdin) Write(ctx context.Context, p []byte) (int, error) {
	select {
	case s.turn <- struct{}{}:
	case <-s.gone:
		return 0, fmt.Errorf("stdin: %w", ErrClosed)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-s.turn }()
	s.mu.Lock()
	shut := s.shut
	s.mu.Unlock()
	if shut {
		return 0, fmt.Errorf("stdin: %w", ErrClosed)
	}
	d, ok := s.w.(deadliner)
	if !ok {
		return s.w.Write(p)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		d.SetWriteDeadline(time.Now())
	})
	n, err := s.w.Write(p)
	if !stop() {
		// The deadline was set (or is being set): wait for it and clear
		// it, so the next Write is not cut short.
		<-fired
		d.SetWriteDeadline(time.Time{})
		if err != nil && ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	if err != nil {
		if s.isShut() || errors.Is(err, os.ErrClosed) {
			return n, fmt.Errorf("stdin: %w: %w", ErrClosed, err)
		}
		return n, fmt.Errorf("stdin: %w", err)
	}
	return n, nil
}

func (s *Stdin) isShut() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shut
}

// Release counts a writer that closed the stdin file. The last one closes
// w, after any Write in flight, which is EOF for the process.
func (s *Stdin) Release() error {
	s.mu.Lock()
	if s.users == 0 { // unmatched: nothing to release
		s.mu.Unlock()
		return nil
	}
	s.users--
	last := s.users == 0
	s.mu.Unlock()
	if !last {
		return nil
	}
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-s.gone:
		return nil
	}
	s.mu.Lock()
	if s.users > 0 || s.shut {
		// Someone opened again while we waited, or Close won.
		s.mu.Unlock()
		return nil
	}
	s.shut = true
	s.mu.Unlock()
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("stdin: close: %w", err)
	}
	return nil
}

// Close closes w at once (the process is gone), cutting short a Write
// in flight; later Writes return ErrClosed.
func (s *Stdin) Close() error {
	s.once.Do(func() { close(s.gone) })
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return nil
	}
	s.shut = true
	s.mu.Unlock()
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("stdin: close: %w", err)
	}
	return nil
}
