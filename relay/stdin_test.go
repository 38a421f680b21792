package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// guestEnd reads everything the process would see on its stdin.
func guestEnd(c net.Conn) <-chan string {
	ch := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		ch <- string(b)
	}()
	return ch
}

func TestStdinEOFAfterLastWriter(t *testing.T) {
	host, guest := net.Pipe()
	got := guestEnd(guest)
	in := NewStdin(host)
	ctx := context.Background()
	in.Open()
	in.Open()
	if _, err := in.Write(ctx, []byte("one ")); err != nil {
		t.Fatal(err)
	}
	if err := in.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		t.Fatalf("EOF after the first of two writers released (got %q)", s)
	case <-time.After(20 * time.Millisecond):
	}
	if _, err := in.Write(ctx, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := in.Release(); err != nil {
		t.Fatal(err)
	}
	if s := within(t, 5*time.Second, got, "EOF"); s != "one two" {
		t.Fatalf("process read %q", s)
	}
	if _, err := in.Write(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after EOF: %v, want ErrClosed", err)
	}
}

func TestStdinWritesInOrderAndWhole(t *testing.T) {
	host, guest := net.Pipe()
	got := guestEnd(guest)
	in := NewStdin(host)
	const writers, lines = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		in.Open()
		wg.Go(func() {
			defer in.Release()
			for i := range lines {
				// Long lines: a write torn by another writer would show.
				line := fmt.Sprintf("w%d %04d %s\n", w, i, strings.Repeat(string(rune('a'+w)), 3000))
				if _, err := in.Write(context.Background(), []byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	out := within(t, 10*time.Second, got, "EOF")
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var w, i int
		var body string
		if _, err := fmt.Sscanf(l, "w%d %d %s", &w, &i, &body); err != nil || body != strings.Repeat(string(rune('a'+w)), 3000) {
			t.Fatalf("torn line %.40q: %v", l, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Fatalf("writer %d: %d lines", w, n)
		}
	}
}

func TestStdinCancelBlockedWrite(t *testing.T) {
	host, guest := net.Pipe() // unbuffered: nothing reads, so a Write blocks
	defer guest.Close()
	in := NewStdin(host)
	defer in.Close()
	in.Open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() {
		_, err := in.Write(ctx, []byte("stuck"))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	// A second writer waits for its turn; its ctx ends too.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if _, err := in.Write(ctx2, []byte("queued")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued Write: %v", err)
	}
	cancel()
	if err := within(t, time.Second, done, "cancelled Write"); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Write: %v, want context.Canceled", err)
	}
	// The stream still works afterwards: the deadline was cleared.
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 5)
		n, _ := io.ReadFull(guest, b)
		got <- string(b[:n])
	}()
	if _, err := in.Write(context.Background(), []byte("after")); err != nil {
		t.Fatalf("Write after a cancel: %v", err)
	}
	if s := within(t, time.Second, got, "read"); s != "after" {
		t.Fatalf("got %q", s)
	}
}

func TestStdinCloseCutsBlockedWrite(t *testing.T) {
	host, guest := net.Pipe()
	defer guest.Close()
	in := NewStdin(host)
	in.Open()
	done := make(chan error, 1)
	go func() {
		_, err := in.Write(context.Background(), []byte("stuck"))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := within(t, time.Second, done, "Write after Close"); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if err := in.Release(); err != nil {
		t.Fatalf("Release after Close: %v", err)
	}
}

// bufCloser is a writer without write deadlines.
type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

func TestStdinWithoutDeadlines(t *testing.T) {
	var b bufCloser
	in := NewStdin(&b)
	in.Open()
	if _, err := in.Write(context.Background(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := in.Release(); err != nil || !b.closed || b.String() != "hi" {
		t.Fatalf("Release: %v closed %v %q", err, b.closed, b.String())
	}
	if err := in.Release(); err != nil {
		t.Fatalf("unmatched Release: %v", err)
	}
}
