package relay

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// diskBytes is what the file really occupies.
func diskBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestRetention(t *testing.T) {
	const limit = 1 << 20
	s := newSpool(t, limit)
	data := pattern(5<<20, 4)
	// Disk use is checked while filling, not only at the end.
	var peak int64
	r := &watchReader{r: &chunkReader{data: data, chunk: 100_003}, every: func() {
		peak = max(peak, diskBytes(t, s.Path()))
	}}
	if err := s.Fill(r); err != nil {
		t.Fatal(err)
	}
	if s.Size() != 5<<20 || s.Dropped() != 4<<20 {
		t.Fatalf("Size %d Dropped %d, want %d and %d", s.Size(), s.Dropped(), 5<<20, 4<<20)
	}
	if fi, _ := os.Stat(s.Path()); fi.Size() != 5<<20 {
		t.Fatalf("st_size %d, want the logical size %d", fi.Size(), 5<<20)
	}
	// Near the limit: one punch unit, one chunk and a block of slack.
	slack := int64(punchAlign + 100_003 + 4096)
	if used := diskBytes(t, s.Path()); used > limit+slack || peak > limit+slack {
		t.Fatalf("disk use %d (peak %d), want at most %d", used, peak, limit+slack)
	}
	ctx := context.Background()

	// The retained tail reads back exact.
	tail := make([]byte, limit)
	if n, err := s.ReadAt(ctx, tail, 4<<20); n != limit || err != nil || !bytes.Equal(tail, data[4<<20:]) {
		t.Fatalf("tail: %d, %v, equal %v", n, err, bytes.Equal(tail, data[4<<20:]))
	}
	// The dropped head reads as NUL, offsets unchanged.
	head := make([]byte, 4096)
	if n, err := s.ReadAt(ctx, head, 1000); n != 4096 || err != nil || !bytes.Equal(head, make([]byte, 4096)) {
		t.Fatalf("dropped head: %d, %v, all NUL %v", n, err, bytes.Equal(head, make([]byte, 4096)))
	}
	// A read across the boundary: NULs, then the data.
	cross := make([]byte, 200)
	if n, err := s.ReadAt(ctx, cross, 4<<20-100); n != 200 || err != nil {
		t.Fatalf("cross: %d, %v", n, err)
	}
	if !bytes.Equal(cross[:100], make([]byte, 100)) || !bytes.Equal(cross[100:], data[4<<20:4<<20+100]) {
		t.Fatal("cross: want 100 NULs then the first retained bytes")
	}
	// `cat` from 0: st_size bytes, NULs then exactly the retained tail.
	var all bytes.Buffer
	if _, err := readAll(ctx, s, 0, 128<<10, &all); err != nil || all.Len() != 5<<20 {
		t.Fatalf("cat: %d bytes, %v", all.Len(), err)
	}
	if !bytes.Equal(all.Bytes()[4<<20:], data[4<<20:]) || bytes.IndexFunc(all.Bytes()[:4<<20], func(r rune) bool { return r != 0 }) >= 0 {
		t.Fatal("cat: want 4 MiB of NULs, then the retained tail")
	}
}

// watchReader calls every before each read.
type watchReader struct {
	r     io.Reader
	every func()
}

func (w *watchReader) Read(p []byte) (int, error) {
	w.every()
	return w.r.Read(p)
}

// A reader well behind the head while it is dropped gets NULs, never a
// mix of old bytes and punched ones, and never an error.
func TestReadRacingDrop(t *testing.T) {
	s := newSpool(t, 256<<10)
	data := pattern(8<<20, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bad := make(chan string, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for ctx.Err() == nil {
			off := max(s.Dropped()-32<<10, 0)
			n, err := s.ReadAt(ctx, buf, off)
			if err != nil {
				return
			}
			// Each byte is either NUL (dropped) or the stream's byte,
			// and no stream byte follows a NUL that replaced one.
			seenData := false
			for i := range n {
				o := off + int64(i)
				switch {
				case buf[i] == data[o]:
					seenData = seenData || buf[i] != 0
				case buf[i] == 0 && !seenData:
				default:
					bad <- "byte mismatch"
					return
				}
			}
		}
	}()
	if err := s.Fill(&chunkReader{data: data, chunk: 16 << 10}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case msg := <-bad:
		t.Fatal(msg)
	case <-time.After(10 * time.Millisecond):
	}
}
