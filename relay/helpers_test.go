package relay

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

func newSpool(t testing.TB, limit int64) *Spool {
	t.Helper()
	s, err := OpenSpool(filepath.Join(t.TempDir(), "p1", "stdout"), limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fillAsync runs Fill in the background; the returned channel yields its
// result.
func fillAsync(s *Spool, r io.Reader) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Fill(r) }()
	return ch
}

// pattern is n deterministic pseudo-random bytes.
func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readAll reads the whole stream from off like `cat`, until EOF.
func readAll(ctx context.Context, s *Spool, off int64, bufSize int, w io.Writer) (int64, error) {
	buf := make([]byte, bufSize)
	var total int64
	for {
		n, err := s.ReadAt(ctx, buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			off += int64(n)
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// within fails the test if ch yields nothing within d.
func within[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
	var zero T
	return zero
}

// chunkReader hands out data in fixed-size reads, as a yamux stream would.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.chunk, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}
