package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadAt reads the stream at off like a growing log. Below Size it
// returns at once what is there, up to len(p); the dropped head reads as
// NUL bytes. At or past Size it waits until more arrives (and returns
// that), until the spool is done (0, io.EOF), until ctx ends (ctx.Err())
// or until Close (ErrClosed). Any number of readers may call it at once;
// none of them ever delays Fill.
func (s *Spool) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("spool %s: read at %d: %w", s.path, off, ErrInvalid)
	}
	if len(p) == 0 {
		return 0, nil
	}
	size, dropped, err := s.waitBeyond(ctx, off)
	if err != nil {
		return 0, err
	}
	n := int(min(int64(len(p)), size-off))
	p = p[:n]
	z := s.zeroDropped(p, off, dropped)
	if z < n {
		m, err := s.f.ReadAt(p[z:], off+int64(z))
		if m < n-z {
			// Only an outside hand shortens the file below size.
			if errors.Is(err, os.ErrClosed) {
				return 0, fmt.Errorf("spool %s: %w", s.path, ErrClosed)
			}
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("spool %s: read at %d: %w", s.path, off, err)
		}
	}
	// Fill may have dropped (and punched) part of what was just read;
	// report it as dropped, consistently, rather than half punched.
	s.mu.Lock()
	dropped = s.dropped
	s.mu.Unlock()
	s.zeroDropped(p, off, dropped)
	return n, nil
}

// zeroDropped clears the part of p (read at off) below dropped and says
// how long it is.
func (s *Spool) zeroDropped(p []byte, off, dropped int64) int {
	if off >= dropped {
		return 0
	}
	z := int(min(int64(len(p)), dropped-off))
	clear(p[:z])
	return z
}

// waitBeyond waits until Size > off and returns Size and Dropped then.
func (s *Spool) waitBeyond(ctx context.Context, off int64) (size, dropped int64, err error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, 0, fmt.Errorf("spool %s: %w", s.path, ErrClosed)
		case off < s.size:
			size, dropped = s.size, s.dropped
			s.mu.Unlock()
			return size, dropped, nil
		case s.done:
			s.mu.Unlock()
			return 0, 0, io.EOF
		}
		ch := s.notify
		s.armed = true
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

// Wait blocks until the spool is done, ctx ends (ctx.Err()) or the spool
// is closed (ErrClosed).
func (s *Spool) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		switch {
		case s.done:
			s.mu.Unlock()
			return nil
		case s.closed:
			s.mu.Unlock()
			return fmt.Errorf("spool %s: %w", s.path, ErrClosed)
		}
		ch := s.notify
		s.armed = true
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
