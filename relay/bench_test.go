package relay

import (
	"context"
	"io"
	"testing"
)

// BenchmarkFill: stream bytes into a spool in yamux-sized reads, at the
// default retention (so the head is dropped and punched too).
func BenchmarkFill(b *testing.B) {
	data := pattern(32<<20, 8)
	s := newSpool(b, 0)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := s.copyFrom(&chunkReader{data: data, chunk: 256 << 10}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFillSmallWrites: line-sized reads, the cost per chunk.
func BenchmarkFillSmallWrites(b *testing.B) {
	data := pattern(4<<20, 9)
	s := newSpool(b, 0)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := s.copyFrom(&chunkReader{data: data, chunk: 4 << 10}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAt: 128 KiB reads (a FUSE read) of retained data.
func BenchmarkReadAt(b *testing.B) {
	data := pattern(32<<20, 10)
	s := newSpool(b, 0)
	if err := s.Fill(&chunkReader{data: data, chunk: 256 << 10}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	ctx := context.Background()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	var off int64
	for b.Loop() {
		n, err := s.ReadAt(ctx, buf, off)
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		off += int64(n)
		if off >= int64(len(data)) {
			off = 0
		}
	}
}
