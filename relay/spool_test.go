package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

func TestOrderingAndGrowth(t *testing.T) {
	s := newSpool(t, 0)
	pr, pw := io.Pipe()
	res := fillAsync(s, pr)
	ctx := context.Background()
	var want []byte
	for i, chunk := range []string{"hello ", "world\n", "third line\n"} {
		pw.Write([]byte(chunk))
		want = append(want, chunk...)
		// Write on an io.Pipe returns once Fill has read it; wait for
		// Fill to publish it.
		buf := make([]byte, 100)
		n, err := s.ReadAt(ctx, buf, int64(len(want)-len(chunk)))
		if err != nil || string(buf[:n]) != chunk {
			t.Fatalf("chunk %d: got %q, %v; want %q", i, buf[:n], err, chunk)
		}
		if got := s.Size(); got != int64(len(want)) {
			t.Fatalf("chunk %d: Size %d, want %d", i, got, len(want))
		}
		if fi, _ := os.Stat(s.Path()); fi.Size() != int64(len(want)) {
			t.Fatalf("chunk %d: file size %d, want %d", i, fi.Size(), len(want))
		}
	}
	// Reads below Size return at once, at any offset, bounded by len(p).
	buf := make([]byte, 5)
	n, err := s.ReadAt(ctx, buf, 6)
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("ReadAt(6): %q, %v", buf[:n], err)
	}
	pw.Close()
	if err := within(t, 5*time.Second, res, "Fill"); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := readAll(ctx, s, 0, 4, &got); err != nil || got.String() != string(want) {
		t.Fatalf("readAll: %q, %v", got.String(), err)
	}
}

func TestBlockedReaderWokenByFill(t *testing.T) {
	s := newSpool(t, 0)
	pr, pw := io.Pipe()
	fillAsync(s, pr)
	type result struct {
		b   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := s.ReadAt(context.Background(), buf, 0)
		got <- result{string(buf[:n]), err}
	}()
	select {
	case r := <-got:
		t.Fatalf("read returned before any data: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	pw.Write([]byte("late"))
	r := within(t, 5*time.Second, got, "blocked reader")
	if r.err != nil || r.b != "late" {
		t.Fatalf("got %+v", r)
	}
	pw.Close()
}

func TestEOFAfterDone(t *testing.T) {
	t.Run("Fill", func(t *testing.T) {
		s := newSpool(t, 0)
		pr, pw := io.Pipe()
		res := fillAsync(s, pr)
		pw.Write([]byte("abc"))
		eof := make(chan error, 1)
		go func() {
			_, err := s.ReadAt(context.Background(), make([]byte, 8), 3)
			eof <- err
		}()
		time.Sleep(20 * time.Millisecond)
		pw.Close()
		if err := within(t, 5*time.Second, eof, "reader at end"); err != io.EOF {
			t.Fatalf("blocked reader: %v, want io.EOF", err)
		}
		within(t, 5*time.Second, res, "Fill")
		within(t, time.Second, s.Done(), "Done")
		if err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if n, err := s.ReadAt(context.Background(), buf, 0); n != 3 || err != nil {
			t.Fatalf("read below end after done: %d, %v", n, err)
		}
		if n, err := s.ReadAt(context.Background(), buf, 3); n != 0 || err != io.EOF {
			t.Fatalf("read at end after done: %d, %v", n, err)
		}
		if err := s.Fill(bytes.NewReader(nil)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Fill after done: %v, want ErrInvalid", err)
		}
	})
	t.Run("MarkDone", func(t *testing.T) {
		s := newSpool(t, 0)
		eof := make(chan error, 1)
		go func() {
			_, err := s.ReadAt(context.Background(), make([]byte, 8), 0)
			eof <- err
		}()
		time.Sleep(20 * time.Millisecond)
		s.MarkDone()
		s.MarkDone() // idempotent
		if err := within(t, 5*time.Second, eof, "reader"); err != io.EOF {
			t.Fatalf("got %v, want io.EOF", err)
		}
	})
	t.Run("MarkDoneDuringFill", func(t *testing.T) {
		s := newSpool(t, 0)
		pr, pw := io.Pipe()
		res := fillAsync(s, pr)
		pw.Write([]byte("x"))
		s.MarkDone() // Fill is running: Done waits for it
		select {
		case <-s.Done():
			t.Fatal("Done closed while Fill runs")
		case <-time.After(20 * time.Millisecond):
		}
		pw.Write([]byte("y"))
		pw.Close()
		within(t, 5*time.Second, res, "Fill")
		within(t, time.Second, s.Done(), "Done")
		if s.Size() != 2 {
			t.Fatalf("Size %d, want 2", s.Size())
		}
	})
}

func TestFillReturnsSourceError(t *testing.T) {
	s := newSpool(t, 0)
	boom := errors.New("stream reset")
	r := io.MultiReader(bytes.NewReader([]byte("partial")), errReader{boom})
	if err := s.Fill(r); !errors.Is(err, boom) {
		t.Fatalf("Fill: %v, want %v", err, boom)
	}
	within(t, time.Second, s.Done(), "Done after a source error")
	if s.Size() != 7 {
		t.Fatalf("Size %d", s.Size())
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestSecondFillIsBusy(t *testing.T) {
	s := newSpool(t, 0)
	pr, pw := io.Pipe()
	res := fillAsync(s, pr)
	pw.Write([]byte("a")) // Fill is surely running now
	if err := s.Fill(bytes.NewReader(nil)); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Fill: %v, want ErrBusy", err)
	}
	pw.Close()
	within(t, 5*time.Second, res, "Fill")
}

func TestCancelBlockedRead(t *testing.T) {
	s := newSpool(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := s.ReadAt(ctx, make([]byte, 8), 0)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	if err := within(t, time.Second, got, "cancelled read"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("cancelled read took %v", d)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
}

func TestCloseWakesBlockedReaders(t *testing.T) {
	s := newSpool(t, 0)
	got := make(chan error, 2)
	go func() {
		_, err := s.ReadAt(context.Background(), make([]byte, 8), 0)
		got <- err
	}()
	go func() { got <- s.Wait(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := within(t, time.Second, got, "reader after Close"); !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	}
	if err := s.Fill(bytes.NewReader([]byte("x"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fill after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseDuringFill(t *testing.T) {
	s := newSpool(t, 0)
	pr, pw := io.Pipe()
	res := fillAsync(s, pr)
	pw.Write([]byte("before"))
	s.Close()
	go pw.Write([]byte("after")) // Fill reads it and fails to write it
	if err := within(t, 5*time.Second, res, "Fill"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fill: %v, want ErrClosed", err)
	}
	pw.Close()
}

func TestRemove(t *testing.T) {
	s := newSpool(t, 0)
	if err := s.Fill(bytes.NewReader([]byte("data"))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path() + ".meta"); err != nil {
		t.Fatalf("sidecar after Fill: %v", err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Path(), s.Path() + ".meta"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after Remove: %v", p, err)
		}
	}
}

func TestConcurrentReadersGetAllBytes(t *testing.T) {
	s := newSpool(t, 0)
	data := pattern(3<<20, 1)
	const readers = 16
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			var got bytes.Buffer
			// Odd buffer sizes, so reads end mid-chunk.
			if _, err := readAll(context.Background(), s, 0, 1000+i*4093, &got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got.Bytes(), data) {
				errs <- errors.New("reader got different bytes")
			}
		})
	}
	time.Sleep(10 * time.Millisecond) // most readers block at offset 0 first
	if err := s.Fill(&chunkReader{data: data, chunk: 7919}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func Test20MBThroughFillAndConcurrentReader(t *testing.T) {
	s := newSpool(t, 0)
	data := pattern(20<<20, 2)
	want := sha256.Sum256(data)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := readAll(context.Background(), s, 0, 128<<10, h)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		got <- r
	}()
	pr, pw := io.Pipe()
	res := fillAsync(s, pr)
	for b := data; len(b) > 0; {
		n := min(len(b), 64<<10)
		pw.Write(b[:n])
		b = b[n:]
	}
	pw.Close()
	if err := within(t, 30*time.Second, res, "Fill"); err != nil {
		t.Fatal(err)
	}
	r := within(t, 30*time.Second, got, "reader")
	if r.err != nil || r.n != int64(len(data)) || r.sum != want {
		t.Fatalf("reader: %d bytes, err %v, sha256 match %v", r.n, r.err, r.sum == want)
	}
	f, _ := os.ReadFile(s.Path())
	if sha256.Sum256(f) != want {
		t.Fatal("spool file differs from the stream")
	}
}

// A reader that sleeps between reads holds nothing Fill needs.
func TestSlowReaderNeverSlowsFill(t *testing.T) {
	s := newSpool(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		buf := make([]byte, 4096)
		var off int64
		for {
			n, err := s.ReadAt(ctx, buf, off)
			if err != nil {
				return
			}
			off += int64(n)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	data := pattern(50<<20, 3)
	start := time.Now()
	if err := s.Fill(&chunkReader{data: data, chunk: 32 << 10}); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("Fill of 50 MB with a sleeping reader: %v (%.0f MB/s)", d, 50/d.Seconds())
	// 14 MB/s would need 3.6 s; far slower means the reader held Fill back.
	if d > 3*time.Second {
		t.Fatalf("Fill took %v", d)
	}
}
